"""krabby's test suite, a package so that pytest puts the repository root, not ``tests/``, on
``sys.path``: ``import hal`` finds the real package, and helpers import as ``tests.<dir>.<module>``.
No directory in here is named after a top-level package (``hal``, ``compute``, ``export``,
``engines``, ``benchmarks``); ``tests/test_source_rules.py`` holds that."""

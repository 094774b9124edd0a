"""The one import of a TOML reader: ``tomllib`` from Python 3.11, ``tomli`` (its backport) on 3.10.

JetPack 6 (Ubuntu 22.04) ships Python 3.10, which has no ``tomllib``; ``tomli`` is a base
dependency there (``tomli>=2; python_version < '3.11'`` in pyproject.toml) and has the same API.
"""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised by the Python 3.10 CI run
    import tomli as tomllib

__all__ = ["tomllib"]

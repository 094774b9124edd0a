"""The quick benchmark runs."""

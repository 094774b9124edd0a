"""Rate-limited warnings for loops: a flood of bad input must not become a flood of log lines."""

from __future__ import annotations

import logging
import time

__all__ = ["RateLimitedLog"]


class RateLimitedLog:
    """Logs at most one message per ``interval_s`` per key; counts the ones it held back."""

    def __init__(self, logger: logging.Logger, interval_s: float = 1.0) -> None:
        self._logger = logger
        self._interval_ns = int(interval_s * 1e9)
        self._last_ns: dict[str, int] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, message: str, *args) -> None:
        now = time.monotonic_ns()
        last = self._last_ns.get(key)
        if last is not None and now - last < self._interval_ns:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        held = self._suppressed.pop(key, 0)
        suffix = f" ({held} similar suppressed)" if held else ""
        self._logger.warning(message + suffix, *args)
        self._last_ns[key] = now

"""A live status line in the server's terminal: safety mode, commands, rate, misses, latency.

Refreshed ``rate_hz`` times a second by a thread of its own (it only reads counters the loop
writes), and only when the output is a terminal: under a service manager or with stdout redirected
it stays quiet. The line is rewritten in place (carriage return), and cleared at the end::

    [policy] speed 0.50 m/s yaw +0.00 rad/s parkour | 100.0 Hz, misses 0, obs→cmd p99 1.21 ms
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any, Callable, TextIO

import numpy as np

__all__ = ["StatusLine", "status_text"]

log = logging.getLogger(__name__)


def status_text(mode: str, command: Any, rate_hz: float, misses: int, p99_ms: float | None) -> str:
    """The status line's text (``command``: an ``OperatorCommand`` or None)."""
    parts = [f"[{mode}]"]
    if command is not None:
        parts.append(f"speed {command.forward_speed_m_s:.2f} m/s yaw "
                     f"{command.yaw_rate_rad_s:+.2f} rad/s {command.mode}")
    latency = f"{p99_ms:.2f} ms" if p99_ms is not None else "-"
    parts.append(f"| {rate_hz:.1f} Hz, misses {misses}, obs→cmd p99 {latency}")
    return " ".join(parts)


class StatusLine:
    """Prints :func:`status_text` for ``server`` (and the operator's command) while it runs.

    Args:
        server: the :class:`~hal.server.base.HalServer`.
        command: returns the operator command in force (or None).
        stream: where to write (default stdout); nothing is written unless it is a terminal.
        rate_hz: refreshes per second.
        force: write even when ``stream`` is not a terminal (tests).
    """

    def __init__(self, server: Any, command: Callable[[], Any] | None = None,
                 stream: TextIO | None = None, rate_hz: float = 4.0, force: bool = False) -> None:
        self.server = server
        self.command = command
        self.stream = stream or sys.stdout
        self.period_s = 1.0 / rate_hz
        self.force = force
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lines_written = 0

    def _is_tty(self) -> bool:
        try:
            return os.isatty(self.stream.fileno())
        except (AttributeError, OSError, ValueError):
            return False

    def start(self) -> bool:
        """Start refreshing; False (and nothing started) when the stream is not a terminal."""
        if not (self.force or self._is_tty()):
            return False
        self._thread = threading.Thread(target=self._run, name="krabby-status", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
            self.stream.write("\r\033[K")
            self.stream.flush()

    def text(self, rate_hz: float) -> str:
        server = self.server
        recent = server.latency["obs_to_command"].recent_ns(
            max(1, int(2 * server.config.control_rate_hz)))
        p99 = float(np.percentile(recent, 99)) / 1e6 if len(recent) else None
        command = self.command() if self.command is not None else None
        return status_text(str(server.safety.mode), command, rate_hz,
                           server.counters["deadline_misses"], p99)

    def _run(self) -> None:
        last_cycles, last_ns = self.server.counters["cycles"], time.monotonic_ns()
        while not self._stop.wait(self.period_s):
            cycles, now = self.server.counters["cycles"], time.monotonic_ns()
            rate = (cycles - last_cycles) / max((now - last_ns) / 1e9, 1e-9)
            last_cycles, last_ns = cycles, now
            try:
                self.stream.write("\r\033[K" + self.text(rate))
                self.stream.flush()
                self.lines_written += 1
            except Exception:  # noqa: BLE001 - a status line must never take the run down
                log.exception("status line failed; turning it off")
                return

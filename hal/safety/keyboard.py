"""Keyboard e-stop: space or ``e`` in the server's terminal latches the e-stop.

The terminal is put in cbreak mode (no line buffering, no echo; Ctrl-C still interrupts) and read on
a thread of its own, so a key press reaches the safety layer within one tick without the control
loop ever touching stdin. It works only when the file descriptor is a TTY (a server under systemd
or with redirected stdin has none; :meth:`KeyboardEstop.start` then returns False and logs why).
The keyboard can only latch: clearing takes an explicit reset (API or the network ``RESET``).
"""

from __future__ import annotations

import logging
import os
import select
import sys
import termios
import threading
from collections.abc import Callable

__all__ = ["ESTOP_KEYS", "KeyboardEstop"]

logger = logging.getLogger(__name__)

ESTOP_KEYS = frozenset(b" eE")
"""Bytes that latch the e-stop: space, ``e``, ``E``."""


def _stdin_fd() -> int:
    """stdin's descriptor, or -1 where stdin is no real file (a test runner's stand-in)."""
    try:
        return sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return -1


class KeyboardEstop:
    """Reads a terminal on its own thread and calls ``on_estop("keyboard")`` on an e-stop key.

    Args:
        on_estop: Called from the reader thread, e.g. ``SafetyLayer.estop`` (which is thread-safe).
        fd: The terminal's file descriptor; None uses stdin.
        poll_interval_s: How often the reader thread checks whether it should stop.
    """

    def __init__(self, on_estop: Callable[[str], object], fd: int | None = None,
                 poll_interval_s: float = 0.05) -> None:
        self._on_estop = on_estop
        self._fd = _stdin_fd() if fd is None else fd
        self._poll_interval_s = float(poll_interval_s)
        self._saved_attrs: list | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.keys_read = 0
        self.estops_sent = 0

    @property
    def active(self) -> bool:
        """True while the reader thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> bool:
        """Enter cbreak mode and start reading; False (and nothing changed) when not a TTY."""
        if self._thread is not None:
            return self.active
        try:
            is_tty = os.isatty(self._fd)
        except OSError:
            is_tty = False
        if not is_tty:
            logger.warning("keyboard e-stop unavailable: fd %d is not a terminal; use the network "
                           "e-stop instead", self._fd)
            return False
        try:
            foreground = os.tcgetpgrp(self._fd) == os.getpgrp()
        except OSError:
            foreground = True  # not our controlling terminal: no job control applies
        if not foreground:
            # Changing the mode of our controlling terminal from a background job would stop the
            # whole process (SIGTTOU), control loop included.
            logger.warning("keyboard e-stop unavailable: running in the background of terminal "
                           "fd %d; use the network e-stop instead", self._fd)
            return False
        self._saved_attrs = termios.tcgetattr(self._fd)
        attrs = termios.tcgetattr(self._fd)
        attrs[3] &= ~(termios.ICANON | termios.ECHO)  # lflag; ISIG stays so Ctrl-C works
        attrs[6][termios.VMIN] = 1
        attrs[6][termios.VTIME] = 0
        termios.tcsetattr(self._fd, termios.TCSANOW, attrs)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="keyboard-estop", daemon=True)
        self._thread.start()
        logger.info("keyboard e-stop armed: press space or 'e' to stop the robot")
        return True

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop the reader thread and restore the terminal. Safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                logger.warning("keyboard e-stop thread did not stop within %.1f s", timeout_s)
            self._thread = None
        if self._saved_attrs is not None:
            try:
                termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved_attrs)
            except termios.error as exc:
                logger.warning("keyboard e-stop: could not restore the terminal: %s", exc)
            self._saved_attrs = None

    def __enter__(self) -> KeyboardEstop:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._fd], [], [], self._poll_interval_s)
                if not ready:
                    continue
                data = os.read(self._fd, 64)
            except (OSError, ValueError) as exc:
                logger.warning("keyboard e-stop: terminal read failed (%s); keyboard e-stop off",
                               exc)
                return
            if not data:
                logger.warning("keyboard e-stop: terminal closed; keyboard e-stop off")
                return
            self.keys_read += len(data)
            if any(byte in ESTOP_KEYS for byte in data):
                self.estops_sent += 1
                try:
                    self._on_estop("keyboard")
                except Exception:  # noqa: BLE001 - the reader must survive a faulty callback
                    logger.exception("keyboard e-stop: the e-stop callback raised")

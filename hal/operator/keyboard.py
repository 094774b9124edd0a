"""The server's terminal as an operator source: arrow keys / WASD, space for e-stop as before.

Key map (a terminal has no key-up, so speed and yaw rate are latched steps)::

    ↑ / w      forward speed + speed_step_m_s        ↓ / s   forward speed − speed_step_m_s
    ← / a      yaw rate + yaw_step_rad_s (left)      → / d   yaw rate − yaw_step_rad_s
    x / 0      speed and yaw rate to 0               m       mode parkour ↔ walk
    Enter / g  start (hand over to the policy)       b / .   stop (back to stand)
    space / e  e-stop (latches)                      r       reset the e-stop

:class:`KeyDecoder` turns raw terminal bytes into events (escape sequences may arrive split over
reads). :class:`KeyboardSource` reads the terminal on a thread of its own in cbreak mode (no echo,
Ctrl-C still interrupts) and hands the events to
the control loop through a queue; it works only where stdin is a terminal in the foreground.
"""

from __future__ import annotations

import logging
import os
import queue
import select
import sys
import termios
import threading
from dataclasses import dataclass
from typing import ClassVar

from hal.config.fields import setting
from hal.operator.base import Action, OperatorEvent, OperatorSource

__all__ = ["KeyDecoder", "KeyboardSource", "KeyboardSection", "KEY_HELP"]

log = logging.getLogger(__name__)

KEY_HELP = ("keys: ↑/w ↓/s speed, ←/a →/d yaw rate, x stop moving, m mode, Enter/g start, "
            "b stand, space/e E-STOP, r reset")

_ESC = 0x1B


class KeyDecoder:
    """Bytes from a terminal → operator events (stateful: keeps a partial escape sequence).

    Args:
        speed_step_m_s: forward speed change per key press.
        yaw_step_rad_s: yaw rate change per key press.
        source: the events' source name.
    """

    def __init__(self, speed_step_m_s: float = 0.1, yaw_step_rad_s: float = 0.2,
                 source: str = "keyboard") -> None:
        self.source = source
        s, y = speed_step_m_s, yaw_step_rad_s
        ev = OperatorEvent
        self._keys: dict[int, OperatorEvent] = {
            ord("w"): ev(source, speed_step_m_s=s), ord("s"): ev(source, speed_step_m_s=-s),
            ord("a"): ev(source, yaw_step_rad_s=y), ord("d"): ev(source, yaw_step_rad_s=-y),
            ord("x"): ev(source, forward_speed_m_s=0.0, yaw_rate_rad_s=0.0),
            ord("0"): ev(source, forward_speed_m_s=0.0, yaw_rate_rad_s=0.0),
            ord("m"): ev(source, toggle_mode=True),
            ord("g"): ev(source, Action.START), ord("\r"): ev(source, Action.START),
            ord("\n"): ev(source, Action.START),
            ord("b"): ev(source, Action.STOP), ord("."): ev(source, Action.STOP),
            ord(" "): ev(source, Action.ESTOP, reason="keyboard"),
            ord("e"): ev(source, Action.ESTOP, reason="keyboard"),
            ord("E"): ev(source, Action.ESTOP, reason="keyboard"),
            ord("r"): ev(source, Action.RESET),
        }
        for upper in "WSADXMGBR":
            self._keys.setdefault(ord(upper), self._keys[ord(upper.lower())])
        self._arrows = {ord("A"): self._keys[ord("w")], ord("B"): self._keys[ord("s")],
                        ord("D"): self._keys[ord("a")], ord("C"): self._keys[ord("d")]}
        self._pending = b""
        self.unknown = 0

    def feed(self, data: bytes) -> list[OperatorEvent]:
        """Decode ``data`` (appended to any partial escape sequence from the last call)."""
        buffer = self._pending + bytes(data)
        self._pending = b""
        events: list[OperatorEvent] = []
        i, n = 0, len(buffer)
        while i < n:
            byte = buffer[i]
            if byte == _ESC:
                # CSI (ESC [ X) or SS3 (ESC O X) arrows; anything else after ESC is dropped.
                if i + 2 >= n and buffer[i + 1:i + 2] in (b"", b"[", b"O"):
                    self._pending = buffer[i:]
                    break
                if buffer[i + 1] in b"[O":
                    event = self._arrows.get(buffer[i + 2])
                    if event is not None:
                        events.append(event)
                    else:
                        self.unknown += 1
                    i += 3
                else:
                    self.unknown += 1
                    i += 1
                continue
            event = self._keys.get(byte)
            if event is not None:
                events.append(event)
            else:
                self.unknown += 1
            i += 1
        return events


def _stdin_fd() -> int:
    try:
        return sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return -1


@dataclass(frozen=True)
class KeyboardSection:
    """The terminal's keys as an operator source (registered as operator ``keyboard``)."""

    section: ClassVar[str] = "keyboard"
    title: ClassVar[str] = "operator: the terminal's keys"

    enabled: bool = setting(True, negate="--no-keyboard",
                            help="do not read the terminal's keys (by default they drive, space "
                                 "e-stops)")


class KeyboardSource(OperatorSource):
    """The terminal's keys (see the module docstring).

    Args:
        decoder: the key map; default steps of 0.1 m/s and 0.2 rad/s.
        fd: the terminal; None uses stdin.
        poll_interval_s: how often the reader thread checks whether it should stop.
    """

    name = "keyboard"

    def __init__(self, decoder: KeyDecoder | None = None, fd: int | None = None,
                 poll_interval_s: float = 0.05) -> None:
        self.decoder = decoder or KeyDecoder()
        self._fd = _stdin_fd() if fd is None else fd
        self._poll_interval_s = poll_interval_s
        self._queue: queue.SimpleQueue[OperatorEvent] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._saved_attrs: list | None = None
        self.keys_read = 0
        self.active = False

    @staticmethod
    def usable(fd: int | None = None) -> bool:
        """Whether ``fd`` (stdin) is a terminal this process may put in cbreak mode."""
        fd = _stdin_fd() if fd is None else fd
        try:
            if not os.isatty(fd):
                return False
        except OSError:
            return False
        try:
            return os.tcgetpgrp(fd) == os.getpgrp()
        except OSError:
            return True

    def connect(self) -> None:
        """Start reading; where there is no terminal it logs why and stays inactive."""
        if self._thread is not None:
            return
        try:
            is_tty = os.isatty(self._fd)
        except OSError:
            is_tty = False
        if not is_tty:
            log.warning("keyboard commands unavailable: fd %d is not a terminal (use "
                        "krabby-teleop or the network e-stop)", self._fd)
            return
        if self._fd == _stdin_fd() and not self.usable(self._fd):
            log.warning("keyboard commands unavailable: running in the background of the terminal")
            return
        self._saved_attrs = termios.tcgetattr(self._fd)
        attrs = termios.tcgetattr(self._fd)
        attrs[3] &= ~(termios.ICANON | termios.ECHO)  # ISIG stays: Ctrl-C works
        attrs[6][termios.VMIN] = 1
        attrs[6][termios.VTIME] = 0
        termios.tcsetattr(self._fd, termios.TCSANOW, attrs)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="krabby-keyboard", daemon=True)
        self._thread.start()
        self.active = True

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        if self._saved_attrs is not None:
            try:
                termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved_attrs)
            except termios.error as exc:
                log.warning("keyboard: could not restore the terminal: %s", exc)
            self._saved_attrs = None
        self.active = False

    def poll(self, now_ns: int) -> list[OperatorEvent]:
        events = []
        while True:
            try:
                events.append(self._queue.get_nowait())
            except queue.Empty:
                return events

    def stats(self) -> dict[str, int]:
        return {"keys_read": self.keys_read, "unknown_keys": self.decoder.unknown}

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._fd], [], [], self._poll_interval_s)
                if not ready:
                    continue
                data = os.read(self._fd, 64)
            except (OSError, ValueError) as exc:
                log.warning("keyboard: terminal read failed (%s); keyboard commands off", exc)
                return
            if not data:
                log.warning("keyboard: terminal closed; keyboard commands off")
                return
            self.keys_read += len(data)
            for event in self.decoder.feed(data):
                self._queue.put(event)

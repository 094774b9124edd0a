"""A Linux gamepad through evdev (``/dev/input/eventN``), with a dead-man button.

The kernel hands out ``struct input_event`` records (``linux/input.h``): on 64-bit Linux a
``struct timeval`` (two ``long``), ``__u16 type``, ``__u16 code``, ``__s32 value`` — 24 bytes,
native byte order (:data:`EVENT_FORMAT`). :func:`decode_events` unpacks a byte stream of them;
:class:`GamepadDecoder` turns them into operator events; :class:`GamepadSource` reads the device
without blocking once per tick on the loop's thread (a read of a few dozen bytes), so a button
reaches the safety layer in the tick it is read. python-evdev is not needed.

Button map (Linux's standard gamepad codes, e.g. an Xbox or 8BitDo pad under ``xpad``)::

    LB  (BTN_TL)      dead-man: hold it; sticks and start count only while it is held.
                      Releasing it stops the robot: speed and yaw rate 0 and back to stand.
    left stick  up    forward speed: centre → 0, full up → the top of the trained range
    right stick x     yaw rate: full left → +max_yaw_rate, full right → −max_yaw_rate
    A   (BTN_SOUTH)   start (hand over to the policy), with the dead-man held
    B   (BTN_EAST)    stop (back to stand), any time
    Y   (BTN_WEST)    mode parkour ↔ walk, with the dead-man held
    RB  (BTN_TR)      E-STOP, any time (latches)
    START (BTN_START) reset the e-stop, with the dead-man held

Stick ranges come from the device (``EVIOCGABS``); a stream that is not a device (a recording, a
pipe) uses ``GamepadMap.axis_range``. Values within ``deadzone`` of centre read 0.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import struct
from dataclasses import dataclass
from typing import ClassVar, Iterator

from hal.config.fields import setting
from hal.log_limit import RateLimitedLog
from hal.operator.base import Action, OperatorEvent, OperatorSource

__all__ = ["GamepadSection", "EVENT_FORMAT", "EVENT_SIZE", "InputEvent", "decode_events",
           "encode_event", "GamepadMap", "GamepadDecoder", "GamepadSource", "EV_SYN", "EV_KEY", "EV_ABS"]

log = logging.getLogger(__name__)

EVENT_FORMAT = "@llHHi"
EVENT_SIZE = struct.calcsize(EVENT_FORMAT)
EV_SYN, EV_KEY, EV_ABS = 0x00, 0x01, 0x03
BTN_SOUTH, BTN_EAST, BTN_NORTH, BTN_WEST = 0x130, 0x131, 0x133, 0x134
BTN_TL, BTN_TR, BTN_SELECT, BTN_START = 0x136, 0x137, 0x13A, 0x13B
ABS_X, ABS_Y, ABS_RX, ABS_RY = 0x00, 0x01, 0x03, 0x04
_ABSINFO_FORMAT = "6i"  # value, minimum, maximum, fuzz, flat, resolution


@dataclass(frozen=True, slots=True)
class InputEvent:
    """One ``struct input_event``."""

    sec: int
    usec: int
    type: int
    code: int
    value: int


def encode_event(type_: int, code: int, value: int, sec: int = 0, usec: int = 0) -> bytes:
    """The bytes of one ``struct input_event`` (what the kernel writes)."""
    return struct.pack(EVENT_FORMAT, sec, usec, type_, code, value)


def decode_events(data: bytes) -> tuple[list[InputEvent], bytes]:
    """Whole events in ``data`` and the bytes left over (a partial event)."""
    whole = len(data) - len(data) % EVENT_SIZE
    events = [InputEvent(*fields) for fields in struct.iter_unpack(EVENT_FORMAT, data[:whole])]
    return events, data[whole:]


@dataclass(frozen=True)
class GamepadMap:
    """Codes of the controls (see the module docstring) and the stick set-up."""

    deadman: int = BTN_TL
    start: int = BTN_SOUTH
    stop: int = BTN_EAST
    mode: int = BTN_WEST
    estop: int = BTN_TR
    reset: int = BTN_START
    speed_axis: int = ABS_Y
    speed_axis_inverted: bool = True  # evdev's Y grows downwards
    yaw_axis: int = ABS_RX
    yaw_axis_inverted: bool = True  # stick right (positive) turns right (negative yaw rate)
    axis_range: tuple[int, int] = (-32768, 32767)
    deadzone: float = 0.1


class GamepadDecoder:
    """evdev events → operator events, applying the dead-man rule.

    Args:
        max_speed_m_s: forward speed at full stick.
        max_yaw_rate_rad_s: yaw rate at full stick.
        mapping: the button map.
        source: the events' source name.
    """

    def __init__(self, max_speed_m_s: float, max_yaw_rate_rad_s: float,
                 mapping: GamepadMap | None = None, source: str = "gamepad") -> None:
        self.map = mapping or GamepadMap()
        self.source = source
        self.max_speed_m_s = float(max_speed_m_s)
        self.max_yaw_rate_rad_s = float(max_yaw_rate_rad_s)
        self.ranges = {self.map.speed_axis: self.map.axis_range,
                       self.map.yaw_axis: self.map.axis_range}
        self.deadman_held = False
        self._axes = {self.map.speed_axis: 0.0, self.map.yaw_axis: 0.0}
        self._sent: tuple[float, float] | None = None

    def normalized(self, code: int, value: int) -> float:
        """An axis reading in [-1, 1] (centre 0, dead zone applied)."""
        lo, hi = self.ranges.get(code, self.map.axis_range)
        centre, half = (lo + hi) / 2.0, max((hi - lo) / 2.0, 1e-9)
        x = max(-1.0, min(1.0, (value - centre) / half))
        dz = self.map.deadzone
        if abs(x) <= dz:
            return 0.0
        return (abs(x) - dz) / (1.0 - dz) * (1.0 if x > 0 else -1.0)

    def feed(self, events: list[InputEvent]) -> list[OperatorEvent]:
        """Operator events for these input events; stick changes are sent at each EV_SYN."""
        out: list[OperatorEvent] = []
        m, src = self.map, self.source
        for e in events:
            if e.type == EV_KEY and e.value in (0, 1):  # 2 = autorepeat
                pressed = e.value == 1
                if e.code == m.deadman:
                    if pressed and not self.deadman_held:
                        self.deadman_held, self._sent = True, None
                    elif not pressed and self.deadman_held:
                        self.deadman_held, self._sent = False, (0.0, 0.0)
                        out.append(OperatorEvent(src, Action.STOP, forward_speed_m_s=0.0,
                                                 yaw_rate_rad_s=0.0, reason="dead-man released"))
                elif not pressed:
                    continue
                elif e.code == m.estop:
                    out.append(OperatorEvent(src, Action.ESTOP, reason="gamepad"))
                elif e.code == m.stop:
                    out.append(OperatorEvent(src, Action.STOP))
                elif not self.deadman_held:
                    continue
                elif e.code == m.start:
                    out.append(OperatorEvent(src, Action.START))
                elif e.code == m.mode:
                    out.append(OperatorEvent(src, toggle_mode=True))
                elif e.code == m.reset:
                    out.append(OperatorEvent(src, Action.RESET))
            elif e.type == EV_ABS and e.code in self._axes:
                self._axes[e.code] = self.normalized(e.code, e.value)
            elif e.type == EV_SYN and e.code == 0 and self.deadman_held:
                stick = self._stick()
                if stick != self._sent:
                    self._sent = stick
                    out.append(OperatorEvent(src, forward_speed_m_s=stick[0],
                                             yaw_rate_rad_s=stick[1]))
        return out

    def _stick(self) -> tuple[float, float]:
        m = self.map
        forward = self._axes[m.speed_axis] * (-1.0 if m.speed_axis_inverted else 1.0)
        yaw = self._axes[m.yaw_axis] * (-1.0 if m.yaw_axis_inverted else 1.0)
        return max(0.0, forward) * self.max_speed_m_s, yaw * self.max_yaw_rate_rad_s


def _eviocgabs(axis: int) -> int:
    """``EVIOCGABS(axis)`` = ``_IOR('E', 0x40 + axis, struct input_absinfo)``."""
    size = struct.calcsize(_ABSINFO_FORMAT)
    return (2 << 30) | (size << 16) | (ord("E") << 8) | (0x40 + axis)


@dataclass(frozen=True)
class GamepadSection:
    """A Linux gamepad as an operator source (registered as operator ``gamepad``)."""

    section: ClassVar[str] = "gamepad"
    title: ClassVar[str] = "operator: gamepad"

    device: str | None = setting(None, flag="--gamepad", metavar="DEVICE",
                                 help="drive with a Linux gamepad: its evdev device, e.g. "
                                      "/dev/input/by-id/usb-...-event-joystick (hold LB: "
                                      "dead-man)")


class GamepadSource(OperatorSource):
    """Reads an evdev device (or any stream of ``input_event`` records) once per tick.

    Args:
        path: ``/dev/input/eventN`` (``/dev/input/by-id/...-event-joystick`` is stable).
        decoder: the map and the speed / yaw scales.
        fd: an already open descriptor to read instead of ``path`` (tests, recordings).
        max_events_per_poll: at most this many records are read per tick.
    """

    name = "gamepad"

    def __init__(self, path: str | None, decoder: GamepadDecoder, fd: int | None = None,
                 max_events_per_poll: int = 64) -> None:
        if path is None and fd is None:
            raise ValueError("GamepadSource needs a device path (/dev/input/eventN) or an fd")
        self.path = path
        self.decoder = decoder
        self._fd = fd
        self._own_fd = fd is None
        self._max_bytes = max_events_per_poll * EVENT_SIZE
        self._partial = b""
        self._warn = RateLimitedLog(log, 5.0)
        self.counters = {"input_events": 0, "read_errors": 0, "lost": 0}

    def connect(self) -> None:
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            except OSError as exc:
                raise OSError(exc.errno, f"gamepad {self.path}: {exc.strerror}. List the devices "
                              "with ls -l /dev/input/by-id/ (the user needs the 'input' group)"
                              ) from None
        else:
            os.set_blocking(self._fd, False)
        for code in (self.decoder.map.speed_axis, self.decoder.map.yaw_axis):
            try:
                info = bytearray(struct.calcsize(_ABSINFO_FORMAT))
                fcntl.ioctl(self._fd, _eviocgabs(code), info)
                _, lo, hi, _, _, _ = struct.unpack(_ABSINFO_FORMAT, info)
                if hi > lo:
                    self.decoder.ranges[code] = (lo, hi)
            except OSError:
                pass  # not an evdev device (a recording): the map's range applies

    def close(self) -> None:
        if self._fd is not None and self._own_fd:
            os.close(self._fd)
        self._fd = None

    def _read(self) -> Iterator[bytes]:
        try:
            data = os.read(self._fd, self._max_bytes)
        except BlockingIOError:
            return
        except OSError as exc:
            self.counters["read_errors"] += 1
            if exc.errno in (errno.ENODEV, errno.EBADF):
                raise
            self._warn.warning("read", "gamepad %s: read failed: %s", self.path, exc)
            return
        yield data

    def poll(self, now_ns: int) -> list[OperatorEvent]:
        if self._fd is None:
            return []
        try:
            chunks = list(self._read())
        except OSError as exc:
            # The pad is gone (unplugged): that releases the dead-man.
            log.error("gamepad %s lost (%s): stopping", self.path, exc)
            self.counters["lost"] += 1
            self.close()
            if self.decoder.deadman_held:
                self.decoder.deadman_held = False
                return [OperatorEvent(self.name, Action.STOP, forward_speed_m_s=0.0,
                                      yaw_rate_rad_s=0.0, reason="gamepad lost")]
            return []
        if not chunks or not chunks[0]:
            return []
        events, self._partial = decode_events(self._partial + chunks[0])
        self.counters["input_events"] += len(events)
        return self.decoder.feed(events)

    def stats(self) -> dict[str, int]:
        return dict(self.counters)

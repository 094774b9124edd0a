"""The Unitree Go2's own wireless remote, decoded from ``LowState_.wireless_remote``.

The robot copies its remote's state into every ``LowState_`` as 40 raw bytes (Unitree's
``xRockerBtnDataStruct``, little-endian)::

    offset  0  uint8[2]  head
            2  uint16    buttons, bit 0 first: R1 L1 start select R2 L2 F1 F2 A B X Y up right down left
            4  float32   lx      (sticks in [-1, 1]; up and right positive)
            8  float32   rx
           12  float32   ry
           16  float32   L2      (analog trigger)
           20  float32   ly
           24  uint8[16] idle

Map (press = the button's rising edge)::

    left stick up     forward speed: centre → 0, full up → the top of the trained range
    right stick x     yaw rate: full left → +max_yaw_rate, full right → −max_yaw_rate
    start             start (hand over to the policy)
    select            stop (back to stand)
    L2 + B            E-STOP (Unitree's own "damp" chord)
    L2 + A            reset the e-stop
    Y                 mode parkour ↔ walk

Non-finite or out-of-range stick values (a corrupted frame) drop the whole frame and are counted.
"""

from __future__ import annotations

import logging
import math
import struct
from dataclasses import dataclass
from typing import Callable, ClassVar, Protocol, runtime_checkable

from hal.config.fields import setting
from hal.log_limit import RateLimitedLog
from hal.operator.base import Action, OperatorEvent, OperatorSource

__all__ = ["Go2RemoteSection", "CarriesGo2Remote", "REMOTE_FORMAT", "REMOTE_SIZE", "BUTTONS",
           "RemoteState", "decode_wireless_remote", "encode_wireless_remote", "Go2RemoteDecoder",
           "Go2RemoteSource", "RemoteFrameError"]

log = logging.getLogger(__name__)

REMOTE_FORMAT = "<2sH5f16s"
REMOTE_SIZE = struct.calcsize(REMOTE_FORMAT)  # 40
BUTTONS = ("R1", "L1", "start", "select", "R2", "L2", "F1", "F2", "A", "B", "X", "Y", "up",
           "right", "down", "left")


class RemoteFrameError(ValueError):
    """40 bytes that are not a usable remote frame (the message says why)."""


@dataclass(frozen=True, slots=True)
class RemoteState:
    """One decoded remote frame: the set of pressed buttons and the sticks."""

    buttons: frozenset[str]
    lx: float
    rx: float
    ry: float
    l2: float
    ly: float


def decode_wireless_remote(data: bytes | bytearray | list[int]) -> RemoteState:
    """Decode ``LowState_.wireless_remote``.

    Raises:
        RemoteFrameError: not 40 bytes, or a stick value that is not finite or beyond ±1.05.
    """
    raw = bytes(data)
    if len(raw) != REMOTE_SIZE:
        raise RemoteFrameError(f"wireless_remote has {len(raw)} bytes, expected {REMOTE_SIZE}")
    _head, bits, lx, rx, ry, l2, ly, _idle = struct.unpack(REMOTE_FORMAT, raw)
    for name, value in (("lx", lx), ("rx", rx), ("ry", ry), ("L2", l2), ("ly", ly)):
        if not (math.isfinite(value) and abs(value) <= 1.05):
            raise RemoteFrameError(f"wireless_remote {name} = {value} is outside [-1, 1]")
    pressed = frozenset(name for i, name in enumerate(BUTTONS) if bits >> i & 1)
    return RemoteState(pressed, lx, rx, ry, l2, ly)


def encode_wireless_remote(buttons: frozenset[str] | set[str] = frozenset(), lx: float = 0.0,
                           rx: float = 0.0, ry: float = 0.0, l2: float = 0.0,
                           ly: float = 0.0) -> bytes:
    """The 40 bytes the robot would send for this state (tests, rehearsals)."""
    unknown = set(buttons) - set(BUTTONS)
    if unknown:
        raise ValueError(f"unknown buttons {sorted(unknown)}; valid: {BUTTONS}")
    bits = sum(1 << BUTTONS.index(name) for name in buttons)
    return struct.pack(REMOTE_FORMAT, b"\x55\x51", bits, lx, rx, ry, l2, ly, bytes(16))


class Go2RemoteDecoder:
    """Remote frames → operator events (button edges, stick changes beyond ``stick_epsilon``).

    Args:
        max_speed_m_s: forward speed at full stick.
        max_yaw_rate_rad_s: yaw rate at full stick.
        deadzone: stick values within this of 0 read 0.
    """

    def __init__(self, max_speed_m_s: float, max_yaw_rate_rad_s: float, deadzone: float = 0.08,
                 stick_epsilon: float = 0.01, source: str = "go2-remote") -> None:
        self.max_speed_m_s = float(max_speed_m_s)
        self.max_yaw_rate_rad_s = float(max_yaw_rate_rad_s)
        self.deadzone = float(deadzone)
        self.stick_epsilon = float(stick_epsilon)
        self.source = source
        self._buttons: frozenset[str] = frozenset()
        self._sent: tuple[float, float] | None = None

    def _axis(self, value: float) -> float:
        value = max(-1.0, min(1.0, value))
        if abs(value) <= self.deadzone:
            return 0.0
        return (abs(value) - self.deadzone) / (1.0 - self.deadzone) * math.copysign(1.0, value)

    def feed(self, state: RemoteState) -> list[OperatorEvent]:
        src, out = self.source, []
        pressed = state.buttons - self._buttons
        self._buttons = state.buttons
        if "B" in pressed and "L2" in state.buttons:
            out.append(OperatorEvent(src, Action.ESTOP, reason="go2 remote L2+B"))
        if "A" in pressed and "L2" in state.buttons:
            out.append(OperatorEvent(src, Action.RESET))
        if "start" in pressed:
            out.append(OperatorEvent(src, Action.START))
        if "select" in pressed:
            out.append(OperatorEvent(src, Action.STOP))
        if "Y" in pressed:
            out.append(OperatorEvent(src, toggle_mode=True))
        stick = (max(0.0, self._axis(state.ly)) * self.max_speed_m_s,
                 -self._axis(state.rx) * self.max_yaw_rate_rad_s)
        if self._sent is None:  # the first frame: a stick at rest leaves the command alone
            changed = stick != (0.0, 0.0)
        else:
            moved = max(abs(stick[0] - self._sent[0]), abs(stick[1] - self._sent[1]))
            changed = moved > self.stick_epsilon or (stick != self._sent and stick == (0.0, 0.0))
        if changed:
            out.append(OperatorEvent(src, forward_speed_m_s=stick[0], yaw_rate_rad_s=stick[1]))
        if changed or self._sent is None:
            self._sent = stick
        return out


@runtime_checkable
class CarriesGo2Remote(Protocol):
    """A device the Go2's wireless remote arrives with (the Go2's joint driver: the remote's bytes
    ride in ``LowState_``)."""

    def wireless_remote(self) -> tuple[bytes, int] | None:
        """The newest 40 raw bytes and their receive time (ns), or None before the first."""


@dataclass(frozen=True)
class Go2RemoteSection:
    """The Go2's wireless remote as an operator source (registered as operator ``go2-remote``;
    its bytes ride on the Go2's motor session, so it drives only with ``--motors go2``)."""

    section: ClassVar[str] = "go2_remote"
    title: ClassVar[str] = "operator: the Go2's wireless remote (--motors go2)"

    enabled: bool = setting(True, negate="--no-go2-remote",
                            help="with --motors go2: ignore the Go2's wireless remote (by "
                                 "default it drives: see README, how to drive)")


class Go2RemoteSource(OperatorSource):
    """Polls the newest ``wireless_remote`` bytes once per tick.

    Args:
        latest: returns ``(bytes, receive_ns)`` of the newest ``LowState_`` (or None before any);
            :meth:`hal.backends.unitree_go2.UnitreeGo2.wireless_remote`.
        decoder: the map and the scales.
    """

    name = "go2-remote"

    def __init__(self, latest: Callable[[], tuple[bytes, int] | None],
                 decoder: Go2RemoteDecoder) -> None:
        self._latest = latest
        self.decoder = decoder
        self._last_ns = -1
        self._warn = RateLimitedLog(log, 5.0)
        self.counters = {"frames": 0, "bad_frames": 0}

    def connect(self) -> None:
        pass  # the Go2 session is the joint driver's; it is connected with it

    def close(self) -> None:
        pass

    def poll(self, now_ns: int) -> list[OperatorEvent]:
        latest = self._latest()
        if latest is None or latest[1] == self._last_ns:
            return []
        raw, self._last_ns = latest
        try:
            state = decode_wireless_remote(raw)
        except RemoteFrameError as exc:
            self.counters["bad_frames"] += 1
            self._warn.warning("bad", "go2 remote: frame dropped: %s", exc)
            return []
        self.counters["frames"] += 1
        return self.decoder.feed(state)

    def stats(self) -> dict[str, int]:
        return dict(self.counters)

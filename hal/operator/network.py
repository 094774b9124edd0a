"""The network operator endpoint: versioned, validated commands from ``krabby-teleop``.

Wire format (version 1): one ZMQ frame of exactly 28 bytes, little-endian, no pickle, no JSON::

    offset size  field
         0    4  magic  b"KOPR"
         4    2  version (uint16) = 1
         6    2  flags (uint16): bit 0 speed set, bit 1 yaw rate set, bit 2 mode set; others 0
         8    4  session (uint32), random per sender
        12    4  seq (uint32), increasing within a session (a lower or equal one is stale and
                 dropped; a new session, or ``session_gap_ms`` without a message, starts over).
                 Replay protection proper is the transport's (CURVE's nonces).
        16    4  forward_speed_m_s (float32, finite, |v| <= 10)
        20    4  yaw_rate_rad_s (float32, finite, |v| <= 10)
        24    1  mode: 0 parkour, 1 walk (read only with flag bit 2)
        25    1  action: 0 none, 1 start, 2 stop, 3 e-stop, 4 reset
        26    2  reserved, 0

Anything else — another frame count or length, a wrong magic or version, unknown flag bits, a
non-finite or absurd value, an unknown mode or action, non-zero reserved bytes, a stale seq — is
dropped and counted by reason; it never moves the robot. The hub clamps what passes into the
trained range.

Transport: the robot binds a PULL socket (default ``tcp://*:5561``); senders connect PUSH. The
receive high-water mark is small and each tick reads at most ``max_messages_per_poll`` messages
without blocking, so a flood costs a bounded amount of each tick and the rest is dropped by ZMQ.
A message arriving less often than ``lease_ms`` apart (a teleop that went away) returns the robot
to stand with speed and yaw rate 0, once. ``secure`` configures the socket before it binds: pass
CURVE authentication there (the seam for the project's key handling).
"""

from __future__ import annotations

import logging
import math
import os
import struct
from dataclasses import dataclass
from typing import Callable, ClassVar

import zmq

from hal.config.fields import setting
from hal.log_limit import RateLimitedLog
from hal.operator.base import MODES, Action, OperatorEvent, OperatorSource

__all__ = ["MAGIC", "VERSION", "MESSAGE_SIZE", "DEFAULT_OPERATOR_ENDPOINT", "TeleopMessage",
           "TeleopMessageError", "encode_teleop", "decode_teleop", "NetworkOperatorSource",
           "TeleopSender", "TeleopSection"]

log = logging.getLogger(__name__)

MAGIC = b"KOPR"
VERSION = 1
_FORMAT = "<4sHHIIffBBH"
MESSAGE_SIZE = struct.calcsize(_FORMAT)  # 28
DEFAULT_OPERATOR_ENDPOINT = "tcp://*:5561"
FLAG_SPEED, FLAG_YAW, FLAG_MODE = 1, 2, 4
_ACTIONS = (None, Action.START, Action.STOP, Action.ESTOP, Action.RESET)
_MAX_ABS = 10.0


class TeleopMessageError(ValueError):
    """A frame that does not follow the wire format; ``reason`` is its counter name."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TeleopMessage:
    """A validated message (None: the field is not set)."""

    session: int
    seq: int
    forward_speed_m_s: float | None = None
    yaw_rate_rad_s: float | None = None
    mode: str | None = None
    action: Action | None = None


def encode_teleop(session: int, seq: int, forward_speed_m_s: float | None = None,
                  yaw_rate_rad_s: float | None = None, mode: str | None = None,
                  action: Action | str | None = None) -> bytes:
    """One frame. Raises ValueError for values the receiver would drop."""
    flags = 0
    if forward_speed_m_s is not None:
        flags |= FLAG_SPEED
    if yaw_rate_rad_s is not None:
        flags |= FLAG_YAW
    if mode is not None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {MODES}")
        flags |= FLAG_MODE
    speed = 0.0 if forward_speed_m_s is None else float(forward_speed_m_s)
    yaw = 0.0 if yaw_rate_rad_s is None else float(yaw_rate_rad_s)
    for name, value in (("forward_speed_m_s", speed), ("yaw_rate_rad_s", yaw)):
        if not (math.isfinite(value) and abs(value) <= _MAX_ABS):
            raise ValueError(f"{name} {value} must be finite and within ±{_MAX_ABS}")
    code = 0 if action is None else _ACTIONS.index(Action(action))
    if not (0 <= seq < 2**32 and 0 <= session < 2**32):
        raise ValueError(f"session {session} and seq {seq} must fit in 32 bits")
    return struct.pack(_FORMAT, MAGIC, VERSION, flags, session, seq, speed, yaw,
                       MODES.index(mode) if mode is not None else 0, code, 0)


def decode_teleop(frames: list[bytes]) -> TeleopMessage:
    """Validate one received message (its frames).

    Raises:
        TeleopMessageError: see the module docstring; ``reason`` names the rule broken.
    """
    if len(frames) != 1:
        raise TeleopMessageError("frames", f"expected 1 frame, got {len(frames)}")
    frame = bytes(frames[0])
    if len(frame) != MESSAGE_SIZE:
        raise TeleopMessageError("size", f"frame of {len(frame)} bytes, expected {MESSAGE_SIZE}")
    magic, version, flags, session, seq, speed, yaw, mode, action, reserved = struct.unpack(
        _FORMAT, frame)
    if magic != MAGIC:
        raise TeleopMessageError("magic", f"magic {magic!r}, expected {MAGIC!r}")
    if version != VERSION:
        raise TeleopMessageError("version", f"version {version}, this server speaks {VERSION}")
    if flags & ~(FLAG_SPEED | FLAG_YAW | FLAG_MODE) or reserved:
        raise TeleopMessageError("reserved", f"unknown flags {flags:#x} or reserved {reserved}")
    for name, value in (("forward_speed_m_s", speed), ("yaw_rate_rad_s", yaw)):
        if not (math.isfinite(value) and abs(value) <= _MAX_ABS):
            raise TeleopMessageError("value", f"{name} {value} is not finite or beyond "
                                              f"±{_MAX_ABS}")
    if mode >= len(MODES):
        raise TeleopMessageError("mode", f"mode {mode}: valid 0 ({MODES[0]}) or 1 ({MODES[1]})")
    if action >= len(_ACTIONS):
        raise TeleopMessageError("action", f"action {action}: valid 0-{len(_ACTIONS) - 1}")
    return TeleopMessage(session, seq, speed if flags & FLAG_SPEED else None,
                         yaw if flags & FLAG_YAW else None,
                         MODES[mode] if flags & FLAG_MODE else None, _ACTIONS[action])


@dataclass(frozen=True)
class TeleopSection:
    """The network operator endpoint as an operator source (registered as operator
    ``network``); ``krabby-teleop`` sends to it."""

    section: ClassVar[str] = "teleop"
    title: ClassVar[str] = "operator: network (krabby-teleop)"

    bind: str = setting("none", flag="--teleop-bind", aliases=("--teleop_bind",),
                        metavar="ENDPOINT",
                        help="network operator endpoint for krabby-teleop, e.g. "
                             f"{DEFAULT_OPERATOR_ENDPOINT}")

    @property
    def endpoint(self) -> str | None:
        """The endpoint to bind (None: ``--teleop-bind none``)."""
        return None if self.bind in ("", "none") else self.bind


class NetworkOperatorSource(OperatorSource):
    """Binds the operator endpoint and reads it without blocking once per tick.

    Args:
        endpoint: where to bind (``tcp://*:5561``; ``inproc://`` in tests).
        context: the ZMQ context.
        secure: called with the socket before it binds (CURVE server set-up), or None.
        max_messages_per_poll: messages read per tick at most.
        lease_ms: after motion was commanded from the network, this long without a message
            stands the robot (0 disables).
        receive_hwm: messages ZMQ queues before dropping.
        session_gap_ms: after this long without a message, any seq is accepted (a new sender).
    """

    name = "network"

    def __init__(self, endpoint: str = DEFAULT_OPERATOR_ENDPOINT,
                 context: zmq.Context | None = None,
                 secure: Callable[[zmq.Socket], None] | None = None,
                 max_messages_per_poll: int = 8, lease_ms: float = 500.0,
                 receive_hwm: int = 32, session_gap_ms: float = 1000.0) -> None:
        self.endpoint = endpoint
        self._context = context or zmq.Context.instance()
        self._secure = secure
        self._max = int(max_messages_per_poll)
        self._lease_ns = int(lease_ms * 1e6)
        self._hwm = int(receive_hwm)
        self._gap_ns = int(session_gap_ms * 1e6)
        self._socket: zmq.Socket | None = None
        self._session = -1
        self._last_seq = -1
        self._last_ns: int | None = None
        self._moving = False
        self._warn = RateLimitedLog(log, 2.0)
        self.counters: dict[str, int] = {"received": 0, "accepted": 0, "dropped": 0,
                                         "lease_expired": 0}

    def connect(self) -> None:
        if self._socket is not None:
            return
        socket = self._context.socket(zmq.PULL)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.RCVHWM, self._hwm)
        # Frames up to 4 KiB are read, judged and counted; a longer one drops its connection.
        socket.setsockopt(zmq.MAXMSGSIZE, 4096)
        try:
            if self._secure is not None:
                self._secure(socket)
            socket.bind(self.endpoint)
        except zmq.ZMQError as exc:
            socket.close(0)
            raise OSError(f"operator endpoint {self.endpoint}: {exc}; choose another with "
                          f"--teleop-bind (or 'none')") from None
        self._socket = socket
        #: The endpoint as bound (``tcp://127.0.0.1:*`` becomes the port the system picked).
        self.last_endpoint = socket.getsockopt_string(zmq.LAST_ENDPOINT)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close(0)
            self._socket = None

    def poll(self, now_ns: int) -> list[OperatorEvent]:
        socket = self._socket
        if socket is None:
            return []
        events: list[OperatorEvent] = []
        for _ in range(self._max):
            try:
                frames = socket.recv_multipart(zmq.NOBLOCK, copy=True)
            except zmq.Again:
                break
            self.counters["received"] += 1
            try:
                message = decode_teleop(frames)
                new_session = (self._last_ns is None or message.session != self._session
                               or now_ns - self._last_ns > self._gap_ns)
                if message.seq <= self._last_seq and not new_session:
                    raise TeleopMessageError("stale", f"seq {message.seq} <= last "
                                                      f"{self._last_seq}")
            except TeleopMessageError as exc:
                self._drop(exc)
                continue
            self._session, self._last_seq, self._last_ns = message.session, message.seq, now_ns
            self.counters["accepted"] += 1
            if message.forward_speed_m_s is not None or message.yaw_rate_rad_s is not None:
                self._moving = bool(message.forward_speed_m_s or message.yaw_rate_rad_s)
            if message.action is Action.STOP:
                self._moving = False
            events.append(OperatorEvent(self.name, message.action, message.forward_speed_m_s,
                                        message.yaw_rate_rad_s, message.mode))
        if (self._moving and self._lease_ns and self._last_ns is not None
                and now_ns - self._last_ns > self._lease_ns):
            self._moving = False
            self.counters["lease_expired"] += 1
            log.warning("operator network: no message for %.0f ms: standing the robot",
                        self._lease_ns / 1e6)
            events.append(OperatorEvent(self.name, Action.STOP, forward_speed_m_s=0.0,
                                        yaw_rate_rad_s=0.0, reason="teleop lease expired"))
        return events

    def _drop(self, exc: TeleopMessageError) -> None:
        self.counters["dropped"] += 1
        key = f"dropped.{exc.reason}"
        self.counters[key] = self.counters.get(key, 0) + 1
        self._warn.warning(key, "operator network: message dropped: %s", exc)

    def stats(self) -> dict[str, int]:
        return dict(self.counters)


class TeleopSender:
    """Connects a PUSH socket to a robot's operator endpoint and sends commands (a random
    session, seq from 1)."""

    def __init__(self, endpoint: str, context: zmq.Context | None = None,
                 secure: Callable[[zmq.Socket], None] | None = None) -> None:
        self._context = context or zmq.Context.instance()
        self._socket = self._context.socket(zmq.PUSH)
        self._socket.setsockopt(zmq.LINGER, 500)
        self._socket.setsockopt(zmq.SNDHWM, 16)
        self._socket.setsockopt(zmq.SNDTIMEO, 1000)
        if secure is not None:
            secure(self._socket)
        self._socket.connect(endpoint)
        self.session = int.from_bytes(os.urandom(4), "little")
        self.seq = 0

    def send(self, forward_speed_m_s: float | None = None, yaw_rate_rad_s: float | None = None,
             mode: str | None = None, action: Action | str | None = None) -> None:
        self.seq += 1
        self._socket.send(encode_teleop(self.session, self.seq, forward_speed_m_s, yaw_rate_rad_s, mode, action))

    def send_raw(self, frame: bytes) -> None:
        self._socket.send(frame)

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> TeleopSender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

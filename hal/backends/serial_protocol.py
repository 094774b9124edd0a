"""Framing and messages of the motor-bus serial protocol (spec: ``SERIAL_PROTOCOL.md`` beside this).

Pure bytes in, bytes out: :func:`encode_frame` builds a frame, :class:`FrameDecoder` turns a byte
stream (in chunks of any size, with noise) into frames and counts what it rejects, and the
``encode_*``/``decode_*`` pairs pack each message's payload. Both the host driver and the MCU
emulator use this module, so they cannot disagree about the format.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "SYNC", "PROTOCOL_VERSION", "HEADER_SIZE", "CRC_SIZE", "MAX_PAYLOAD",
    "MSG_SET_TARGETS", "MSG_ENABLE", "MSG_DISABLE", "MSG_HEARTBEAT", "MSG_TELEMETRY", "MSG_STATUS",
    "HOST_MESSAGES", "MCU_MESSAGES",
    "FLAG_ENABLED", "FLAG_DAMPING", "FLAG_LINK_TIMEOUT", "FLAG_COMMAND_TIMEOUT", "FLAG_FAULT",
    "STATUS_OK", "STATUS_REJECTED_DISABLED", "STATUS_BAD_JOINT_COUNT", "STATUS_BAD_COMMAND",
    "STATUS_LINK_TIMEOUT", "STATUS_COMMAND_TIMEOUT", "STATUS_FAULT", "STATUS_NAMES",
    "ProtocolError", "crc16_ccitt", "Frame", "DecoderStats", "FrameDecoder", "encode_frame",
    "Targets", "Telemetry", "Status",
    "encode_targets", "decode_targets", "encode_heartbeat", "decode_heartbeat",
    "encode_telemetry", "decode_telemetry", "encode_status", "decode_status", "describe_flags",
    "targets_are_valid",
]

SYNC = b"\xaa\x55"
PROTOCOL_VERSION = 1
HEADER_SIZE = 8
CRC_SIZE = 2
MAX_PAYLOAD = 512

MSG_SET_TARGETS = 0x01
MSG_ENABLE = 0x02
MSG_DISABLE = 0x03
MSG_HEARTBEAT = 0x04
MSG_TELEMETRY = 0x81
MSG_STATUS = 0x82
HOST_MESSAGES = frozenset({MSG_SET_TARGETS, MSG_ENABLE, MSG_DISABLE, MSG_HEARTBEAT})
MCU_MESSAGES = frozenset({MSG_TELEMETRY, MSG_STATUS})

FLAG_ENABLED = 1 << 0
FLAG_DAMPING = 1 << 1
FLAG_LINK_TIMEOUT = 1 << 2
FLAG_COMMAND_TIMEOUT = 1 << 3
FLAG_FAULT = 1 << 4
_FLAG_NAMES = {FLAG_ENABLED: "ENABLED", FLAG_DAMPING: "DAMPING", FLAG_LINK_TIMEOUT: "LINK_TIMEOUT",
               FLAG_COMMAND_TIMEOUT: "COMMAND_TIMEOUT", FLAG_FAULT: "FAULT"}

STATUS_OK = 0
STATUS_REJECTED_DISABLED = 1
STATUS_BAD_JOINT_COUNT = 2
STATUS_BAD_COMMAND = 3
STATUS_LINK_TIMEOUT = 4
STATUS_COMMAND_TIMEOUT = 5
STATUS_FAULT = 6
STATUS_NAMES = {STATUS_OK: "OK", STATUS_REJECTED_DISABLED: "REJECTED_DISABLED",
                STATUS_BAD_JOINT_COUNT: "BAD_JOINT_COUNT", STATUS_BAD_COMMAND: "BAD_COMMAND",
                STATUS_LINK_TIMEOUT: "LINK_TIMEOUT", STATUS_COMMAND_TIMEOUT: "COMMAND_TIMEOUT",
                STATUS_FAULT: "FAULT"}

_HEADER = struct.Struct("<2sBBHH")
_TARGETS_HEAD = struct.Struct("<BB")
_TELEMETRY_HEAD = struct.Struct("<QHHBB")
_STATUS_HEAD = struct.Struct("<HHB")
_HEARTBEAT = struct.Struct("<Q")


class ProtocolError(ValueError):
    """A payload does not match its message type (size, count, values)."""


def crc16_ccitt(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final XOR)."""
    return binascii.crc_hqx(data, 0xFFFF)


def encode_frame(msg_type: int, seq: int, payload: bytes = b"") -> bytes:
    """One complete frame: sync, header, payload, CRC."""
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(f"payload of {len(payload)} bytes exceeds the {MAX_PAYLOAD}-byte limit")
    body = _HEADER.pack(SYNC, PROTOCOL_VERSION, msg_type, seq & 0xFFFF, len(payload))[2:] + payload
    return SYNC + body + struct.pack("<H", crc16_ccitt(body))


@dataclass(frozen=True)
class Frame:
    """A frame that passed version, length and CRC checks and has a known type."""

    msg_type: int
    seq: int
    payload: bytes


@dataclass
class DecoderStats:
    """What a :class:`FrameDecoder` accepted and rejected."""

    frames: int = 0
    bad_crc: int = 0
    bad_length: int = 0
    bad_version: int = 0
    unknown_type: int = 0
    garbage_bytes: int = 0
    seq_gaps: int = 0

    @property
    def rejected(self) -> int:
        """Frames thrown away (garbage bytes and sequence gaps are not frames)."""
        return self.bad_crc + self.bad_length + self.bad_version + self.unknown_type


@dataclass
class FrameDecoder:
    """Turns a byte stream into frames of the ``accept`` types; resynchronises on any error.

    Args:
        accept: Message types this side understands (others are counted as ``unknown_type``).
    """

    accept: frozenset[int]
    stats: DecoderStats = field(default_factory=DecoderStats)
    _buffer: bytearray = field(default_factory=bytearray, repr=False)
    _last_seq: int | None = field(default=None, repr=False)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Add received bytes; returns the complete, valid frames now available (in order)."""
        buf = self._buffer
        buf += data
        frames: list[Frame] = []
        while True:
            start = buf.find(SYNC)
            if start < 0:
                # Keep a trailing 0xAA: it may be the first half of the next sync.
                keep = 1 if buf[-1:] == SYNC[:1] else 0
                self.stats.garbage_bytes += len(buf) - keep
                del buf[:len(buf) - keep]
                return frames
            if start:
                self.stats.garbage_bytes += start
                del buf[:start]
            if len(buf) < HEADER_SIZE:
                return frames
            _, version, msg_type, seq, length = _HEADER.unpack_from(buf)
            if version != PROTOCOL_VERSION:
                self.stats.bad_version += 1
                del buf[:1]
                continue
            if length > MAX_PAYLOAD:
                self.stats.bad_length += 1
                del buf[:1]
                continue
            total = HEADER_SIZE + length + CRC_SIZE
            if len(buf) < total:
                return frames
            (crc,) = struct.unpack_from("<H", buf, HEADER_SIZE + length)
            if crc != crc16_ccitt(memoryview(buf)[2:HEADER_SIZE + length]):
                self.stats.bad_crc += 1
                del buf[:1]
                continue
            payload = bytes(buf[HEADER_SIZE:HEADER_SIZE + length])
            del buf[:total]
            if self._last_seq is not None:
                self.stats.seq_gaps += max(0, ((seq - self._last_seq) & 0xFFFF) - 1)
            self._last_seq = seq
            if msg_type not in self.accept:
                self.stats.unknown_type += 1
                continue
            self.stats.frames += 1
            frames.append(Frame(msg_type, seq, payload))


# -- payloads -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Targets:
    """``SET_TARGETS``: mode (0 position, 1 damp) and per-joint target, kp, kd."""

    mode: int
    target_rad: np.ndarray
    kp: np.ndarray
    kd: np.ndarray


def encode_targets(mode: int, target_rad, kp, kd) -> bytes:
    target_rad, kp, kd = (np.asarray(a, dtype=np.float64) for a in (target_rad, kp, kd))
    n = target_rad.shape[0]
    if target_rad.shape != (n,) or kp.shape != (n,) or kd.shape != (n,) or not 0 < n <= 255:
        raise ProtocolError(f"targets, kp and kd must be 1-D arrays of one length (1..255), got "
                            f"{target_rad.shape}, {kp.shape}, {kd.shape}")
    body = np.stack([target_rad, kp, kd], axis=1).astype("<f4")
    return _TARGETS_HEAD.pack(mode, n) + body.tobytes()


def decode_targets(payload: bytes) -> Targets:
    if len(payload) < _TARGETS_HEAD.size:
        raise ProtocolError(f"SET_TARGETS payload of {len(payload)} bytes is too short")
    mode, n = _TARGETS_HEAD.unpack_from(payload)
    if len(payload) != _TARGETS_HEAD.size + 12 * n:
        raise ProtocolError(f"SET_TARGETS for {n} joints needs {2 + 12 * n} bytes, got {len(payload)}")
    body = np.frombuffer(payload, dtype="<f4", offset=_TARGETS_HEAD.size).reshape(n, 3).astype(np.float64)
    return Targets(mode, body[:, 0].copy(), body[:, 1].copy(), body[:, 2].copy())


def encode_heartbeat(host_time_ns: int) -> bytes:
    return _HEARTBEAT.pack(host_time_ns & 0xFFFF_FFFF_FFFF_FFFF)


def decode_heartbeat(payload: bytes) -> int:
    if len(payload) != _HEARTBEAT.size:
        raise ProtocolError(f"HEARTBEAT payload must be 8 bytes, got {len(payload)}")
    return _HEARTBEAT.unpack(payload)[0]


@dataclass(frozen=True)
class Telemetry:
    """``TELEMETRY``: the MCU's clock, state flags, error count, mode and joint readings."""

    mcu_time_us: int
    flags: int
    rx_error_count: int
    mode: int
    position_rad: np.ndarray
    velocity_rad_s: np.ndarray
    torque_nm: np.ndarray


def encode_telemetry(mcu_time_us: int, flags: int, rx_error_count: int, mode: int, position_rad,
                     velocity_rad_s, torque_nm) -> bytes:
    q, dq, tau = (np.asarray(a, dtype=np.float64) for a in (position_rad, velocity_rad_s, torque_nm))
    n = q.shape[0]
    body = np.stack([q, dq, tau], axis=1).astype("<f4")
    head = _TELEMETRY_HEAD.pack(mcu_time_us & 0xFFFF_FFFF_FFFF_FFFF, flags & 0xFFFF,
                                min(rx_error_count, 0xFFFF), mode, n)
    return head + body.tobytes()


def decode_telemetry(payload: bytes) -> Telemetry:
    if len(payload) < _TELEMETRY_HEAD.size:
        raise ProtocolError(f"TELEMETRY payload of {len(payload)} bytes is too short")
    mcu_time_us, flags, errors, mode, n = _TELEMETRY_HEAD.unpack_from(payload)
    if len(payload) != _TELEMETRY_HEAD.size + 12 * n:
        raise ProtocolError(f"TELEMETRY for {n} joints needs {14 + 12 * n} bytes, got {len(payload)}")
    body = np.frombuffer(payload, dtype="<f4", offset=_TELEMETRY_HEAD.size).reshape(n, 3).astype(np.float64)
    return Telemetry(mcu_time_us, flags, errors, mode, body[:, 0].copy(), body[:, 1].copy(), body[:, 2].copy())


@dataclass(frozen=True)
class Status:
    """``STATUS``: a code, the host seq it answers (0: none) and a short text."""

    code: int
    ref_seq: int
    text: str

    @property
    def name(self) -> str:
        return STATUS_NAMES.get(self.code, f"code {self.code}")


def encode_status(code: int, ref_seq: int, text: str = "") -> bytes:
    raw = text.encode("ascii", "replace")[:255]
    return _STATUS_HEAD.pack(code, ref_seq & 0xFFFF, len(raw)) + raw


def decode_status(payload: bytes) -> Status:
    if len(payload) < _STATUS_HEAD.size:
        raise ProtocolError(f"STATUS payload of {len(payload)} bytes is too short")
    code, ref_seq, length = _STATUS_HEAD.unpack_from(payload)
    if len(payload) != _STATUS_HEAD.size + length:
        raise ProtocolError(f"STATUS with {length} text bytes needs {5 + length} bytes, got {len(payload)}")
    return Status(code, ref_seq, payload[_STATUS_HEAD.size:].decode("ascii", "replace"))


def describe_flags(flags: int) -> str:
    """``"ENABLED|DAMPING"``-style names of the set status flags (``"none"`` if none)."""
    names = [name for bit, name in _FLAG_NAMES.items() if flags & bit]
    unknown = flags & ~sum(_FLAG_NAMES)
    if unknown:
        names.append(f"0x{unknown:x}")
    return "|".join(names) or "none"


def targets_are_valid(targets: Targets) -> str:
    """'' if a decoded command may be applied, else why not (used by the MCU side)."""
    if targets.mode not in (0, 1):
        return f"unknown mode {targets.mode}"
    for name in ("target_rad", "kp", "kd"):
        values = getattr(targets, name)
        if not np.all(np.isfinite(values)):
            return f"non-finite {name}"
    if np.any(targets.kp < 0) or np.any(targets.kd < 0):
        return "negative gain"
    return ""


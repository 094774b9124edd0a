"""The krabby wire protocol (version 1): observation and command messages. See PROTOCOL.md.

Observations travel HAL → client on PUB/SUB, latest only (one frame per message, CONFLATE on the
subscriber). Over inproc the frame is the header and the arrays stay in the shared slots
(:mod:`hal.slots`); over tcp the arrays follow the header as raw little-endian bytes. Commands travel client → HAL on PUSH/PULL as two frames (header,
payload) on every transport, each naming the observation seq it answers.

Decoding validates everything (magic, version, frame count, sizes, dtype, shape, finite values) and
raises :class:`ProtocolError`; the loops catch it, count the message as malformed and drop it.
Nothing here pickles.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from hal.devices.base import CONTROL_MODE_DAMP, CONTROL_MODE_POSITION, CameraIntrinsics

__all__ = [
    "PROTOCOL_VERSION",
    "OBSERVATION_HEADER_SIZE",
    "COMMAND_HEADER_SIZE",
    "command_max_frame_bytes",
    "observation_max_frame_bytes",
    "ProtocolError",
    "NonFiniteCommandError",
    "StateLayout",
    "ObservationHeader",
    "CommandMessage",
    "FLAG_DEPTH_ATTACHED",
    "FLAG_INPROC",
    "encode_observation_header",
    "decode_observation_header",
    "decode_observation_frames",
    "encode_command",
    "decode_command",
    "COMMAND_MODES",
]

PROTOCOL_VERSION = 2
OBSERVATION_MAGIC = b"KRBO"
COMMAND_MAGIC = b"KRBC"
FLAG_DEPTH_ATTACHED = 1 << 0
"""tcp: the newest depth frame follows the state block (always, once the camera has sent one)."""
FLAG_INPROC = 1 << 1
"""inproc: the arrays are in the shared slots named by ``slot`` / ``depth_slot``."""
COMMAND_MODES = (CONTROL_MODE_POSITION, CONTROL_MODE_DAMP)

# magic, version, flags, seq, slot, slot_generation, depth_slot, n_joints, n_feet, depth_h,
# depth_w, timestamp_ns, publish_ns, depth_seq, depth_generation, depth_timestamp_ns, fx, fy, cx, cy,
# control_mode, n_scan
_OBS_HEADER = struct.Struct("<4sHHQiQiHHHHqqQQqffffHH")
# magic, version, mode, obs_seq, n_joints, reserved, send_ns, receive_ns, actor_ns, depth_step_ns,
# depth_seq_used
_CMD_HEADER = struct.Struct("<4sHHQHHqqqqQ")
OBSERVATION_HEADER_SIZE = _OBS_HEADER.size
COMMAND_HEADER_SIZE = _CMD_HEADER.size
# ndarray.all() without the Python-level function it goes through (decode_command runs on every
# command, inside the control tick's latency).
_all_of = np.logical_and.reduce


class ProtocolError(ValueError):
    """A message that does not follow the protocol. The text says what was wrong."""


class NonFiniteCommandError(ProtocolError):
    """A well-formed command carrying NaN/inf. ``message`` holds it so the server can hand it to
    the safety layer, which rejects it and damps (a dropped command would only trip the watchdog)."""

    def __init__(self, text: str, message: "CommandMessage") -> None:
        super().__init__(text)
        self.message = message


def command_max_frame_bytes(n_joints: int) -> int:
    """The largest frame of a valid command (for ``ZMQ_MAXMSGSIZE`` on the receiving socket)."""
    return max(COMMAND_HEADER_SIZE, 4 * 4 * n_joints)


def observation_max_frame_bytes(state_size: int, depth_shape: tuple[int, int] | None) -> int:
    """The largest valid tcp observation frame: header, state block, depth frame."""
    depth = depth_shape[0] * depth_shape[1] if depth_shape else 0
    return OBSERVATION_HEADER_SIZE + 4 * (state_size + depth)


@dataclass(frozen=True)
class StateLayout:
    """Where each array sits in the float32 state block of an observation.

    Order: joint_position_rad[n] | joint_velocity_rad_s[n] | joint_torque_nm[n] |
    imu_quaternion_wxyz[4] | imu_angular_velocity_rad_s[3] | imu_linear_acceleration_m_s2[3] |
    foot_force_n[n_feet] | height_scan_m[n_scan] (only when the HAL measures the terrain).
    """

    n_joints: int
    n_feet: int
    n_scan: int = 0

    @property
    def fields(self) -> tuple[tuple[str, int], ...]:
        n = self.n_joints
        return (
            ("joint_position_rad", n),
            ("joint_velocity_rad_s", n),
            ("joint_torque_nm", n),
            ("imu_quaternion_wxyz", 4),
            ("imu_angular_velocity_rad_s", 3),
            ("imu_linear_acceleration_m_s2", 3),
            ("foot_force_n", self.n_feet),
        ) + ((("height_scan_m", self.n_scan),) if self.n_scan else ())

    @property
    def size(self) -> int:
        return sum(length for _, length in self.fields)

    def views(self, block: np.ndarray) -> dict[str, np.ndarray]:
        """Named views into a float32 state block (no copies)."""
        out, start = {}, 0
        for name, length in self.fields:
            out[name] = block[start:start + length]
            start += length
        return out


@dataclass(frozen=True)
class ObservationHeader:
    """Everything about an observation except its arrays."""

    seq: int
    timestamp_ns: int
    publish_ns: int
    n_joints: int
    n_feet: int
    depth_shape: tuple[int, int]  # (0, 0) when the robot has no camera
    depth_seq: int = 0
    depth_timestamp_ns: int = 0
    intrinsics: CameraIntrinsics | None = None
    flags: int = 0
    slot: int = -1
    slot_generation: int = 0
    depth_slot: int = -1
    depth_generation: int = 0
    control_mode: int = 0  # the code of the safety layer's mode when the tick began
    n_scan: int = 0  # height-scan points in the state block (0: the HAL measures no terrain)


def encode_observation_header(h: ObservationHeader) -> bytes:
    k = h.intrinsics
    fx, fy, cx, cy = (k.fx, k.fy, k.cx, k.cy) if k is not None else (0.0, 0.0, 0.0, 0.0)
    return _OBS_HEADER.pack(
        OBSERVATION_MAGIC, PROTOCOL_VERSION, h.flags, h.seq, h.slot, h.slot_generation,
        h.depth_slot, h.n_joints, h.n_feet, h.depth_shape[0], h.depth_shape[1], h.timestamp_ns,
        h.publish_ns, h.depth_seq, h.depth_generation, h.depth_timestamp_ns, fx, fy, cx, cy,
        h.control_mode, h.n_scan)


def _check_magic_version(magic: bytes, version: int, expected_magic: bytes, what: str) -> None:
    if magic != expected_magic:
        raise ProtocolError(f"{what}: bad magic {magic!r}, expected {expected_magic!r}")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(f"{what}: protocol version {version}, this build speaks "
                            f"{PROTOCOL_VERSION}; update the older side")


# (width, height, fx, fy, cx, cy) -> CameraIntrinsics of the last header that carried them: the
# camera's parameters do not change between frames, so each header compares six numbers and
# hands back the same validated object instead of checking and building one per observation.
# Replaced as a whole tuple, so a reader on another thread sees an old or a new pair, never a mix.
_last_intrinsics: tuple[tuple[int, int, float, float, float, float], CameraIntrinsics] | None = None


def _intrinsics(width: int, height: int, fx: float, fy: float, cx: float,
                cy: float) -> CameraIntrinsics:
    global _last_intrinsics
    key = (width, height, fx, fy, cx, cy)
    cached = _last_intrinsics
    if cached is not None and cached[0] == key:  # NaN never compares equal: never cached
        return cached[1]
    if not (math.isfinite(fx) and fx > 0 and math.isfinite(fy) and fy > 0
            and math.isfinite(cx) and math.isfinite(cy)):
        raise ProtocolError(f"observation: bad depth intrinsics fx={fx} fy={fy} cx={cx} cy={cy}")
    intrinsics = CameraIntrinsics(width=width, height=height, fx=fx, fy=fy, cx=cx, cy=cy)
    _last_intrinsics = (key, intrinsics)
    return intrinsics


def decode_observation_header(frame: bytes | memoryview) -> ObservationHeader:
    """Decode and validate an observation header frame."""
    if len(frame) != _OBS_HEADER.size:
        raise ProtocolError(f"observation header: {len(frame)} bytes, expected {_OBS_HEADER.size}")
    (magic, version, flags, seq, slot, slot_gen, depth_slot, n_joints, n_feet, depth_h, depth_w,
     timestamp_ns, publish_ns, depth_seq, depth_gen, depth_ts, fx, fy, cx, cy, control_mode,
     n_scan) = _OBS_HEADER.unpack(frame)
    _check_magic_version(magic, version, OBSERVATION_MAGIC, "observation")
    if n_joints == 0:
        raise ProtocolError("observation: n_joints is 0")
    if (depth_h == 0) != (depth_w == 0):
        raise ProtocolError(f"observation: depth shape {depth_h}x{depth_w} has one zero side")
    intrinsics = None
    if depth_h and depth_seq:  # intrinsics come with the first frame
        intrinsics = _intrinsics(depth_w, depth_h, fx, fy, cx, cy)
    return ObservationHeader(
        seq=seq, timestamp_ns=timestamp_ns, publish_ns=publish_ns, n_joints=n_joints, n_feet=n_feet,
        depth_shape=(depth_h, depth_w), depth_seq=depth_seq, depth_timestamp_ns=depth_ts,
        intrinsics=intrinsics, flags=flags, slot=slot, slot_generation=slot_gen,
        depth_slot=depth_slot, depth_generation=depth_gen, control_mode=control_mode,
        n_scan=n_scan)


def _float32_frame(frame: bytes | memoryview, count: int, what: str) -> np.ndarray:
    expected = 4 * count
    if len(frame) != expected:
        raise ProtocolError(f"{what}: {len(frame)} bytes, expected {expected} "
                            f"({count} float32 values)")
    return np.frombuffer(frame, dtype="<f4", count=count)


def decode_observation_frames(frames: list, expected: StateLayout,
                              expected_depth_shape: tuple[int, int]
                              ) -> tuple[ObservationHeader, np.ndarray | None, np.ndarray | None]:
    """Decode an observation message (one frame) for the robot this side was configured for.

    Over inproc the frame is the header alone. Over tcp the state block, and the depth frame when
    ``FLAG_DEPTH_ATTACHED`` is set, follow the header inside the same frame, so that the
    subscriber's CONFLATE option (which keeps one *frame*) gives true latest-only delivery.

    Returns the header and read-only float32 views over the received bytes (state block, and the
    depth frame as (H, W) or None when none is attached; both None over inproc). Raises
    ProtocolError on any mismatch.
    """
    if len(frames) != 1:
        raise ProtocolError(f"observation: {len(frames)} frames, expected 1")
    frame = memoryview(frames[0])
    head_size = _OBS_HEADER.size
    header = decode_observation_header(frame[:head_size])
    if (header.n_joints, header.n_feet) != (expected.n_joints, expected.n_feet):
        raise ProtocolError(f"observation: {header.n_joints} joints / {header.n_feet} feet, this "
                            f"client expects {expected.n_joints} / {expected.n_feet}")
    if header.n_scan != expected.n_scan:
        raise ProtocolError(f"observation: {header.n_scan} height-scan points, this client "
                            f"expects {expected.n_scan}")
    if header.depth_shape != tuple(expected_depth_shape):
        raise ProtocolError(f"observation: depth {header.depth_shape}, this client expects "
                            f"{tuple(expected_depth_shape)}")
    if header.flags & FLAG_INPROC:
        if len(frame) != head_size:
            raise ProtocolError(f"inproc observation: {len(frame)} bytes, expected the "
                                f"{head_size}-byte header alone")
        return header, None, None
    has_depth = bool(header.flags & FLAG_DEPTH_ATTACHED)
    h, w = header.depth_shape
    state_bytes = 4 * expected.size
    depth_bytes = 4 * h * w if has_depth else 0
    if has_depth and not h:
        raise ProtocolError("observation: depth attached to a message declaring no camera")
    if len(frame) != head_size + state_bytes + depth_bytes:
        raise ProtocolError(
            f"tcp observation: {len(frame)} bytes, expected {head_size + state_bytes + depth_bytes}"
            f" (header {head_size} + state {state_bytes}"
            f" + depth {depth_bytes}{'' if has_depth else ' (not attached)'})")
    state = np.frombuffer(frame, dtype="<f4", count=expected.size, offset=head_size)
    depth = None
    if has_depth:
        depth = np.frombuffer(frame, dtype="<f4", count=h * w,
                              offset=head_size + state_bytes).reshape(h, w)
    return header, state, depth


@dataclass
class CommandMessage:
    """Joint command from the inference client (hardware order), naming the seq it answers."""

    obs_seq: int
    target_rad: np.ndarray
    kp: np.ndarray
    kd: np.ndarray
    raw_action: np.ndarray  # policy order, before clip and scale (for the recorder)
    mode: int = CONTROL_MODE_POSITION
    send_ns: int = 0
    receive_ns: int = 0  # when the client received the observation
    actor_ns: int = 0  # duration of the actor engine step
    depth_step_ns: int = 0  # duration of the newest depth engine step
    depth_seq_used: int = 0  # depth frame seq behind the latent the actor used


def encode_command(cmd: CommandMessage) -> list[bytes]:
    """Two frames: header and the float32 payload [targets | kp | kd | raw_action]."""
    n = len(cmd.target_rad)
    header = _CMD_HEADER.pack(COMMAND_MAGIC, PROTOCOL_VERSION, cmd.mode, cmd.obs_seq, n, 0,
                              cmd.send_ns, cmd.receive_ns, cmd.actor_ns, cmd.depth_step_ns,
                              cmd.depth_seq_used)
    payload = np.concatenate([cmd.target_rad, cmd.kp, cmd.kd, cmd.raw_action]).astype("<f4")
    return [header, payload.tobytes()]


def decode_command(frames: list, n_joints: int) -> CommandMessage:
    """Decode and validate a command for a robot with ``n_joints`` joints.

    Rejects wrong magic/version/frame count/size, joint-count mismatch, unknown mode, non-finite
    values and negative gains. The safety layer still checks every value against the robot's limits.
    """
    if len(frames) != 2:
        raise ProtocolError(f"command: {len(frames)} frames, expected 2 (header, payload)")
    head = frames[0]
    if len(head) != _CMD_HEADER.size:
        raise ProtocolError(f"command header: {len(head)} bytes, expected {_CMD_HEADER.size}")
    (magic, version, mode, obs_seq, n, _reserved, send_ns, receive_ns, actor_ns, depth_ns,
     depth_seq) = _CMD_HEADER.unpack(head)
    if magic != COMMAND_MAGIC or version != PROTOCOL_VERSION:
        _check_magic_version(magic, version, COMMAND_MAGIC, "command")
    if n != n_joints:
        raise ProtocolError(f"command: {n} joints, this robot has {n_joints}")
    if mode not in COMMAND_MODES:
        raise ProtocolError(f"command: mode {mode}, valid modes are {COMMAND_MODES}")
    payload = _float32_frame(frames[1], 4 * n, "command payload")
    target, kp, kd, raw = payload[:n], payload[n:2 * n], payload[2 * n:3 * n], payload[3 * n:]
    message = CommandMessage(obs_seq=obs_seq, target_rad=target, kp=kp, kd=kd, raw_action=raw,
                             mode=mode, send_ns=send_ns, receive_ns=receive_ns, actor_ns=actor_ns,
                             depth_step_ns=depth_ns, depth_seq_used=depth_seq)
    if not _all_of(np.isfinite(payload)):
        bad = np.flatnonzero(~np.isfinite(payload))
        raise NonFiniteCommandError(f"command for seq {obs_seq}: non-finite values at payload "
                                    f"index {bad[:8].tolist()}", message)
    # kp and kd are adjacent in the payload: one reduction for both (all finite by now; -0.0 is
    # not negative, as before; initial=0 answers for an empty payload).
    if np.minimum.reduce(payload[n:3 * n], initial=0.0) < 0:
        raise ProtocolError(f"command for seq {obs_seq}: negative gains kp={kp.min()} kd={kd.min()}")
    return message

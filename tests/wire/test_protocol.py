"""Wire protocol: bit-exact round trips, validation of every field, and a decoder fuzz test."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hal.devices.base import CameraIntrinsics
from hal.protocol import (
    FLAG_DEPTH_ATTACHED,
    FLAG_INPROC,
    PROTOCOL_VERSION,
    CommandMessage,
    NonFiniteCommandError,
    ObservationHeader,
    ProtocolError,
    StateLayout,
    decode_command,
    decode_observation_frames,
    decode_observation_header,
    encode_command,
    encode_observation_header,
)

N = 12
LAYOUT = StateLayout(N, 4)


def make_header(**overrides) -> ObservationHeader:
    fields = dict(seq=2**40 + 7, timestamp_ns=123_456_789_012, publish_ns=123_456_999_000,
                  n_joints=N, n_feet=4, depth_shape=(60, 106), depth_seq=99,
                  depth_timestamp_ns=123_400_000_000,
                  intrinsics=CameraIntrinsics(106, 60, 50.25, 50.25, 52.5, 29.5),
                  flags=FLAG_DEPTH_ATTACHED, slot=3, slot_generation=18, depth_slot=1,
                  depth_generation=6)
    fields.update(overrides)
    return ObservationHeader(**fields)


def make_command(n=N, seed=0) -> CommandMessage:
    rng = np.random.default_rng(seed)
    f = lambda: rng.normal(size=n).astype(np.float32)  # noqa: E731
    return CommandMessage(obs_seq=41, target_rad=f(), kp=np.abs(f()) * 40, kd=np.abs(f()),
                          raw_action=f(), mode=0, send_ns=5, receive_ns=4, actor_ns=3,
                          depth_step_ns=2, depth_seq_used=1)


def test_observation_header_round_trip_is_exact():
    header = make_header()
    assert decode_observation_header(encode_observation_header(header)) == header


def test_tcp_observation_round_trip_every_array_bit_exact():
    rng = np.random.default_rng(1)
    state = rng.normal(size=LAYOUT.size).astype(np.float32)
    depth = rng.uniform(0, 3, size=(60, 106)).astype(np.float32)
    depth[3, 4] = np.nan
    depth[5, 6] = np.inf
    frame = encode_observation_header(make_header()) + state.tobytes() + depth.tobytes()
    header, got_state, got_depth = decode_observation_frames([frame], LAYOUT, (60, 106))
    assert header.seq == 2**40 + 7
    assert got_state.tobytes() == state.tobytes()
    assert got_depth.tobytes() == depth.tobytes()  # NaN/inf are data in a depth frame
    views = LAYOUT.views(got_state)
    assert views["joint_position_rad"].tobytes() == state[:N].tobytes()
    assert views["foot_force_n"].tobytes() == state[-4:].tobytes()


def test_state_layout_sizes():
    assert LAYOUT.size == 3 * 12 + 4 + 3 + 3 + 4
    assert StateLayout(18, 6).size == 3 * 18 + 10 + 6


def test_command_round_trip_bit_exact():
    cmd = make_command()
    got = decode_command(encode_command(cmd), N)
    for name in ("target_rad", "kp", "kd", "raw_action"):
        assert getattr(got, name).tobytes() == getattr(cmd, name).tobytes()
    for name in ("obs_seq", "mode", "send_ns", "receive_ns", "actor_ns", "depth_step_ns",
                 "depth_seq_used"):
        assert getattr(got, name) == getattr(cmd, name)


@pytest.mark.parametrize("mutate, message", [
    (lambda f: [b"XXXX" + f[0][4:], f[1]], "bad magic"),
    (lambda f: [f[0][:4] + struct.pack("<H", PROTOCOL_VERSION + 1) + f[0][6:], f[1]], "version"),
    (lambda f: [f[0]], "frames"),
    (lambda f: [f[0], f[1], b""], "frames"),
    (lambda f: [f[0][:-1], f[1]], "header"),
    (lambda f: [f[0], f[1][:-4]], "bytes"),
    (lambda f: [f[0], f[1] + b"\0" * 4], "bytes"),
    (lambda f: [f[0][:6] + struct.pack("<H", 7) + f[0][8:], f[1]], "mode"),
])
def test_command_malformed_is_rejected_with_reason(mutate, message):
    frames = encode_command(make_command())
    with pytest.raises(ProtocolError, match=message):
        decode_command(mutate(frames), N)


def test_command_for_other_joint_count_is_rejected():
    with pytest.raises(ProtocolError, match="18 joints"):
        decode_command(encode_command(make_command(n=18)), N)


def test_command_with_nan_is_flagged_with_the_message():
    cmd = make_command()
    cmd.target_rad[2] = np.nan
    with pytest.raises(NonFiniteCommandError) as info:
        decode_command(encode_command(cmd), N)
    assert info.value.message.obs_seq == 41
    assert np.isnan(info.value.message.target_rad[2])


def test_command_with_negative_gain_is_rejected():
    cmd = make_command()
    cmd.kd[0] = -1.0
    with pytest.raises(ProtocolError, match="negative gains"):
        decode_command(encode_command(cmd), N)


@pytest.mark.parametrize("frames_of, message", [
    (lambda h, s, d: [h + s], "expected"),  # depth flagged but missing
    (lambda h, s, d: [h + s[:-4] + d], "expected"),
    (lambda h, s, d: [h + s + d[:100]], "expected"),
    (lambda h, s, d: [h[:-2] + s + d], "observation"),
    (lambda h, s, d: [h + s + d, b"x"], "frames"),
    (lambda h, s, d: [], "frames"),
])
def test_observation_malformed_is_rejected(frames_of, message):
    header = encode_observation_header(make_header())
    state = np.zeros(LAYOUT.size, np.float32).tobytes()
    depth = np.zeros((60, 106), np.float32).tobytes()
    with pytest.raises(ProtocolError, match=message):
        decode_observation_frames(frames_of(header, state, depth), LAYOUT, (60, 106))


def test_inproc_observation_with_trailing_bytes_is_rejected():
    frame = encode_observation_header(make_header(flags=FLAG_INPROC)) + b"\0" * 8
    with pytest.raises(ProtocolError, match="header alone"):
        decode_observation_frames([frame], LAYOUT, (60, 106))


def test_observation_for_another_robot_is_rejected():
    frames = [encode_observation_header(make_header(n_joints=18, n_feet=6, flags=FLAG_INPROC))]
    with pytest.raises(ProtocolError, match="18 joints / 6 feet"):
        decode_observation_frames(frames, LAYOUT, (60, 106))


def test_observation_with_bad_intrinsics_is_rejected():
    bad = make_header(intrinsics=CameraIntrinsics(106, 60, float("nan"), 50.0, 52.5, 29.5))
    with pytest.raises(ProtocolError, match="intrinsics"):
        decode_observation_header(encode_observation_header(bad))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(max_size=200), min_size=0, max_size=4))
def test_decoders_never_crash_on_arbitrary_frames(frames):
    for decode in (lambda f: decode_command(f, N),
                   lambda f: decode_observation_frames(f, LAYOUT, (60, 106))):
        try:
            decode(frames)
        except ProtocolError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=64), st.integers(0, 12))
def test_decoders_never_crash_on_corrupted_valid_messages(noise, cut):
    """Valid messages with bytes overwritten or truncated: ProtocolError or a valid decode."""
    frames = encode_command(make_command())
    head = bytearray(frames[0])
    head[cut:cut + len(noise)] = noise[: max(0, len(head) - cut)]
    try:
        got = decode_command([bytes(head)[: len(frames[0])], frames[1]], N)
    except ProtocolError:
        return
    assert got.target_rad.shape == (N,)

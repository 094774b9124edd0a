"""decode_command's value checks, field by field: which payload is accepted, and which error names
what (the decoder checks finiteness first, then the sign of both gains in one pass)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hal.protocol import (
    CommandMessage,
    NonFiniteCommandError,
    ProtocolError,
    decode_command,
    encode_command,
)

N = 5
SPECIAL = [0.0, -0.0, -1e-30, 1e-30, -1.0, 3.0e38, -3.0e38, math.inf, -math.inf, math.nan]


def frames_of(target, kp, kd, raw) -> list[bytes]:
    return encode_command(CommandMessage(
        obs_seq=7, target_rad=np.asarray(target, np.float32), kp=np.asarray(kp, np.float32),
        kd=np.asarray(kd, np.float32), raw_action=np.asarray(raw, np.float32)))


def value() -> st.SearchStrategy[float]:
    return st.one_of(st.sampled_from(SPECIAL), st.floats(-10.0, 10.0, width=32))


@settings(max_examples=300, deadline=None)
@given(*(st.lists(value(), min_size=N, max_size=N) for _ in range(4)))
def test_command_values_are_accepted_or_rejected_by_the_rule(target, kp, kd, raw):
    """Any NaN/inf anywhere → NonFiniteCommandError; else any gain < 0 → ProtocolError naming
    negative gains (-0.0 is not negative); else the message, values bit-exact."""
    frames = frames_of(target, kp, kd, raw)
    values = [float(np.float32(v)) for v in (*target, *kp, *kd, *raw)]
    if not all(math.isfinite(v) for v in values):
        with pytest.raises(NonFiniteCommandError, match="non-finite values at payload index"):
            decode_command(frames, N)
    elif any(float(np.float32(v)) < 0 for v in (*kp, *kd)):
        with pytest.raises(ProtocolError, match="negative gains") as info:
            decode_command(frames, N)
        assert not isinstance(info.value, NonFiniteCommandError)
    else:
        got = decode_command(frames, N)
        for name, expected in (("target_rad", target), ("kp", kp), ("kd", kd),
                               ("raw_action", raw)):
            np.testing.assert_array_equal(getattr(got, name), np.float32(expected))
            assert getattr(got, name).shape == (N,)


@pytest.mark.parametrize("which", ["kp", "kd"])
def test_a_negative_gain_in_either_array_is_named(which):
    gains = {"kp": np.full(N, 40.0), "kd": np.ones(N)}
    gains[which][N - 1] = -2.0
    with pytest.raises(ProtocolError, match=f"{which}=-2.0"):
        decode_command(frames_of(np.zeros(N), gains["kp"], gains["kd"], np.zeros(N)), N)


def test_a_command_for_zero_joints_decodes_empty():
    empty = np.zeros(0)
    got = decode_command(frames_of(empty, empty, empty, empty), 0)
    assert got.target_rad.shape == got.kp.shape == got.kd.shape == (0,)

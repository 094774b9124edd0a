"""Pure target checks: torque window, feasible set, safe_target (unit cases and a property test)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hal.safety.targets import (
    FLAG_LIMIT,
    FLAG_NONFINITE,
    FLAG_STEP,
    FLAG_STEP_CONFLICT,
    FLAG_TORQUE,
    FLAG_TORQUE_INFEASIBLE,
    TargetFilter,
    feasible_interval,
    safe_target,
    torque_window,
)

from .guarantees import check_guarantees

T = 23.7  # Go2 hip/thigh torque limit (N·m)


def one(value: float) -> np.ndarray:
    return np.array([value], dtype=np.float64)


def target(desired, reference, q, dq, kp=40.0, kd=1.0, lower=-1.0, upper=1.0, tau=T, step=0.3):
    return float(safe_target(one(desired), one(reference), one(q), one(dq), one(kp), one(kd),
                             one(lower), one(upper), one(tau), step)[0])


def pd_torque(t, q, dq, kp, kd):
    return kp * (t - q) - kd * dq


def test_torque_window_matches_pd_torque_at_its_edges():
    q = np.array([0.3, -1.2, 2.0])
    dq = np.array([0.0, 12.0, -25.0])
    kp = np.array([40.0, 20.0, 80.0])
    kd = np.array([1.0, 0.5, 2.0])
    tau = np.array([23.7, 45.43, 10.0])
    lo, hi = torque_window(q, dq, kp, kd, tau)
    for i in range(3):
        assert pd_torque(lo[i], q[i], dq[i], kp[i], kd[i]) == pytest.approx(-tau[i])
        assert pd_torque(hi[i], q[i], dq[i], kp[i], kd[i]) == pytest.approx(tau[i])


def test_feasible_interval_intersects_or_collapses_onto_the_nearest_limit():
    # Joint 0: window [-0.5925, 0.5925] inside limits [-1, 1] -> the window itself.
    # Joint 1: q at the upper limit moving up fast: window starts above the upper limit.
    # Joint 2: q at the lower limit moving down fast: window ends below the lower limit.
    q = np.array([0.0, 1.0, -1.0])
    dq = np.array([0.0, 40.0, -40.0])
    ones = np.ones(3)
    lo, hi = feasible_interval(q, dq, 40.0 * ones, ones, T * ones, -ones, ones)
    assert lo[0] == pytest.approx(-T / 40) and hi[0] == pytest.approx(T / 40)
    assert 1.0 + (-T + 40.0) / 40.0 > 1.0  # the window of joint 1 really misses the limits
    assert lo[1] == hi[1] == 1.0
    assert lo[2] == hi[2] == -1.0


def test_inside_everything_passes_unchanged():
    assert target(0.1, 0.0, 0.0, 0.0) == 0.1


def test_joint_limit_clamps():
    # q near the upper limit so the torque window contains it; step allows it.
    assert target(1.5, 0.9, 0.95, 0.0, step=1.0) == 1.0


def test_step_cap_relative_to_reference():
    assert target(0.5, 0.1, 0.1, 0.0, step=0.2) == pytest.approx(0.3)
    assert target(-0.5, 0.1, 0.1, 0.0, step=0.2) == pytest.approx(-0.1)


def test_torque_window_clamps_at_rest():
    # 40 (t - 0) <= 23.7  ->  t <= 0.5925
    assert target(0.9, 0.5, 0.0, 0.0, step=1.0) == pytest.approx(23.7 / 40.0)


def test_torque_window_shifts_with_velocity():
    # tau = 40 (t - 0) - 1 * 10 in [-23.7, 23.7]  ->  t in [-0.3425, 0.8425]
    assert target(0.95, 0.7, 0.0, 10.0, step=1.0) == pytest.approx((23.7 + 10.0) / 40.0)
    assert target(-0.9, -0.2, 0.0, 10.0, step=1.0) == pytest.approx((-23.7 + 10.0) / 40.0)


def test_step_and_torque_conflict_prefers_torque_feasible_side():
    # F = [-0.5925, 0.5925]; S = [0.7, 1.3]: disjoint, so the target is F's point nearest 1.0.
    assert target(1.0, 1.0, 0.0, 0.0, step=0.3) == pytest.approx(23.7 / 40.0)


def test_torque_window_beyond_limit_gives_nearest_limit():
    # q = upper, dq = 40: the window starts at 1 + (40 - 23.7) / 40 > 1, so the target is 1.
    assert target(0.0, 1.0, 1.0, 40.0, step=0.3) == 1.0
    assert target(0.0, -1.0, -1.0, -40.0, step=0.3) == -1.0


def test_non_finite_desired_is_replaced_by_reference():
    out = safe_target(np.array([np.nan, np.inf, -np.inf]), np.array([0.1, 0.2, -0.3]),
                      np.zeros(3), np.zeros(3), np.full(3, 40.0), np.ones(3), -np.ones(3),
                      np.ones(3), np.full(3, T), 0.3)
    np.testing.assert_array_equal(out, [0.1, 0.2, -0.3])


def test_flags_name_each_clamp():
    f = TargetFilter(-np.ones(1), np.ones(1), np.full(1, T), 0.3)
    out = np.empty(1)
    args = (one(0.0), one(0.0), one(40.0), one(1.0), out)
    assert f.apply(one(0.1), one(0.0), *args) == 0
    assert f.apply(one(0.5), one(0.0), *args) == FLAG_STEP
    assert f.apply(one(0.7), one(0.6), *args) == FLAG_TORQUE
    assert f.apply(one(2.0), one(0.5), *args) == FLAG_LIMIT | FLAG_TORQUE | FLAG_STEP
    assert f.apply(one(1.0), one(1.0), *args) & FLAG_STEP_CONFLICT
    assert f.apply(one(np.nan), one(0.0), *args) == FLAG_NONFINITE
    flags = f.apply(one(0.0), one(1.0), one(1.0), one(40.0), one(40.0), one(1.0), out)
    assert flags & FLAG_TORQUE_INFEASIBLE


def test_filter_rejects_bad_limits():
    with pytest.raises(ValueError, match="below upper"):
        TargetFilter(np.ones(2), np.zeros(2), np.ones(2), 0.1)
    with pytest.raises(ValueError, match="must be > 0"):
        TargetFilter(np.zeros(2), np.ones(2), np.ones(2), 0.0)


# -------------------------------------------------------------------------------- property test

finite = st.floats(-10.0, 10.0, allow_nan=False)
wild = st.one_of(finite, st.sampled_from([np.nan, np.inf, -np.inf, 1e300, -1e300, 1e30]))


@st.composite
def joint_case(draw):
    lower = draw(st.floats(-3.0, 2.0))
    upper = lower + draw(st.floats(0.05, 4.0))
    q = draw(st.floats(lower - 0.5, upper + 0.5))
    return dict(
        desired=draw(wild), ref=draw(st.floats(lower, upper)), q=q,
        dq=draw(st.one_of(st.floats(-40.0, 40.0), st.floats(-1e6, 1e6))),
        kp=draw(st.floats(0.5, 200.0)), kd=draw(st.floats(0.0, 10.0)), lower=lower, upper=upper,
        tau=draw(st.floats(1.0, 60.0)))


@settings(max_examples=300, deadline=None)
@given(st.lists(joint_case(), min_size=1, max_size=12), st.floats(0.01, 1.0))
def test_safe_target_guarantees(cases, step):
    arrays = {k: np.array([c[k] for c in cases], dtype=np.float64) for k in cases[0]}
    t = safe_target(arrays["desired"], arrays["ref"], arrays["q"], arrays["dq"], arrays["kp"],
                    arrays["kd"], arrays["lower"], arrays["upper"], arrays["tau"], step)
    check_guarantees(t, arrays["desired"], arrays["ref"], arrays["q"], arrays["dq"], arrays["kp"],
                     arrays["kd"], arrays["lower"], arrays["upper"], arrays["tau"], step)

"""The per-tick fast paths of the safety layer give exactly what the full checks give.

Each fast path (target filter, command intake, plausibility watchdog, joint and IMU checks) is
compared with an independent plain-Python reading of the documented rule, on random and on
boundary inputs (values exactly on a bound, NaN, inf, odd dtypes), so a shortcut that drifts from
the rule fails here even where the safety guarantees would still hold.
"""

from __future__ import annotations

import math
import sys
import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hal.devices.base import CONTROL_MODE_POSITION, ContactSample, ImuSample, JointState
from hal.safety import SafetyConfig
from hal.safety.intake import COMMAND_INVALID, COMMAND_MISSING, COMMAND_VALID, CommandIntake
from hal.safety.monitor import SMALL_JOINT_VALUE, SensorMonitor, imu_quaternion
from hal.safety.plausibility import PlausibilityWatchdog
from hal.safety.targets import (
    FLAG_LIMIT,
    FLAG_NONFINITE,
    FLAG_STEP,
    FLAG_STEP_CONFLICT,
    FLAG_TORQUE,
    FLAG_TORQUE_INFEASIBLE,
    TargetFilter,
)

from .rig import Rig

# ------------------------------------------------------------------------------ target filter


def reference_filter(desired, ref, q, dq, kp, kd, lower, upper, tau, step):
    """The module docstring of hal.safety.targets, one joint at a time on Python floats (the same
    IEEE operations in the same order, so the results must match bit for bit up to zero signs)."""
    flags, out = 0, []
    for i in range(len(desired)):
        d = float(desired[i])
        r = float(ref[i])
        if not math.isfinite(d):
            flags |= FLAG_NONFINITE
            d = r
        bias = float(kd[i]) * float(dq[i])
        a = (bias - float(tau[i])) / float(kp[i]) + float(q[i])
        b = (bias + float(tau[i])) / float(kp[i]) + float(q[i])
        lo, hi = max(a, float(lower[i])), min(b, float(upper[i]))
        if lo > hi:
            flags |= FLAG_TORQUE_INFEASIBLE
            lo = hi = float(upper[i]) if a > float(upper[i]) else float(lower[i])
        s_lo, s_hi = r - step, r + step
        if d < float(lower[i]) or d > float(upper[i]):
            flags |= FLAG_LIMIT
        if d < a or d > b:
            flags |= FLAG_TORQUE
        if d < s_lo or d > s_hi:
            flags |= FLAG_STEP
        if s_hi < lo or s_lo > hi:
            flags |= FLAG_STEP_CONFLICT
        out.append(min(max(min(max(d, s_lo), s_hi), lo), hi))
    return np.array(out), flags


LOWER = np.array([-1.0, -0.5, -2.7, 0.0])
UPPER = np.array([1.0, 0.5, -0.8, 1.5])
TAU = np.array([23.7, 23.7, 45.43, 10.0])


@st.composite
def filter_case(draw):
    n = len(LOWER)
    q = np.array([draw(st.floats(lo - 0.3, hi + 0.3)) for lo, hi in zip(LOWER, UPPER)])
    ref = np.array([draw(st.floats(lo, hi)) for lo, hi in zip(LOWER, UPPER)])
    dq = np.array(draw(st.lists(st.one_of(st.floats(-40, 40), st.sampled_from([0.0, 1e6, -1e6])),
                                min_size=n, max_size=n)))
    kp = np.array(draw(st.lists(st.floats(1.0, 100.0), min_size=n, max_size=n)))
    kd = np.array(draw(st.lists(st.floats(0.0, 5.0), min_size=n, max_size=n)))
    step = draw(st.floats(0.05, 0.5))
    # Desired: mostly inside every bound (where the fast path applies), on the edge of that
    # region or one floating-point step beyond it, on any single bound, or anywhere.
    window_lo = (kd * dq - TAU) / kp + q
    window_hi = (kd * dq + TAU) / kp + q
    bounds = [LOWER, UPPER, window_lo, window_hi, ref - step, ref + step]
    inside_lo = np.maximum.reduce([LOWER, window_lo, ref - step])
    inside_hi = np.minimum.reduce([UPPER, window_hi, ref + step])
    desired = np.empty(n)
    for i in range(n):
        kinds = ["inside"] * 8 + ["edge"] * 2 + ["bound", "any", "wild"]
        kind = draw(st.sampled_from(kinds if inside_lo[i] <= inside_hi[i] else kinds[10:]))
        if kind == "inside":
            desired[i] = inside_lo[i] + draw(st.floats(0.0, 1.0)) * (inside_hi[i] - inside_lo[i])
        elif kind in ("edge", "bound"):
            value = (draw(st.sampled_from([inside_lo, inside_hi])) if kind == "edge"
                     else draw(st.sampled_from(bounds)))[i]
            desired[i] = np.nextafter(value, draw(st.sampled_from([-np.inf, value, np.inf])))
        elif kind == "any":
            desired[i] = draw(st.floats(-4.0, 4.0))
        else:
            desired[i] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e300]))
    return desired, ref, q, dq, kp, kd, step


@settings(max_examples=400, deadline=None)
@given(filter_case(), st.booleans())
def test_target_filter_matches_the_documented_rule(case, window_safe):
    desired, ref, q, dq, kp, kd, step = case
    filt = TargetFilter(LOWER, UPPER, TAU, step)
    out = np.empty(len(LOWER))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy warning on any path
        flags = filt.apply(desired, ref, q, dq, kp, kd, out, window_safe=window_safe)
    expected, expected_flags = reference_filter(desired, ref, q, dq, kp, kd, LOWER, UPPER, TAU,
                                                step)
    assert flags == expected_flags
    np.testing.assert_array_equal(out, expected)


def test_target_inside_every_bound_passes_unchanged_with_no_flag():
    filt = TargetFilter(LOWER, UPPER, TAU, 0.3)
    ref = np.array([0.0, 0.1, -1.5, 0.7])
    out = np.empty(4)
    desired = ref + np.array([0.3, -0.3, 0.0, 0.2])  # on the step bound, or inside it
    assert filt.apply(desired, ref, ref, np.zeros(4), np.full(4, 40.0), np.ones(4), out) == 0
    np.testing.assert_array_equal(out, desired)


def test_filter_with_infinite_limits_still_replaces_non_finite_targets():
    filt = TargetFilter(np.full(2, -np.inf), np.full(2, np.inf), np.full(2, 10.0), 0.5)
    out = np.empty(2)
    flags = filt.apply(np.array([np.inf, 0.2]), np.zeros(2), np.zeros(2), np.zeros(2),
                       np.full(2, 40.0), np.ones(2), out)
    assert flags == FLAG_NONFINITE
    np.testing.assert_array_equal(out, [0.0, 0.2])


# ------------------------------------------------------------------------------ command intake

CFG = SafetyConfig(kp_min=5.0, kp_max=80.0, kd_min=0.2, kd_max=4.0)
N = 6
DEFAULT_KP, DEFAULT_KD = np.full(N, 40.0), np.full(N, 1.0)


def reference_take(targets, kp, kd):
    """The intake rule in plain Python: (state, target, kp, kd, gains_clamped, rejection key)."""
    if targets is None:
        return COMMAND_MISSING, None
    given_arrays = []
    for value in (targets, kp, kd):
        if value is None:
            given_arrays.append(None)
            continue
        arr = np.asarray(value)
        if arr.shape != (N,) or arr.dtype.kind not in "fiu":
            return COMMAND_INVALID, "command.rejected.shape"
        if not all(np.isfinite(v) for v in arr):  # finite in the array's own dtype
            return COMMAND_INVALID, "command.rejected.nonfinite"
        given_arrays.append(arr)
    target = [float(v) for v in given_arrays[0]]
    clamped = False
    gains = []
    for arr, default, low, high in ((given_arrays[1], DEFAULT_KP, CFG.kp_min, CFG.kp_max),
                                    (given_arrays[2], DEFAULT_KD, CFG.kd_min, CFG.kd_max)):
        values = [float(v) for v in (default if arr is None else arr)]
        if arr is not None and any(v < low or v > high for v in values):
            clamped = True
        gains.append([min(max(v, low), high) for v in values])
    return COMMAND_VALID, (target, gains[0], gains[1], clamped)


def array_of(draw, lo, hi):
    """An array of values in [lo, hi], often exactly on an end or just beyond it, in one of
    many forms."""
    ends = [lo, hi, np.nextafter(lo, -np.inf), np.nextafter(hi, np.inf)]
    values = draw(st.lists(st.one_of(st.floats(lo, hi), st.sampled_from(ends)), min_size=N,
                           max_size=N))
    kind = draw(st.sampled_from(["f64"] * 8 + ["f32"] * 2 + ["nan"] * 2 + [
        "f16", "int", "list", "short", "inf", "longdouble", "huge", "complex", "bool"]))
    arr = np.array(values)
    if kind == "f32":
        return arr.astype(np.float32)
    if kind == "f16":
        return arr.astype(np.float16)
    if kind == "int":
        return np.round(arr).astype(np.int64)
    if kind == "list":
        return list(values)
    if kind == "short":
        return arr[:-1]
    if kind == "nan":
        arr[draw(st.integers(0, N - 1))] = np.nan
    if kind == "inf":
        arr[draw(st.integers(0, N - 1))] = -np.inf
    if kind == "longdouble":
        return arr.astype(np.longdouble)
    if kind == "huge":  # finite as long double, infinite as float64
        arr = arr.astype(np.longdouble)
        arr[draw(st.integers(0, N - 1))] = np.longdouble(10) ** 4000
        return arr
    if kind == "complex":
        return arr.astype(np.complex128)
    if kind == "bool":
        return arr > 0
    return arr


@st.composite
def command(draw):
    targets = None if draw(st.integers(0, 9)) == 0 else array_of(draw, -3.0, 3.0)
    # Gains: none, inside their bounds (ends included), or anywhere (clamped when outside).
    kp, kd = (draw(st.sampled_from([None, None, array_of(draw, low, high),
                                    array_of(draw, low, high), array_of(draw, 0.0, 2 * high)]))
              for low, high in ((CFG.kp_min, CFG.kp_max), (CFG.kd_min, CFG.kd_max)))
    return targets, kp, kd


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # the "huge" long doubles
@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(st.lists(command(), min_size=1, max_size=4))
def test_command_intake_matches_the_documented_rule(commands):
    intake = CommandIntake(CFG, DEFAULT_KP, DEFAULT_KD)
    kept = None
    for targets, kp, kd in commands:
        state = intake.take(targets, kp, kd)
        expected_state, expected = reference_take(targets, kp, kd)
        assert state == expected_state
        if state == COMMAND_INVALID:
            assert intake.rejection[0] == expected
        elif state == COMMAND_VALID:
            kept = expected
            assert intake.gains_clamped == expected[3]
        if kept is not None:  # a rejected or missing command leaves the kept one unchanged
            assert intake.has_valid
            np.testing.assert_array_equal(intake.target, kept[0])
            np.testing.assert_array_equal(intake.kp, kept[1])
            np.testing.assert_array_equal(intake.kd, kept[2])
            np.testing.assert_array_equal(intake.command.rows, [kept[0], kept[1], kept[2]])


def test_rejection_names_the_first_bad_array_in_order():
    intake = CommandIntake(CFG, DEFAULT_KP, DEFAULT_KD)
    bad_target = np.zeros(N)
    bad_target[2] = np.nan
    assert intake.take(bad_target, np.zeros(N - 1), None) == COMMAND_INVALID
    assert intake.rejection == ("command.rejected.nonfinite",
                                "targets has non-finite values at joints [2]")
    assert intake.take(np.zeros(N), np.zeros(N - 1), np.full(N, np.nan)) == COMMAND_INVALID
    assert intake.rejection[0] == "command.rejected.shape" and intake.rejection[1].startswith("kp")
    assert not intake.has_valid


# ------------------------------------------------------------------------------ plausibility


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.one_of(st.floats(-3.0, 3.0), st.sampled_from([np.nan, 1.3, -1.3, 0.9])),
                         min_size=3, max_size=3), min_size=1, max_size=10),
       st.sampled_from([0.6, 0.75, 1.0]))
def test_plausibility_matches_the_documented_rule(ticks, fraction):
    lower, upper = np.array([-1.0, -1.0, 0.0]), np.array([1.0, 0.5, 1.0])
    watchdog = PlausibilityWatchdog(lower, upper, fraction, 3, ("a", "b", "c"))
    streak = 0
    previous = None
    for desired in ticks:
        # Implausible: some desired outside [lower, upper] (a NaN counts), or some joint stepping
        # at least fraction × its range's width from the previous command.
        outside = any(not (lo <= d <= hi) for d, lo, hi in zip(desired, lower, upper))
        slam = previous is not None and any(
            abs(d - p) >= fraction * (hi - lo) for d, p, lo, hi in zip(desired, previous, lower,
                                                                        upper))
        previous = desired
        streak = streak + 1 if (outside or slam) else 0
        assert watchdog.judge(np.array(desired)) == (streak >= 3)
        assert watchdog.streak == streak


def test_plausibility_detail_names_the_worst_joint():
    watchdog = PlausibilityWatchdog(-np.ones(3), np.ones(3), 0.75, 1, ("a", "b", "c"))
    assert watchdog.judge(np.array([0.0, 0.0, -1.4]))
    assert ("last: c target -1.400 rad, 0.400 rad outside its action range [-1.000, 1.000] rad"
            in watchdog.detail)
    watchdog.reset()
    assert not watchdog.judge(np.array([0.0, 0.9, 0.8]))  # nothing to step from
    assert not watchdog.judge(np.array([0.0, -0.5, 0.8]))  # -1.4 < 1.5
    assert watchdog.judge(np.array([0.0, -0.5, -0.7]))  # -1.5 on c
    assert "last: c slammed -1.500 rad in one policy step (a slam is a step >= 1.500 rad)" in (
        watchdog.detail)


# ------------------------------------------------------------------------------ sensor checks

WILD = [np.nan, np.inf, -np.inf, 1e300, -2e6, 0.0]


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16, np.int32, ">f8"])
@pytest.mark.parametrize("wild", WILD)
@pytest.mark.parametrize("where", ["q", "dq"])
def test_joints_usable_is_finiteness_and_small_is_the_bound(dtype, wild, where):
    monitor = SensorMonitor(SafetyConfig(), 4, 4, 20.0)
    q, dq = np.array([0.1, -0.2, 0.3, 2.0]), np.array([1.0, -30.0, 0.0, 5.0])
    with np.errstate(all="ignore"):
        (q if where == "q" else dq)[1] = wild
        q, dq = q.astype(dtype), dq.astype(dtype)
    usable = monitor.joints_usable(JointState(q, dq, np.zeros(4), 0))
    values = [float(v) for v in (*q, *dq)]
    assert usable == all(math.isfinite(v) for v in values)
    assert monitor.joints_small == all(abs(v) <= SMALL_JOINT_VALUE for v in values)


def test_joints_usable_rejects_odd_inputs_like_before():
    monitor = SensorMonitor(SafetyConfig(), 3, 4, 20.0)
    assert not monitor.joints_usable(JointState([0.0, 0.0, 0.0], np.zeros(3), np.zeros(3), 0))
    assert not monitor.joints_usable(JointState(np.zeros((3, 1)), np.zeros(3), np.zeros(3), 0))
    assert monitor.joints_usable(JointState(np.zeros(3, complex), np.zeros(3), np.zeros(3), 0))
    with pytest.raises(TypeError):
        monitor.joints_usable(JointState(np.zeros(3, object), np.zeros(3), np.zeros(3), 0))
    # A non-finite position answers before the velocity is looked at.
    assert not monitor.joints_usable(JointState(np.array([np.nan, 0.0, 0.0]),
                                                np.zeros(3, object), np.zeros(3), 0))


@pytest.mark.parametrize("make", [
    lambda v: np.array(v), lambda v: np.array(v, np.float32), lambda v: list(v),
    lambda v: tuple(v), lambda v: np.array(v).astype(np.float16), lambda v: np.array(v, ">f8")])
@pytest.mark.parametrize("quat, gyro, accel", [
    ([1.0, 0.0, 0.0, 0.0], [0.1, 0.2, 0.3], [0.0, 0.0, 9.81]),
    ([0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 9.81]),
    ([0.9, 0.1, -0.3, 0.2], [1e30, -1e30, 0.0], [0.0, 0.0, 9.81]),
    ([1.0, 0.0, 0.0, 0.0], [np.inf, 0.0, 0.0], [0.0, 0.0, 9.81]),
    ([1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, np.nan, 9.81]),
    ([1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, -np.inf]),
    ([np.nan, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 9.81]),
    ([0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 9.81]),
    ([1e-9, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 9.81]),
])
def test_imu_quaternion_is_the_normalized_quaternion_of_a_finite_sample(make, quat, gyro, accel):
    with np.errstate(all="ignore"):
        imu = ImuSample(make(quat), make(gyro), make(accel), 0)
        values_q = [float(v) for v in imu.quaternion_wxyz]
        values_ga = [float(v) for v in (*imu.angular_velocity_rad_s,
                                         *imu.linear_acceleration_m_s2)]
    norm = math.sqrt(sum(v * v for v in values_q))
    expected = None
    if all(math.isfinite(v) for v in values_ga) and math.isfinite(norm) and norm >= 1e-6:
        expected = tuple(v / norm for v in values_q)
    assert imu_quaternion(imu) == expected


def test_imu_quaternion_rejects_wrong_shapes():
    good = np.array([1.0, 0.0, 0.0, 0.0])
    for quat, gyro in ((good[:3], np.zeros(3)), (good, np.zeros(4)), (good.reshape(2, 2),
                                                                      np.zeros(3))):
        assert imu_quaternion(ImuSample(quat, gyro, np.zeros(3), 0)) is None


# ------------------------------------------------------------------------------ the layer


def test_huge_joint_velocity_is_handled_without_numpy_warnings():
    """Readings beyond SMALL_JOINT_VALUE take the guarded torque-window computation (the
    measured-velocity limit, which would damp at once, is off to reach it)."""
    rig = Rig(gate_max_tracking_error_rad=10.0, joint_velocity_limit_scale=None)
    rig.to_policy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for dq in (1e300, -1e300, 2 * SMALL_JOINT_VALUE, 1.0):
            out = rig.tick(targets=rig.default, dq=np.full(rig.n, dq))
            assert out.mode == CONTROL_MODE_POSITION
            lower, upper = rig.bounds()
            assert np.all(out.target >= lower) and np.all(out.target <= upper)
    assert rig.layer.counters()["check.torque_infeasible"] >= 2


def test_policy_command_is_applied_exactly_when_it_needs_no_clamp():
    """The steady policy tick: a command inside every bound reaches the motors unchanged."""
    rig = Rig()
    rig.to_policy()
    for _ in range(int(rig.config.blend_duration_s * 50) + 2):
        rig.tick(targets=rig.default)
    targets = rig.default + 0.05
    kp, kd = rig.kp * 1.1, rig.kd * 0.9
    out = rig.tick(targets=targets.astype(np.float32), kp=kp.astype(np.float32),
                   kd=kd.astype(np.float32))
    np.testing.assert_array_equal(out.target, targets.astype(np.float32).astype(np.float64))
    np.testing.assert_array_equal(out.kp, kp.astype(np.float32).astype(np.float64))
    np.testing.assert_array_equal(out.kd, kd.astype(np.float32).astype(np.float64))
    assert not any(key.startswith("check.") for key in rig.layer.counters())


def test_a_long_double_too_large_for_float64_warns_once_as_before():
    """Only the full check casts it (to inf, accepted as before: it is finite as given)."""
    intake = CommandIntake(CFG, DEFAULT_KP, DEFAULT_KD)
    targets = np.zeros(N, dtype=np.longdouble)
    targets[1] = np.longdouble(10) ** 4000
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert intake.take(targets, None, None) == COMMAND_VALID
    assert [str(w.message) for w in caught] == ["overflow encountered in cast"]
    assert intake.target[1] == np.inf


@pytest.mark.skipif(sys.version_info < (3, 11), reason=(
    "CPython 3.10 allocates frame objects on the heap, which tracemalloc counts (the 3.11 run "
    "checks this)"))
def test_a_policy_tick_past_a_limit_allocates_no_more_than_one_inside():
    """The per-joint statistics and the watchdog add no allocation when a target lies past a
    joint limit (a landing) over a tick whose targets lie inside."""
    rig = Rig(blend_duration_s=0.02, past_limit_max_s=None)
    rig.to_policy()
    for _ in range(5):
        rig.tick(targets=rig.default)
    n, clock = rig.n, [rig.t]
    joints = JointState(position_rad=rig.default.copy(), velocity_rad_s=np.zeros(n),
                        torque_nm=np.zeros(n), timestamp_ns=0)
    imu = ImuSample(quaternion_wxyz=np.array([1.0, 0.0, 0.0, 0.0]),
                    angular_velocity_rad_s=np.zeros(3),
                    linear_acceleration_m_s2=np.array([0.0, 0.0, 9.81]), timestamp_ns=0)
    contact = ContactSample(np.full(rig.robot.n_feet, 60.0), 0)

    def ticker(targets):
        def tick(_):
            clock[0] += 20_000_000
            joints.timestamp_ns = imu.timestamp_ns = contact.timestamp_ns = clock[0]
            rig.layer.step(clock[0], joints, imu, contacts=contact, depth_timestamp_ns=clock[0],
                           policy_targets_hw=targets)
        return tick

    def peak_growth(fn) -> int:
        for i in range(20):
            fn(i)
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            for i in range(300):
                fn(i)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return peak - before

    past = rig.default.copy()
    past[[2, 5, 8, 11]] = rig.upper[[2, 5, 8, 11]] + 0.3  # the calves, as in a landing
    inside_peak = peak_growth(ticker(rig.default.copy()))
    past_peak = peak_growth(ticker(past))
    assert rig.layer.mode == "policy"
    assert rig.layer.policy_targets()["joints"]["FR_calf_joint"]["ticks_past_limit"] >= 300
    # A numpy array made per tick, even a 12-float temporary, adds well over 64 bytes.
    assert past_peak - inside_peak < 64, (past_peak, inside_peak)

"""SafetyLayer: every transition and every per-command check, with independently computed values."""

from __future__ import annotations

import logging
import math
import threading

import numpy as np
import pytest

from hal.devices.base import CONTROL_MODE_DAMP, CONTROL_MODE_POSITION
from hal.safety.events import Mode, TransitionLog

from .rig import DT_NS, Rig, quat_rpy


def cosine(alpha: float) -> float:
    return 1.0 if alpha >= 1.0 else 0.5 - 0.5 * math.cos(math.pi * alpha)


def assert_damping(rig: Rig, out, q=None) -> None:
    assert out.mode == CONTROL_MODE_DAMP
    np.testing.assert_array_equal(out.kp, np.zeros(rig.n))
    np.testing.assert_array_equal(out.kd, np.full(rig.n, rig.config.damping_kd))
    q = rig.q if q is None else q
    np.testing.assert_array_equal(out.target, np.minimum(np.maximum(q, rig.lower), rig.upper))


def last_event(rig: Rig) -> dict:
    return rig.layer.events()[-1]


# ----------------------------------------------------------------------------------- idle, start

def test_idle_sends_damping_with_measured_pose_clipped():
    rig = Rig()
    rig.q[2] = rig.lower[2] - 0.2  # a calf beyond its limit
    out = rig.tick()
    assert rig.layer.mode == "idle" and rig.layer.mode is Mode.IDLE
    assert_damping(rig, out)
    assert out.target[2] == rig.lower[2]
    assert rig.layer.events() == []


def test_stand_up_ramps_from_measured_pose_with_cosine_profile():
    rig = Rig(stand_up_duration_s=0.4)
    lying = rig.default.copy()
    lying[1::3] = 1.2  # thighs
    lying[2::3] = -2.6  # calves
    rig.q = lying.copy()
    rig.tick()
    assert rig.layer.request_start()
    t0 = rig.t + DT_NS
    ticks = int(0.4e9 // DT_NS)
    for k in range(ticks):
        out = rig.tick()
        alpha = (rig.t - t0) / 0.4e9
        expected = lying + (rig.default - lying) * cosine(alpha)
        np.testing.assert_allclose(out.target, expected, atol=1e-12)
        np.testing.assert_array_equal(out.kp, rig.kp)
        np.testing.assert_array_equal(out.kd, rig.kd)
        assert out.mode == CONTROL_MODE_POSITION
        assert rig.layer.mode == ("stand_up" if k < ticks else "ready")
    out = rig.tick()
    assert rig.layer.mode == "ready"
    np.testing.assert_allclose(out.target, rig.default, atol=1e-12)
    first, second = rig.layer.events()
    assert (first["from"], first["to"], first["reason"]) == ("idle", "stand_up", "operator_start")
    assert (second["from"], second["to"], second["reason"]) == ("stand_up", "ready",
                                                                "stand_up_done")
    assert second["t_ns"] == t0 + ticks * DT_NS


def test_ready_holds_default_pose_without_run_request():
    rig = Rig()
    rig.layer.request_start(run_policy=False)
    rig.run_until("ready")
    for _ in range(20):
        out = rig.tick(targets=rig.default + 0.1)
    assert rig.layer.mode == "ready"
    np.testing.assert_allclose(out.target, rig.default)


def test_start_refused_while_sensors_are_stale():
    rig = Rig()
    rig.layer.request_start()
    out = rig.tick(imu_age_ms=500.0)
    assert rig.layer.mode == "idle"
    assert_damping(rig, out)
    assert rig.layer.counters()["request.start_refused_sensors"] == 1
    assert not rig.layer.run_requested
    assert rig.layer.events() == []


# ----------------------------------------------------------------------------------- entry gate

def test_gate_opens_after_settle_ticks_with_a_valid_command():
    rig = Rig(gate_settle_ticks=4)
    rig.to_ready()  # the ready transition tick counts as the first settled tick
    targets = rig.default + 0.05
    modes = [rig.tick(targets=targets) and rig.layer.mode for _ in range(4)]
    assert modes == ["ready", "ready", "policy", "policy"]
    event = last_event(rig)
    assert (event["from"], event["to"], event["reason"]) == ("ready", "policy", "entry_gate")


@pytest.mark.parametrize("code,kwargs,setup", [
    ("roll", {}, lambda r: setattr(r, "quat", quat_rpy(roll=0.3))),
    ("pitch", {}, lambda r: setattr(r, "quat", quat_rpy(pitch=-0.3))),
    ("feet", {}, lambda r: r.feet.__setitem__(slice(0, 2), 0.5)),
    ("feet", {"contacts": False}, None),
    ("depth_stale", {"depth_age_ms": 400.0}, None),
    ("depth_stale", {"depth_age_ms": None}, None),
    ("no_command", {"targets": None}, None),
    ("no_command", {"targets": "nan"}, None),
])
def test_gate_stays_closed(code, kwargs, setup):
    rig = Rig()
    rig.to_ready()
    if setup is not None:
        setup(rig)
    kwargs = dict(kwargs)
    targets = kwargs.pop("targets", rig.default)
    if isinstance(targets, str):
        targets = np.full(rig.n, np.nan)
    for _ in range(30):
        out = rig.tick(targets=targets, **kwargs)
    assert rig.layer.mode == "ready"
    np.testing.assert_allclose(out.target, rig.default)
    assert rig.layer.counters()[f"gate.blocked.{code}"] >= 25


def test_gate_tracking_error():
    rig = Rig()
    rig.to_ready()
    rig.follow = False
    rig.q = rig.default.copy()
    rig.q[5] += 0.3  # 0.3 rad > 0.25 rad tracking limit; 40 * 0.3 = 12 N·m is torque-feasible
    for _ in range(10):
        rig.tick(targets=rig.default)
    assert rig.layer.mode == "ready"
    assert rig.layer.counters()["gate.blocked.tracking"] == 10
    rig.q[5] -= 0.1
    rig.run_until("policy", targets=rig.default, max_ticks=3)


def test_blend_from_stand_targets_and_gains_to_the_policy():
    rig = Rig(blend_duration_s=0.1)
    policy = rig.default + 0.05
    policy_kp = np.full(rig.n, 60.0)
    rig.to_ready()
    rig.run_until("policy", targets=policy, kp=policy_kp)
    t_entry = rig.t
    for _ in range(8):
        out = rig.tick(targets=policy, kp=policy_kp)
        beta = min((rig.t - t_entry) / 0.1e9, 1.0)
        np.testing.assert_allclose(out.target, rig.default + beta * 0.05, atol=1e-12)
        np.testing.assert_allclose(out.kp, rig.kp + beta * (60.0 - rig.kp), atol=1e-12)
        np.testing.assert_allclose(out.kd, rig.kd, atol=1e-12)


# ----------------------------------------------------------------------------------- policy checks

def test_policy_targets_clipped_to_the_action_range_and_step_cap():
    # 15 ticks of a target 1 rad beyond the action range is implausible: the watchdog (tested
    # elsewhere) is off here so the filter alone is seen.
    rig = Rig(max_target_rate_rad_s=5.0, blend_duration_s=0.02, implausible_after_ticks=0)
    rig.to_policy()
    wanted = rig.default.copy()
    wanted[0] = rig.action_hi[0] + 1.0  # beyond the action range (and the hip's upper limit)
    wanted[1] = rig.default[1] + 0.35  # a jump bigger than the cap
    assert rig.action_hi[0] > rig.upper[0]
    previous = rig.history[-1].target.copy()
    expected0 = previous[0]
    expected1 = previous[1]
    for _ in range(15):
        out = rig.tick(targets=wanted)
        expected0 = min(expected0 + 0.1, rig.action_hi[0])
        expected1 = min(expected1 + 0.1, wanted[1])
        assert out.target[0] == pytest.approx(expected0, abs=1e-12)
        assert out.target[1] == pytest.approx(expected1, abs=1e-12)
    assert out.target[0] == rig.action_hi[0]  # past the joint limit, as training could command
    counters = rig.layer.counters()
    assert counters["check.action_range_clipped"] == 15 and counters["check.step_capped"] >= 4
    assert "check.limit_clamped" not in counters


@pytest.mark.parametrize("past_limits", ["pass", "clamp"])
def test_a_trained_landing_past_a_calf_limit(past_limits):
    """A landing asks for calf targets past the calf's upper limit, inside the action range, for a
    few policy steps: the layer stays in policy, sends them on (or clamps them under "clamp"),
    and counts per joint how far past and for how long."""
    rig = Rig(policy_targets_past_limits=past_limits, blend_duration_s=0.02)
    rig.to_policy()
    for _ in range(3):
        rig.tick(targets=rig.default)
    calves = [i for i, name in enumerate(rig.robot.joint_names_hardware) if "calf" in name]
    landing = rig.default.copy()
    for past in (0.05, 0.25, 0.45, 0.537, 0.537, 0.3):  # 6 policy steps = 0.12 s
        landing[calves] = rig.upper[calves] + past
        assert np.all(landing <= rig.action_hi)  # the calf's range ends 0.53776 rad past it
        out = rig.tick(targets=landing)
        assert rig.layer.mode == "policy", rig.layer.events()[-1]
        expected = landing if past_limits == "pass" else np.minimum(landing, rig.upper)
        np.testing.assert_allclose(out.target, expected, atol=1e-12)
    for _ in range(5):
        rig.tick(targets=rig.default)
    assert rig.layer.mode == "policy"
    counters = rig.layer.counters()
    assert "command.implausible" not in counters
    report = rig.layer.report()["policy_targets"]
    name = rig.robot.joint_names_hardware[calves[0]]
    calf = report["joints"][name]
    assert calf["furthest_past_limit_rad"] == pytest.approx(0.537)
    assert calf["ticks_past_limit"] == 6
    assert calf["time_past_limit_s"] == pytest.approx(6 * 0.02)
    # |(upper + 0.537) - default| / 1.2 for the calf: (-0.83776 + 0.537 + 1.5) / 1.2
    assert calf["action_range_used"] == pytest.approx((-0.83776 + 0.537 + 1.5) / 1.2)
    assert report["furthest_past_limit"]["rad"] == pytest.approx(0.537)
    assert "calf" in report["furthest_past_limit"]["joint"]
    hip = report["joints"][rig.robot.joint_names_hardware[0]]
    assert hip["furthest_past_limit_rad"] == 0.0 and hip["ticks_past_limit"] == 0


def test_policy_target_clamped_to_torque_window_when_joints_lag():
    rig = Rig(max_target_rate_rad_s=50.0, blend_duration_s=0.02)
    rig.to_policy()
    rig.follow = False
    rig.q = rig.default.copy()
    rig.dq = np.linspace(-3.0, 3.0, rig.n)
    wanted = rig.default + 0.9
    out = rig.tick(targets=wanted)
    kp, kd = rig.kp, rig.kd
    hi = rig.q + (rig.tau + kd * rig.dq) / kp
    expected = np.minimum(np.minimum(wanted, hi), rig.action_hi)
    np.testing.assert_allclose(out.target, expected, atol=1e-12)
    torque = kp * (out.target - rig.q) - kd * rig.dq
    assert np.all(np.abs(torque) <= rig.tau + 1e-9)
    assert rig.layer.counters()["check.torque_clamped"] == 1


def test_policy_gains_are_bounded():
    rig = Rig(blend_duration_s=0.02, kp_max=80.0, kd_min=0.2)
    kp, kd = np.full(12, 500.0), np.full(12, -1.0)
    rig.to_policy(kp=kp, kd=kd)
    for _ in range(3):
        out = rig.tick(targets=rig.default, kp=kp, kd=kd)
    np.testing.assert_array_equal(out.kp, np.full(rig.n, 80.0))
    np.testing.assert_array_equal(out.kd, np.full(rig.n, 0.2))
    assert rig.layer.counters()["command.gains_clamped"] >= 3


@pytest.mark.parametrize("field,bad,counter", [
    ("targets", "nan", "command.rejected.nonfinite"),
    ("targets", "inf", "command.rejected.nonfinite"),
    ("kp", "inf", "command.rejected.nonfinite"),
    ("kd", "nan", "command.rejected.nonfinite"),
    ("targets", "short", "command.rejected.shape"),
])
def test_invalid_command_in_policy_damps(field, bad, counter):
    rig = Rig()
    rig.to_policy()
    value = rig.default.copy()
    if bad == "short":
        value = value[:5]
    else:
        value[3] = np.nan if bad == "nan" else np.inf
    command = {"targets": rig.default, "kp": None, "kd": None}
    command[field] = value
    out = rig.tick(**command)
    assert rig.layer.mode == "damping"
    assert_damping(rig, out)
    event = last_event(rig)
    assert (event["from"], event["to"], event["reason"]) == ("policy", "damping", "invalid_command")
    assert rig.layer.counters()[counter] == 1


# ----------------------------------------------------------------------------------- watchdog

def test_missed_deadline_holds_last_safe_target_then_damps():
    rig = Rig(hold_after_ticks=1, damp_after_ticks=5, blend_duration_s=0.02)
    policy = rig.default + 0.04
    rig.to_policy(policy)
    applied = rig.tick(targets=policy).target
    for miss in range(1, 5):
        out = rig.tick(targets=None)
        assert rig.layer.mode == "policy" and rig.layer.consecutive_misses == miss
        np.testing.assert_array_equal(out.target, applied)
    out = rig.tick(targets=None)
    assert rig.layer.mode == "damping"
    assert_damping(rig, out)
    event = last_event(rig)
    assert (event["from"], event["to"], event["reason"]) == ("policy", "damping",
                                                             "command_watchdog")
    assert rig.layer.counters()["command.missing"] == 5


def test_before_hold_after_ticks_the_last_command_is_reapplied_through_the_checks():
    rig = Rig(hold_after_ticks=3, damp_after_ticks=6, max_target_rate_rad_s=5.0,
              blend_duration_s=0.02)
    rig.to_policy()
    start = rig.history[-1].target.copy()
    far = start + 0.35  # four capped steps away (0.1 + 0.1 + 0.1 + 0.05)
    far = np.minimum(far, rig.upper)
    outs = [rig.tick(targets=far)] + [rig.tick(targets=None) for _ in range(4)]
    expected = start.copy()
    for i, out in enumerate(outs):
        if i < 3:  # the valid tick, then misses 1 and 2 re-apply `far` through the step cap
            expected = np.minimum(expected + 0.1, far)
        np.testing.assert_allclose(out.target, expected, atol=1e-12)
    assert rig.layer.mode == "policy"
    assert rig.layer.counters()["command.hold"] == 2


def test_command_resumes_after_misses():
    rig = Rig(damp_after_ticks=5)
    rig.to_policy()
    for _ in range(4):
        rig.tick(targets=None)
    rig.tick(targets=rig.default)
    assert rig.layer.consecutive_misses == 0
    for _ in range(4):
        rig.tick(targets=None)
    assert rig.layer.mode == "policy"


# ----------------------------------------------------------------------------------- sensor faults

FAULTS = [
    ("imu_stale", dict(imu_age_ms=60.0)),
    ("imu_stale", dict(imu_age_ms=-60.0)),  # a timestamp from the future is as bad
    ("joints_stale", dict(joints_age_ms=60.0)),
    ("joints_invalid", dict(q="nan")),
    ("joints_invalid", dict(dq="inf")),
    ("joints_invalid", dict(q="short")),
    ("imu_invalid", dict(quat=np.zeros(4))),
    ("imu_invalid", dict(quat=np.array([np.nan, 0.0, 0.0, 1.0]))),
    ("imu_invalid", dict(gyro=np.array([0.0, np.inf, 0.0]))),
    ("tilt", dict(quat=quat_rpy(roll=0.8, pitch=0.8))),  # acos(cos .8 cos .8) = 1.12 rad > 1.0
]


def _fault_kwargs(rig, kwargs):
    kwargs = dict(kwargs)
    for key in ("q", "dq"):
        if kwargs.get(key) == "nan" or kwargs.get(key) == "inf":
            arr = (rig.q if key == "q" else rig.dq).copy()
            arr[4] = np.nan if kwargs[key] == "nan" else np.inf
            kwargs[key] = arr
        elif kwargs.get(key) == "short":
            kwargs[key] = rig.q[:6].copy()
    return kwargs


@pytest.mark.parametrize("from_mode", ["stand_up", "ready", "policy", "stand"])
@pytest.mark.parametrize("reason,kwargs", FAULTS)
def test_sensor_faults_damp_from_every_active_mode(from_mode, reason, kwargs):
    rig = Rig()
    if from_mode == "stand_up":
        rig.layer.request_start()
        rig.run_until("stand_up")
    elif from_mode == "ready":
        rig.to_ready()
    else:
        rig.to_policy()
        if from_mode == "stand":
            rig.run_until("stand", targets=rig.default, depth_age_ms=1000.0)
    q_before = rig.q.copy()
    out = rig.tick(targets=rig.default, **_fault_kwargs(rig, kwargs))
    assert rig.layer.mode == "damping"
    event = last_event(rig)
    assert (event["from"], event["to"], event["reason"]) == (from_mode, "damping", reason)
    # The damping target is the last valid measured pose, clipped into the limits.
    assert_damping(rig, out, q=q_before)
    assert rig.layer.counters()[f"reason.{reason}"] == 1


def test_tilt_just_inside_the_limit_is_fine():
    rig = Rig(tilt_limit_rad=1.0)
    rig.to_policy()
    rig.tick(targets=rig.default, quat=quat_rpy(roll=0.0, pitch=0.95))
    assert rig.layer.mode == "policy"


# ----------------------------------------------------------------------------------- stand / depth

def test_stale_depth_goes_to_stand_and_fresh_depth_re_enters_through_the_gate():
    rig = Rig(stand_ramp_duration_s=0.2, max_target_rate_rad_s=25.0, blend_duration_s=0.02)
    policy = rig.default + 0.2
    rig.to_policy(policy)
    for _ in range(3):
        rig.tick(targets=policy)
    last = rig.history[-1].target.copy()
    np.testing.assert_allclose(last, policy)
    rig.tick(targets=policy, depth_age_ms=350.0)
    assert rig.layer.mode == "stand"
    t0 = rig.t
    np.testing.assert_allclose(rig.history[-1].target, last)
    for _ in range(12):
        out = rig.tick(targets=policy, depth_age_ms=350.0)
        alpha = (rig.t - t0) / 0.2e9
        np.testing.assert_allclose(out.target, last + (rig.default - last) * cosine(alpha),
                                   atol=1e-12)
    # The ramp (10 ticks) ended in ready, where the gate stays closed while depth is stale.
    assert rig.layer.mode == "ready"
    assert rig.layer.counters()["gate.blocked.depth_stale"] == 3
    rig.run_until("policy", targets=policy, max_ticks=5)
    reasons = [(e["from"], e["to"], e["reason"]) for e in rig.layer.events()[-3:]]
    assert reasons == [("policy", "stand", "depth_stale"), ("stand", "ready", "stand_done"),
                       ("ready", "policy", "entry_gate")]


def test_depth_check_can_be_disabled():
    rig = Rig(depth_stale_ms=None)
    rig.to_policy(depth_age_ms=None)
    for _ in range(10):
        rig.tick(targets=rig.default, depth_age_ms=None)
    assert rig.layer.mode == "policy"


def test_operator_stand_stays_until_start():
    rig = Rig()
    rig.to_policy()
    rig.layer.request_stand()
    rig.tick(targets=rig.default)
    assert rig.layer.mode == "stand"
    assert last_event(rig)["reason"] == "operator_stand"
    for _ in range(20):
        rig.tick(targets=rig.default)
    assert rig.layer.mode == "ready"  # the ramp ended; without a start request it stays
    assert last_event(rig)["reason"] == "stand_done"
    assert rig.layer.request_start()
    rig.run_until("policy", targets=rig.default, max_ticks=5)


# ----------------------------------------------------------------------------------- e-stop etc.

@pytest.mark.parametrize("from_mode", ["idle", "stand_up", "ready", "policy", "damping"])
def test_estop_latches_from_every_mode_until_explicit_reset(from_mode):
    rig = Rig()
    if from_mode == "stand_up":
        rig.layer.request_start()
        rig.run_until("stand_up")
    elif from_mode == "ready":
        rig.to_ready()
    elif from_mode == "policy":
        rig.to_policy()
    elif from_mode == "damping":
        rig.to_policy()
        rig.tick(targets=np.full(12, np.nan))
    assert rig.layer.mode == from_mode
    rig.layer.estop("drill", now_ns=rig.t)
    assert rig.layer.mode == "estop" and rig.layer.estop_reason == "drill"
    assert last_event(rig) == {"t_ns": rig.t, "from": from_mode, "to": "estop",
                               "reason": "estop", "detail": "drill"}
    assert not rig.layer.request_start()
    rig.layer.estop("again")
    for _ in range(5):
        out = rig.tick(targets=rig.default)
        assert_damping(rig, out)
    assert rig.layer.mode == "estop"
    counters = rig.layer.counters()
    assert counters["transition." + from_mode + "->estop"] == 1
    assert counters["estop.requests"] == 2 and counters["request.start_refused_estop"] == 1
    assert rig.layer.reset_estop(now_ns=rig.t)
    assert rig.layer.mode == "idle" and rig.layer.estop_reason is None
    assert rig.tick().mode == CONTROL_MODE_DAMP
    assert rig.layer.request_start()
    rig.run_until("stand_up", max_ticks=1)


def test_reset_without_latch_does_nothing():
    rig = Rig()
    assert not rig.layer.reset_estop()
    assert rig.layer.mode == "idle"


def test_estop_from_another_thread_while_stepping():
    rig = Rig()
    rig.to_policy()
    thread = threading.Thread(target=rig.layer.estop, args=("other thread",))
    thread.start()
    thread.join(timeout=5.0)
    assert not thread.is_alive()
    out = rig.tick(targets=rig.default)
    assert rig.layer.mode == "estop"
    assert_damping(rig, out)


def test_restart_after_damping_ramps_from_the_measured_pose():
    rig = Rig()
    rig.to_policy()
    rig.tick(targets=None, imu_age_ms=100.0)
    assert rig.layer.mode == "damping"
    rig.q = rig.default + 0.15
    rig.tick()
    assert rig.layer.request_start()
    out = rig.tick()
    assert rig.layer.mode == "stand_up"
    np.testing.assert_allclose(out.target, np.minimum(rig.default + 0.15, rig.upper))


def test_shutdown_command_damps_and_stays_damped():
    rig = Rig()
    rig.to_policy()
    q = rig.q.copy()
    cmd = rig.layer.shutdown_command(now_ns=rig.t)
    assert cmd.mode == CONTROL_MODE_DAMP
    np.testing.assert_array_equal(cmd.kp, np.zeros(12))
    np.testing.assert_array_equal(cmd.kd, np.full(12, rig.config.damping_kd))
    np.testing.assert_array_equal(cmd.target_rad, np.clip(q, rig.lower, rig.upper))
    assert (last_event(rig)["from"], last_event(rig)["reason"]) == ("policy", "shutdown")
    assert rig.tick(targets=rig.default).mode == CONTROL_MODE_DAMP
    assert rig.layer.mode == "damping"


def test_step_reuses_one_command_object():
    rig = Rig()
    rig.layer.request_start()
    joints_cmds = {id(rig.layer.step(rig.t + k, *_sensors(rig, rig.t + k))) for k in range(5)}
    assert len(joints_cmds) == 1


def _sensors(rig, t):
    from hal.devices.base import ImuSample, JointState
    return (JointState(rig.q, rig.dq, np.zeros(12), t),
            ImuSample(rig.quat, np.zeros(3), np.array([0, 0, 9.81]), t))


def test_events_are_bounded_and_report_lists_everything():
    rig = Rig(max_events=2)
    rig.to_policy()  # idle->stand_up, stand_up->ready, ready->policy
    rig.layer.estop("x")
    events = rig.layer.events()
    assert [e["to"] for e in events] == ["policy", "estop"]
    counters = rig.layer.counters()
    assert counters["events.dropped"] == 2
    report = rig.layer.report()
    assert report["mode"] == "estop" and report["estop_reason"] == "x"
    assert report["events"] == events and report["counters"]["reason.estop"] == 1
    assert report["config"]["max_events"] == 2


def test_repeated_log_lines_are_rate_limited(caplog):
    log = TransitionLog(max_events=10, log_interval_ns=1_000_000_000,
                        logger=logging.getLogger("test.safety.ratelimit"))
    with caplog.at_level(logging.INFO, logger="test.safety.ratelimit"):
        for k in range(5):
            log.record(k * 100_000_000, Mode.POLICY, Mode.STAND, "depth_stale", "")
        log.record(1_500_000_000, Mode.POLICY, Mode.STAND, "depth_stale", "")
        log.record(1_500_000_000, Mode.STAND, Mode.POLICY, "entry_gate", "")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["safety: policy -> stand (depth_stale)",
                     "safety: policy -> stand (depth_stale) [4 similar suppressed]",
                     "safety: stand -> policy (entry_gate)"]
    assert log.counters()["transition.policy->stand"] == 6
    assert len(log.events()) == 7


def test_internal_error_ends_damped():
    rig = Rig()
    rig.to_policy()
    q = rig.q.copy()
    cmd = rig.layer.step(rig.t + DT_NS, None, None)  # a broken caller: no readings at all
    assert cmd.mode == CONTROL_MODE_DAMP
    np.testing.assert_array_equal(cmd.kp, np.zeros(12))
    np.testing.assert_array_equal(cmd.target_rad, np.clip(q, rig.lower, rig.upper))
    assert rig.layer.mode == "damping"
    assert last_event(rig)["reason"] == "internal_error"
    assert "AttributeError" in last_event(rig)["detail"]
    assert rig.layer.counters()["internal_error"] == 1


def test_mode_since_follows_transitions():
    rig = Rig()
    assert rig.layer.mode_since_ns == 0
    rig.to_ready()
    assert rig.layer.mode_since_ns == last_event(rig)["t_ns"] == rig.t

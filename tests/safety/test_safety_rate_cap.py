"""The safety layer as the training contract asks: the step cap in rad/s over a command period,
held ticks between policy steps, the torque window counted (not clamped) by default, the edit
fraction, and the entry gate waiting for the policy to be primed at the stand pose."""

from __future__ import annotations

import numpy as np
import pytest

from hal.safety import SafetyConfig, SafetyLayer

from .rig import DT_NS, Rig


def test_rate_cap_is_the_same_motion_per_second_at_any_command_rate():
    """A 1 rad jump asked for once: per 20 ms policy step the target may move rate × 20 ms,
    whether the HAL ticks at 50 Hz (every tick a command) or the command is held in between."""
    rate = 10.0
    rig = Rig(max_target_rate_rad_s=rate, blend_duration_s=0.02)
    rig.to_policy()
    for _ in range(3):
        rig.tick(targets=rig.default)
    start = rig.history[-1].target.copy()
    out = rig.tick(targets=start + 1.0)
    np.testing.assert_allclose(out.target - start, rate * DT_NS / 1e9)
    # The same layer told its command period is 40 ms (a 100 Hz HAL at 25 Hz policy, say).
    layer = SafetyLayer(rig.robot, rig.config, command_period_s=0.04)
    assert layer.max_step_rad == pytest.approx(rate * 0.04)


def test_held_ticks_stay_inside_the_period_budget():
    rig = Rig(max_target_rate_rad_s=10.0, blend_duration_s=0.02, torque_window="count")
    rig.layer = SafetyLayer(rig.robot, rig.config, command_period_s=0.04)  # 2 ticks per command
    rig.to_policy()
    for _ in range(3):
        rig.tick(targets=rig.default)
    start = rig.history[-1].target.copy()
    thighs = [i for i, name in enumerate(rig.robot.joint_names_hardware) if "thigh" in name]
    target = start.copy()
    target[thighs] += 1.0  # thighs have room: 0.8 + 1.0 is inside their limits
    first = rig.layer.step(rig.t + DT_NS, **rig_sensors(rig), policy_targets_hw=target, held=False)
    moved = first.target_rad.copy() - start
    second = rig.layer.step(rig.t + 2 * DT_NS, **rig_sensors(rig), policy_targets_hw=target,
                            held=True)
    np.testing.assert_allclose(moved[thighs], 0.4)  # the whole period's budget, at once
    np.testing.assert_allclose(second.target_rad[thighs] - start[thighs], 0.4)  # held: no more
    third = rig.layer.step(rig.t + 3 * DT_NS, **rig_sensors(rig), policy_targets_hw=target,
                           held=False)
    np.testing.assert_allclose(third.target_rad[thighs] - start[thighs], 0.8)  # 0.4 more
    others = [i for i in range(rig.n) if i not in thighs]
    np.testing.assert_allclose(third.target_rad[others], start[others])


def rig_sensors(rig: Rig) -> dict:
    """The readings :meth:`SafetyLayer.step` takes, by keyword."""
    from hal.devices.base import ContactSample, ImuSample, JointState

    t = rig.t + 3 * DT_NS
    joints = JointState(rig.q.copy(), np.zeros(rig.n), np.zeros(rig.n), t)
    imu = ImuSample(rig.quat.copy(), np.zeros(3), np.array([0.0, 0.0, 9.81]), t)
    return {"joints": joints, "imu": imu, "contacts": ContactSample(rig.feet.copy(), t),
            "depth_timestamp_ns": t}


def test_torque_window_is_counted_not_clamped_by_default():
    """Joints lagging far behind: the desired target is outside the PD torque window. The layer
    sends it unchanged (the motor clips torque, as training did) and counts it."""
    rig = Rig(torque_window="count", max_target_rate_rad_s=50.0, blend_duration_s=0.02)
    assert SafetyConfig().torque_window == "count"
    rig.to_policy()
    for _ in range(3):
        rig.tick(targets=rig.default)
    desired = rig.default.copy()
    desired[1] += 0.9  # a thigh: 40 × 0.9 = 36 N·m > its 23.7 N·m, inside its limits
    rig.follow = False
    out = rig.tick(targets=desired)
    np.testing.assert_array_equal(out.target, desired)
    counters = rig.layer.counters()
    assert counters["check.torque_window"] == 1 and "check.torque_clamped" not in counters
    edits = rig.layer.target_edits()
    assert edits["outside_torque_window_ticks"] == 1 and edits["edited_ticks"] == 0


def test_edit_fraction_counts_the_ticks_the_layer_changed():
    rig = Rig(torque_window="count", max_target_rate_rad_s=10.0, blend_duration_s=0.02)
    rig.to_policy()
    for _ in range(4):
        rig.tick(targets=rig.default)
    start = rig.history[-1].target.copy()
    rig.tick(targets=start + 0.5)  # beyond 0.2 rad per step: capped
    rig.tick(targets=rig.history[-1].target)  # exactly where it is: untouched
    edits = rig.layer.target_edits()
    policy_ticks = rig.layer.counters()["ticks.policy"] + 1  # the gate tick emits in policy
    assert edits["policy_ticks"] == policy_ticks
    assert edits["edited_ticks"] == 1
    assert edits["fraction"] == pytest.approx(1 / policy_ticks)
    assert edits["max_edit_rad"] == pytest.approx(0.5 - 0.2)


def test_gate_waits_for_the_policy_to_be_primed_at_the_stand_pose():
    rig = Rig(gate_min_ready_s=0.5)
    rig.layer.request_start()
    rig.run_until("ready", targets=rig.default, max_ticks=100)
    ready_at = rig.t
    rig.run_until("policy", targets=rig.default, max_ticks=100)
    assert rig.t - ready_at >= 0.5e9
    assert rig.layer.counters()["gate.blocked.priming"] >= 24

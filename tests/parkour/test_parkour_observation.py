"""The policy observation, checked index by index against values computed here from the layout
in docs/architecture.md#the-observation-and-the-actions."""

from __future__ import annotations

import math
import sys
import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest

from compute.parkour.actions import ActionProcessor
from compute.parkour.layout import ObservationLayout
from compute.parkour.observation import ObservationBuilder, PolicyCommand


def quat_from_euler(roll, pitch, yaw):
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return np.array([cr * cp * cy + sr * sp * sy, sr * cp * cy - cr * sp * sy,
                     cr * sp * cy + sr * cp * sy, cr * cp * sy - sr * sp * cy], dtype=np.float32)


def roll_pitch_via_matrix(q):
    """Roll and pitch from the rotation matrix (a different route from the builder's)."""
    w, x, y, z = (float(v) for v in q / np.linalg.norm(q))
    r20 = 2 * (x * z - w * y)
    r21 = 2 * (y * z + w * x)
    r22 = 1 - 2 * (x * x + y * y)
    return math.atan2(r21, r22), -math.asin(max(-1.0, min(1.0, r20)))


def make_hw(robot, rng, force=None):
    n, f = robot.n_joints, robot.n_feet
    roll, pitch, yaw = rng.uniform(-0.4, 0.4, 3)
    return SimpleNamespace(
        joint_position_rad=rng.uniform(-2, 2, n).astype(np.float32),
        joint_velocity_rad_s=rng.uniform(-20, 20, n).astype(np.float32),
        imu_quaternion_wxyz=quat_from_euler(roll, pitch, yaw),
        imu_angular_velocity_rad_s=rng.uniform(-3, 3, 3).astype(np.float32),
        imu_linear_acceleration_m_s2=np.array([0, 0, 9.81], dtype=np.float32),
        foot_force_n=(rng.uniform(0, 40, f) if force is None else np.asarray(force))
        .astype(np.float32),
    )


def expected_frame(robot, hw, command, yaw, last_action, prev_contact):
    """One proprio frame written out field by field, joint mapping by *name*."""
    n, nf = robot.n_joints, robot.n_feet
    frame = [0.0] * (13 + 3 * n + nf)
    for i in range(3):
        frame[i] = 0.25 * float(hw.imu_angular_velocity_rad_s[i])
    frame[3], frame[4] = roll_pitch_via_matrix(hw.imu_quaternion_wxyz)
    frame[6], frame[7] = 1.5 * float(yaw[0]), 1.5 * float(yaw[1])
    frame[10] = command.forward_speed_m_s
    frame[11] = 1.0 if command.mode == "parkour" else 0.0
    frame[12] = 1.0 if command.mode == "walk" else 0.0
    for i, name in enumerate(robot.joint_names_policy):
        h = robot.joint_names_hardware.index(name)
        frame[13 + i] = float(hw.joint_position_rad[h]) - float(robot.default_angles[i])
        frame[13 + n + i] = 0.05 * float(hw.joint_velocity_rad_s[h])
        frame[13 + 2 * n + i] = float(last_action[i])
    contact_now = [float(v) > robot.contact_force_threshold_n for v in hw.foot_force_n]
    for k in range(nf):
        frame[13 + 3 * n + k] = (1.0 if contact_now[k] or prev_contact[k] else 0.0) - 0.5
    return [max(-100.0, min(100.0, v)) for v in frame], contact_now


def masked(frame):
    out = list(frame)
    out[6] = out[7] = 0.0
    return out


def check_obs(obs, robot, frame, history_frames):
    """Compare every index, naming the field on failure."""
    p = ObservationLayout.from_robot(robot).proprio_dim
    assert obs.shape[-1] == ObservationLayout.from_robot(robot).obs_dim
    flat = obs.reshape(-1)
    for i in range(p):
        assert flat[i] == pytest.approx(frame[i], abs=2e-6), f"proprio[{i}]"
    zero_stop = p + 132 + 9 + 29
    assert np.all(flat[p:zero_stop] == 0.0), "scan / priv blocks must be zero"
    assert len(history_frames) == 10
    for t, hf in enumerate(history_frames):
        for i in range(p):
            got = flat[zero_stop + t * p + i]
            assert got == pytest.approx(hf[i], abs=2e-6), f"history frame {t} [{i}]"
    assert zero_stop + 10 * p == ObservationLayout.from_robot(robot).obs_dim


@pytest.mark.parametrize("robot_name", ["go2", "shuffled", "hexapod"])
def test_golden_layout_and_history_over_many_steps(robot_name, request):
    robot = request.getfixturevalue(robot_name)
    builder = ObservationBuilder(robot)
    rng = np.random.default_rng(42)
    obs = np.full((1, ObservationLayout.from_robot(robot).obs_dim), np.nan, dtype=np.float32)
    stored = []  # masked frames of the steps so far
    prev_contact = [False] * robot.n_feet
    for step in range(14):
        hw = make_hw(robot, rng)
        command = PolicyCommand(forward_speed_m_s=float(rng.uniform(0, 1.5)),
                                mode="walk" if step % 3 == 2 else "parkour")
        yaw = rng.uniform(-1, 1, 2).astype(np.float32)
        last_action = rng.uniform(-6, 6, robot.n_joints).astype(np.float32)
        builder.build_into(obs, hw, command, yaw, last_action)
        frame, contact_now = expected_frame(robot, hw, command, yaw, last_action, prev_contact)
        prev_contact = contact_now
        # Frames t-10 .. t-1; frames before the start are copies of the first one.
        if step == 0:
            history = [masked(frame)] * 10
        else:
            history = [stored[max(0, step - 10 + k)] for k in range(10)]
        check_obs(obs, robot, frame, history)
        stored.append(masked(frame))
        # The depth step's proprio is the current frame with the yaw terms zeroed.
        proprio = np.empty((1, ObservationLayout.from_robot(robot).proprio_dim), dtype=np.float32)
        builder.depth_proprio_into(proprio)
        np.testing.assert_allclose(proprio[0], masked(frame), atol=2e-6)
    assert ObservationLayout.from_robot(robot).proprio_dim == {"go2": 53, "shuffled": 53, "hexapod": 73}[robot_name]


def test_history_shift_explicit(go2):
    """Frame t's joint velocity tags it; after 13 steps the history holds frames 3..12."""
    builder = ObservationBuilder(go2)
    rng = np.random.default_rng(0)
    obs = np.zeros(753, dtype=np.float32)
    cmd = PolicyCommand(0.5, "parkour")
    for t in range(14):
        hw = make_hw(go2, rng)
        hw.joint_velocity_rad_s[:] = 20.0 * t  # 0.05 × 20 t = t in every joint-velocity entry
        builder.build_into(obs, hw, cmd, np.array([0.3, -0.2], np.float32),
                           np.zeros(12, np.float32))
        history = obs[223:].reshape(10, 53)
        tags = history[:, 25]  # first joint-velocity entry of each history frame
        expected = [max(0, t - 10 + k) for k in range(10)]
        if t == 0:
            expected = [0] * 10
        np.testing.assert_allclose(tags, expected, atol=1e-5)
        assert np.all(history[:, 6:8] == 0.0)  # yaw terms are zero in the history
        np.testing.assert_allclose(obs[6:8], [0.45, -0.3], atol=1e-6)


def test_reset_refills_history_and_clears_contacts(go2):
    builder = ObservationBuilder(go2)
    rng = np.random.default_rng(1)
    obs = np.zeros(753, dtype=np.float32)
    cmd = PolicyCommand()
    for _ in range(5):
        builder.build_into(obs, make_hw(go2, rng, force=[50, 50, 50, 50]), cmd,
                           np.zeros(2, np.float32), np.zeros(12, np.float32))
    builder.reset()
    hw = make_hw(go2, rng, force=[0, 0, 0, 0])
    builder.build_into(obs, hw, cmd, np.zeros(2, np.float32), np.zeros(12, np.float32))
    np.testing.assert_allclose(obs[49:53], -0.5)  # previous contacts forgotten
    history = obs[223:].reshape(10, 53)
    expected = obs[:53].copy()
    expected[6:8] = 0
    np.testing.assert_allclose(history, np.tile(expected, (10, 1)))


def test_contact_filter_sequence(go2):
    builder = ObservationBuilder(go2)
    rng = np.random.default_rng(2)
    obs = np.zeros(753, dtype=np.float32)
    forces = [[0, 5, 0, 1.9], [3, 0, 0, 2.1], [0, 0, 0, 0], [0, 0, 2.0, 9]]
    expected = [[-0.5, 0.5, -0.5, -0.5], [0.5, 0.5, -0.5, 0.5], [0.5, -0.5, -0.5, 0.5],
                [-0.5, -0.5, -0.5, 0.5]]  # 2.0 is not above the 2.0 N threshold
    for f, want in zip(forces, expected):
        builder.build_into(obs, make_hw(go2, rng, force=f), PolicyCommand(),
                           np.zeros(2, np.float32), np.zeros(12, np.float32))
        np.testing.assert_array_equal(obs[49:53], want)


def test_clip_applies_to_proprio_and_history(go2):
    builder = ObservationBuilder(go2)
    rng = np.random.default_rng(3)
    obs = np.zeros(753, dtype=np.float32)
    hw = make_hw(go2, rng)
    hw.joint_velocity_rad_s[:] = 5000.0  # × 0.05 = 250 → 100
    hw.joint_velocity_rad_s[0] = -5000.0
    builder.build_into(obs, hw, PolicyCommand(), np.zeros(2, np.float32), np.zeros(12, np.float32))
    assert obs.max() == 100.0 and obs.min() == -100.0
    assert np.count_nonzero(obs == 100.0) == 11 * 11  # 11 joints, proprio + 10 history frames


def test_buffer_validation(go2):
    builder = ObservationBuilder(go2)
    hw = make_hw(go2, np.random.default_rng(0))
    args = (hw, PolicyCommand(), np.zeros(2, np.float32), np.zeros(12, np.float32))
    with pytest.raises(TypeError, match="float32"):
        builder.build_into(np.zeros(753, np.float64), *args)
    with pytest.raises(ValueError, match="expected \\(753,\\) or \\(1, 753\\)"):
        builder.build_into(np.zeros((2, 753), np.float32), *args)
    with pytest.raises(ValueError, match="mode"):
        PolicyCommand(1.0, "run")
    builder.build(*args)  # internal buffer


@pytest.mark.skipif(sys.version_info < (3, 11), reason=(
    "CPython 3.10 allocates frame objects on the heap (kept per function as co_zombieframe), which "
    "tracemalloc counts; from 3.11 frames live on the interpreter's stack and only the code's own "
    "allocations show (the 3.11 run checks this)"))
def test_steps_allocate_nothing(go2):
    builder = ObservationBuilder(go2)
    actions = ActionProcessor(go2)
    rng = np.random.default_rng(4)
    frames = [make_hw(go2, rng) for _ in range(8)]
    obs = np.zeros((1, 753), dtype=np.float32)
    proprio = np.zeros((1, 53), dtype=np.float32)
    raw = np.zeros((1, 12), dtype=np.float32)
    yaw = np.zeros(2, dtype=np.float32)
    cmd = PolicyCommand(0.8, "parkour")

    raw_row, joint_pos = raw[0], obs[0, 13:25]

    def step(i):
        builder.build_into(obs, frames[i % 8], cmd, yaw, actions.last_raw_action)
        builder.depth_proprio_into(proprio)
        np.copyto(raw_row, joint_pos)
        actions.process(raw)

    def idle(i):
        return i

    def peak_growth(fn) -> tuple[int, int]:
        for i in range(20):
            fn(i)
        tracemalloc.start()
        try:
            for i in range(5):
                fn(i)
            before, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            for i in range(500):
                fn(i)
            after, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return after - before, peak - before

    kept, peak = peak_growth(step)
    _, idle_peak = peak_growth(idle)
    assert kept <= 64  # the loop counter (an int object) may stay alive
    # The loop itself shows a small peak (idle_peak); a numpy array made per step, even a
    # 2-float temporary, adds at least 64 bytes on top of it.
    assert peak - idle_peak < 48, (peak, idle_peak)


def test_reordering_round_trip(shuffled):
    """Hardware positions → policy-order observation → action → hardware targets, by name."""
    robot = shuffled
    builder = ObservationBuilder(robot)
    processor = ActionProcessor(robot)
    rng = np.random.default_rng(5)
    hw = make_hw(robot, rng)
    default_by_name = dict(zip(robot.joint_names_policy, robot.default_angles))
    hw.joint_position_rad[:] = [default_by_name[name] + 0.01 * k
                                for k, name in enumerate(robot.joint_names_hardware)]
    obs = np.zeros(753, dtype=np.float32)
    builder.build_into(obs, hw, PolicyCommand(), np.zeros(2, np.float32), np.zeros(12, np.float32))
    for i, name in enumerate(robot.joint_names_policy):
        k = robot.joint_names_hardware.index(name)
        assert obs[13 + i] == pytest.approx(0.01 * k, abs=1e-6), name
    # An action equal to (q - default) / scale must command the measured pose back.
    action = (obs[13:25] / robot.action_scale).astype(np.float32)
    target = processor.process(action[None, :])
    np.testing.assert_allclose(target, hw.joint_position_rad, atol=1e-5)
    kp_by_name = dict(zip(robot.joint_names_policy, robot.kp))
    np.testing.assert_allclose(processor.kp_hardware, [kp_by_name[n] for n in robot.joint_names_hardware])


def test_resume_from_a_recorded_observation_continues_the_run(go2):
    """A builder resumed from step k's observation rebuilds step k exactly and then follows the
    original run step for step (history window, contact filter), as a mid-run replay needs."""
    rng = np.random.default_rng(11)
    command = PolicyCommand(0.7, "parkour")
    steps = []
    for k in range(25):  # forces cross the contact threshold both ways
        force = np.where(rng.random(go2.n_feet) < 0.5, 0.0, 40.0).astype(np.float32)
        steps.append((make_hw(go2, rng, force=force), rng.normal(size=2).astype(np.float32),
                      rng.normal(size=go2.n_joints).astype(np.float32)))
    original = ObservationBuilder(go2)
    built = [original.build(hw, command, yaw, last).copy() for hw, yaw, last in steps]
    k = 14
    resumed = ObservationBuilder(go2)
    resumed.resume_from(built[k])
    for step in range(k, len(steps)):
        hw, yaw, last = steps[step]
        np.testing.assert_array_equal(resumed.build(hw, command, yaw, last), built[step])

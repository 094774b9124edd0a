"""ParkourPolicy, the one policy step: heading errors for a teacher, executed actions only, the
height scan, the refresh interval — each against a computation written here from the training
code's definitions (legged_gym / extreme-parkour ``compute_observations``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from compute.parkour.layout import ObservationLayout
from compute.parkour.observation import PolicyCommand

pytest.importorskip("torch")
pytest.importorskip("onnx")


@dataclass
class Hw:
    joint_position_rad: np.ndarray
    joint_velocity_rad_s: np.ndarray
    imu_quaternion_wxyz: np.ndarray
    imu_angular_velocity_rad_s: np.ndarray
    foot_force_n: np.ndarray


def quat_yaw(yaw: float, pitch: float = 0.0) -> np.ndarray:
    """(w, x, y, z) of yaw about z then pitch about y (z-y-x Euler)."""
    cy, sy = np.cos(yaw / 2), np.sin(yaw / 2)
    cp, sp = np.cos(pitch / 2), np.sin(pitch / 2)
    return np.array([cy * cp, -sy * sp, cy * sp, sy * cp], np.float32)


def yaw_of(q: np.ndarray) -> float:
    """Yaw from the rotation matrix's first column (independent of the code under test)."""
    w, x, y, z = (float(v) for v in q)
    r00 = 1 - 2 * (y * y + z * z)
    r10 = 2 * (x * y + z * w)
    return float(np.arctan2(r10, r00))


def wrapped(angle: float) -> float:
    return float(np.angle(np.exp(1j * angle)))


def hw_obs(robot, rng, yaw: float) -> Hw:
    n = robot.n_joints
    return Hw(np.asarray(robot.to_hardware(robot.default_angles), np.float32)
              + rng.normal(0, 0.05, n).astype(np.float32),
              rng.normal(0, 0.5, n).astype(np.float32), quat_yaw(yaw, 0.05),
              rng.normal(0, 0.2, 3).astype(np.float32), np.full(robot.n_feet, 40.0, np.float32))


@pytest.fixture(scope="module")
def teacher_engine(tmp_path_factory, go2, teacher_path):
    from export.cli import main as export_main

    out = tmp_path_factory.mktemp("teacher_export")
    assert export_main(["--checkpoint", str(teacher_path), "--output", str(out) + "/",
                        "--parity-samples", "2", "--quiet"]) == 0
    return out / "teacher.onnx"


@pytest.fixture()
def teacher(go2, teacher_engine):
    from compute.parkour.policy import ParkourPolicy
    from compute.parkour.policy_engines import open_policy_engines

    engines = open_policy_engines(go2, engine=teacher_engine)
    yield ParkourPolicy(engines.robot, engines.actor, engines.depth)
    engines.close()


def test_teacher_heading_error_follows_the_heading_command(teacher, go2):
    rng = np.random.default_rng(0)
    lay = ObservationLayout.from_robot(go2)
    yaw0 = 3.0  # near +pi: the error must wrap, not jump by 2 pi
    teacher.reset(hw_obs(go2, rng, yaw0))
    rate = 0.8
    command = PolicyCommand(0.5, "parkour", yaw_rate_rad_s=rate)
    dt = 1.0 / go2.policy_rate_hz
    interval = go2.depth_camera.update_interval_steps
    held = None
    for k in range(3 * interval):
        yaw = yaw0 + 0.05 * np.sin(k)  # the robot wobbles about its start heading
        hw = hw_obs(go2, rng, yaw)
        teacher.actor_step(hw, command, engaged=True)
        obs = teacher.observation
        heading_command = yaw0 + rate * dt * (k + 1)  # the command turns before each step
        if k % interval == 0:
            expected = wrapped(heading_command - yaw_of(hw.imu_quaternion_wxyz))
            held = expected
        np.testing.assert_allclose(obs[6:8], [held, held], atol=1e-5)
        # Stored history frames carry the yaw terms zeroed, as training masks them.
        history = obs[slice(*lay.history)].reshape(lay.history_len, lay.proprio_dim)
        assert not history[:, 6:8].any()


def test_unexecuted_actions_are_never_fed_back(teacher, go2):
    rng = np.random.default_rng(1)
    lay = ObservationLayout.from_robot(go2)
    last = slice(*lay.last_action)
    teacher.reset(hw_obs(go2, rng, 0.0))
    command = PolicyCommand(0.5)
    for _ in range(5):  # priming: outputs are computed and sent, never executed
        teacher.actor_step(hw_obs(go2, rng, 0.0), command, engaged=False)
        assert not teacher.observation[last].any()
    previous = teacher.last_raw_action.copy()
    assert previous.any()
    teacher.actor_step(hw_obs(go2, rng, 0.0), command, engaged=True)
    # The gate opened on the previous step's command: that one was executed and comes back.
    np.testing.assert_array_equal(teacher.observation[last], previous)


def test_height_scan_values_and_flat_ground(teacher, go2):
    rng = np.random.default_rng(2)
    lay = ObservationLayout.from_robot(go2)
    scan = slice(*lay.scan)
    teacher.reset(hw_obs(go2, rng, 0.0))
    teacher.actor_step(hw_obs(go2, rng, 0.0), PolicyCommand(), engaged=True)
    flat = np.clip(go2.nominal_base_height_m - 0.3, -1, 1)
    np.testing.assert_allclose(teacher.observation[scan], flat, atol=1e-7)
    teacher.reset(hw_obs(go2, rng, 0.0))
    heights = rng.uniform(-1.0, 2.0, lay.scan_dim).astype(np.float32)
    teacher.actor_step(hw_obs(go2, rng, 0.0), PolicyCommand(), engaged=True, height_scan_m=heights)
    np.testing.assert_allclose(teacher.observation[scan], np.clip(heights - 0.3, -1.0, 1.0),
                               atol=1e-6)
    # Held between refreshes (training measured heights every depth interval).
    teacher.actor_step(hw_obs(go2, rng, 0.0), PolicyCommand(), engaged=True,
                       height_scan_m=heights + 0.5)
    np.testing.assert_allclose(teacher.observation[scan], np.clip(heights - 0.3, -1.0, 1.0),
                               atol=1e-6)


def test_reset_refills_the_history_with_the_first_frame(teacher, go2):
    rng = np.random.default_rng(3)
    lay = ObservationLayout.from_robot(go2)
    for _ in range(4):
        teacher.actor_step(hw_obs(go2, rng, 0.0), PolicyCommand(), engaged=True)
    teacher.reset(hw_obs(go2, rng, 0.0))
    teacher.actor_step(hw_obs(go2, rng, 0.0), PolicyCommand(), engaged=False)
    obs = teacher.observation
    frame = obs[slice(*lay.proprio)].copy()
    frame[6:8] = 0.0
    history = obs[slice(*lay.history)].reshape(lay.history_len, lay.proprio_dim)
    for row in history:
        np.testing.assert_array_equal(row, frame)


def test_teacher_heading_follows_the_goals(teacher, go2):
    """obs[6:8] = heading errors to the current and the next goal, refreshed every 5 steps;
    values worked out by hand, including the wrap across ±π."""
    rng = np.random.default_rng(3)
    yaw0 = 3.0
    teacher.reset(hw_obs(go2, rng, yaw0))
    targets = [(np.array([0.0, 0.0]), np.array([-1.0, -0.1]), np.array([1.0, 1.0]))]
    teacher.goal_source = lambda: targets[0]
    command = PolicyCommand(0.5, "parkour")
    hw = hw_obs(go2, rng, yaw0)
    hw.imu_quaternion_wxyz = quat_yaw(yaw0)  # level: yaw exactly 3.0
    teacher.actor_step(hw, command, engaged=True)
    # atan2(-0.1, -1) = -pi + atan(0.1) = -3.0419240; - 3.0 = -6.0419240; + 2 pi = 0.2412613
    # atan2(1, 1) = 0.7853982; - 3.0 = -2.2146018 (already within ±pi)
    np.testing.assert_allclose(teacher.observation[6:8], [0.2412613, -2.2146018], atol=1e-5)
    targets[0] = (np.array([0.0, 0.0]), np.array([1.0, 0.0]), np.array([1.0, 0.0]))
    for _ in range(4):  # not refreshed before the 5th step
        teacher.actor_step(hw, command, engaged=True)
        np.testing.assert_allclose(teacher.observation[6:8], [0.2412613, -2.2146018], atol=1e-5)
    teacher.actor_step(hw, command, engaged=True)
    np.testing.assert_allclose(teacher.observation[6:8], [-3.0, -3.0], atol=1e-5)
    teacher.goal_source = None

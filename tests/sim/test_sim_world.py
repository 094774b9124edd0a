"""The simulated robot: standing under PD, joint tracking, IMU, contacts, clock (real MuJoCo)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

pytest.importorskip("mujoco")  # the [sim] extra

from hal.devices.base import CONTROL_MODE_DAMP, DeviceNotConnectedError, JointCommand  # noqa: E402
from hal.sim import MujocoWorld, MujocoWorldConfig, make_sim_devices  # noqa: E402
from hal.sim.mjcf import GO2_GEOMETRY  # noqa: E402

G = 9.81


def roll_pitch(q_wxyz: np.ndarray) -> tuple[float, float]:
    w, x, y, z = q_wxyz
    roll = math.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2 * (w * y - z * x))))
    return roll, pitch


def rot_zyx(roll: float, pitch: float, yaw: float) -> np.ndarray:
    cr, sr, cp, sp, cy, sy = (math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch),
                              math.cos(yaw), math.sin(yaw))
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    return rz @ ry @ rx


def hold_default(robot) -> JointCommand:
    return JointCommand(target_rad=robot.to_hardware(robot.default_angles).astype(float),
                        kp=np.full(12, 40.0), kd=np.full(12, 1.0))


def test_robot_holds_the_default_pose_for_5_s(go2):
    sim = make_sim_devices(go2, MujocoWorldConfig(camera_fps=0))
    with sim:
        assert sim.camera is None
        start = sim.world.base_position_m
        sim.joints.write(hold_default(go2))
        heights, tilts = [], []
        for _ in range(500):  # 5 s at a 100 Hz control tick, zero actions
            sim.world.advance(0.01)
            heights.append(sim.world.base_position_m[2])
            tilts.append(np.abs(roll_pitch(sim.imu.read().quaternion_wxyz)))
        state = sim.joints.read()
        end = sim.world.base_position_m
    # Standing height at the default angles is ~0.30 m; kp 40 sags it by a couple of cm.
    assert 0.24 < min(heights) and max(heights) < 0.34
    assert np.max(tilts) < math.radians(3.0)
    assert np.linalg.norm(end[:2] - start[:2]) < 0.03
    default_hw = go2.to_hardware(go2.default_angles)
    assert np.max(np.abs(state.position_rad - default_hw)) < 0.25
    assert np.max(np.abs(state.velocity_rad_s)) < 0.05


def test_standing_robot_has_four_feet_down_carrying_its_weight(go2):
    sim = make_sim_devices(go2, MujocoWorldConfig(camera_fps=0))
    with sim:
        sim.world.advance(0.2)
        forces = sim.contacts.read().force_n
    assert np.all(forces > go2.contact_force_threshold_n)
    published_mass = GO2_GEOMETRY.total_mass_kg  # 6.921 + 4 (0.678 + 1.152 + 0.154 + 0.04)
    assert published_mass == pytest.approx(15.017)
    # Each force is the norm of the foot's contact force: the vertical parts carry the weight, and
    # the feet, held by static friction as in training, also carry the sideways push of the legs
    # at the default pose (~12 N at the front feet), so the norms add up to a few % more.
    assert published_mass * G * 0.99 < forces.sum() < published_mass * G * 1.06
    # Left/right symmetric robot: symmetric loads.
    assert forces[0] == pytest.approx(forces[1], rel=0.02)
    assert forces[2] == pytest.approx(forces[3], rel=0.02)


def test_feet_in_the_air_read_zero_force(go2):
    world = MujocoWorld(go2, MujocoWorldConfig(camera_fps=0, fixed_base=True, base_height_m=0.8))
    world.advance(0.05)
    np.testing.assert_array_equal(world.contact_sample().force_n, np.zeros(4))


def test_a_commanded_joint_reaches_its_target(go2):
    world = MujocoWorld(go2, MujocoWorldConfig(camera_fps=0, fixed_base=True, base_height_m=0.8))
    target = go2.to_hardware(go2.default_angles).astype(float)
    calf = go2.joint_names_hardware.index("FR_calf_joint")
    thigh = go2.joint_names_hardware.index("FL_thigh_joint")
    target[calf] = -2.2
    target[thigh] = 0.2
    kp, kd = np.full(12, 40.0), np.full(12, 1.0)
    world.set_command(JointCommand(target_rad=target, kp=kp, kd=kd))
    world.advance(1.0)
    state = world.joint_state()
    assert state.position_rad[calf] == pytest.approx(-2.2, abs=0.02)
    assert state.position_rad[thigh] == pytest.approx(0.2, abs=0.03)
    # At rest the reported torque is the PD law's, computed here from the readings.
    pd = kp * (target - state.position_rad) - kd * state.velocity_rad_s
    np.testing.assert_allclose(state.torque_nm, pd, atol=0.05)


def test_torque_is_clamped_to_the_robot_limits(go2):
    world = MujocoWorld(go2, MujocoWorldConfig(camera_fps=0, fixed_base=True, base_height_m=0.8))
    target = world.joint_state().position_rad + 3.0  # kp * 3 rad = 120 N m, far beyond the limits
    world.set_command(JointCommand(target_rad=target, kp=np.full(12, 40.0), kd=np.zeros(12)))
    world.advance(0.005)
    np.testing.assert_allclose(world.joint_state().torque_nm, go2.to_hardware(go2.torque_limit))


def test_damping_lets_the_robot_sink(go2):
    sim = make_sim_devices(go2, MujocoWorldConfig(camera_fps=0))
    with sim:
        sim.joints.write(JointCommand(np.zeros(12), np.zeros(12), np.full(12, 1.0),
                                      mode=CONTROL_MODE_DAMP))
        sim.world.advance(1.5)
        assert sim.world.base_position_m[2] < 0.2
        s = sim.joints.read()
        np.testing.assert_allclose(s.torque_nm, -1.0 * s.velocity_rad_s, atol=0.5)


def test_imu_reads_a_tilted_fixed_base(go2):
    roll, pitch, yaw = 12.0, -7.0, 30.0
    world = MujocoWorld(go2, MujocoWorldConfig(camera_fps=0, fixed_base=True, base_height_m=0.8,
                                               initial_roll_deg=roll, initial_pitch_deg=pitch,
                                               initial_yaw_deg=yaw))
    world.advance(0.05)
    imu = world.imu_sample()
    r, p = roll_pitch(imu.quaternion_wxyz)
    assert math.degrees(r) == pytest.approx(roll, abs=1e-6)
    assert math.degrees(p) == pytest.approx(pitch, abs=1e-6)
    # A still accelerometer reads the reaction to gravity, expressed in the body frame.
    rot = rot_zyx(*(math.radians(a) for a in (roll, pitch, yaw)))
    np.testing.assert_allclose(imu.linear_acceleration_m_s2, rot.T @ [0, 0, G], atol=1e-6)
    np.testing.assert_allclose(imu.angular_velocity_rad_s, 0.0, atol=1e-9)


def test_imu_matches_a_tilted_free_start_and_the_gyro_matches_the_rotation(go2):
    world = MujocoWorld(go2, MujocoWorldConfig(camera_fps=0, settle_s=0.0, base_height_m=0.6,
                                               initial_roll_deg=-9.0, initial_pitch_deg=5.0))
    r, p = roll_pitch(world.imu_sample().quaternion_wxyz)
    assert (math.degrees(r), math.degrees(p)) == pytest.approx((-9.0, 5.0), abs=1e-6)
    # Let it fall and tumble: the gyro (body frame) agrees with the quaternion's rate of change.
    dt = 0.005
    world.advance(0.3)
    for _ in range(20):
        q0 = world.imu_sample().quaternion_wxyz
        world.advance(dt)
        s1 = world.imu_sample()
        q1 = s1.quaternion_wxyz
        # body rate ≈ 2 * vec(conj(q0) * q1) / dt
        w0, v0 = q0[0], -q0[1:]
        w1, v1 = q1[0], q1[1:]
        vec = w0 * v1 + w1 * v0 + np.cross(v0, v1)
        omega_fd = 2 * vec / dt
        error = np.linalg.norm(s1.angular_velocity_rad_s - omega_fd)
        assert error < 0.05 + 0.05 * np.linalg.norm(omega_fd)


def test_clock_is_origin_plus_sim_time_and_carries_remainders(go2):
    before = time.monotonic_ns()
    world = MujocoWorld(go2, MujocoWorldConfig(camera_fps=0, settle_s=0.1))
    after = time.monotonic_ns()
    assert before <= world.clock_origin_ns <= after
    assert world.joint_state().timestamp_ns == world.clock_origin_ns

    world = MujocoWorld(go2, MujocoWorldConfig(camera_fps=0, settle_s=0.1, clock_origin_ns=10**12))
    world.advance(0.0125)  # 2 steps of 5 ms, 2.5 ms carried over
    assert world.now_ns() == 10**12 + 10_000_000
    world.advance(0.0125)
    assert world.now_ns() == 10**12 + 25_000_000
    assert world.sim_time_s == pytest.approx(0.025)
    samples = (world.joint_state(), world.imu_sample(), world.contact_sample())
    assert {s.timestamp_ns for s in samples} == {world.now_ns()}


def test_bad_commands_and_configs_are_refused(go2):
    with pytest.raises(ValueError, match="flat, parkour"):
        MujocoWorldConfig(scene="moon")
    with pytest.raises(ValueError, match="physics_dt_s"):
        MujocoWorldConfig(physics_dt_s=0.1)
    with pytest.raises(ValueError, match="camera_width and camera_height"):
        MujocoWorldConfig(camera_width=200)
    world = MujocoWorld(go2, MujocoWorldConfig(camera_fps=0, settle_s=0.0))
    good = hold_default(go2)
    with pytest.raises(ValueError, match=r"shape \(12,\)"):
        world.set_command(JointCommand(good.target_rad[:6], good.kp, good.kd))
    with pytest.raises(ValueError, match="non-finite"):
        world.set_command(JointCommand(good.target_rad, good.kp * np.nan, good.kd))
    with pytest.raises(ValueError, match="mode"):
        world.set_command(JointCommand(good.target_rad, good.kp, good.kd, mode=7))
    with pytest.raises(ValueError, match="duration_s"):
        world.advance(-1.0)


def test_devices_need_connect_and_close_damps_the_joints(go2):
    sim = make_sim_devices(go2, MujocoWorldConfig(camera_fps=0, settle_s=0.1))
    with pytest.raises(DeviceNotConnectedError):
        sim.imu.read()
    sim.connect()
    assert sim.joints.joint_names == go2.joint_names_hardware
    sim.joints.close()
    sim.world.advance(0.15)  # damped, the standing robot sinks (before it lands); torque = -kd dq
    state = sim.world.joint_state()
    np.testing.assert_allclose(state.torque_nm, -1.0 * state.velocity_rad_s, atol=0.5)
    assert np.max(np.abs(state.velocity_rad_s)) > 0.1
    with pytest.raises(DeviceNotConnectedError):
        sim.joints.read()
    sim.close()
    with pytest.raises(DeviceNotConnectedError):
        sim.world.advance(0.01)


def test_sensor_noise_has_the_configured_spread_and_follows_the_seed(go2):
    def world(seed, noise=1.0):
        return MujocoWorld(go2, MujocoWorldConfig(seed=seed, settle_s=0.5, fixed_base=True,
                                                  base_height_m=0.8, gyro_noise_std_rad_s=0.02 * noise,
                                                  accel_noise_std_m_s2=0.3 * noise,
                                                  depth_noise_std_m=0.01 * noise))

    a, b, c, clean = world(1), world(1), world(2), world(1, noise=0.0)
    noisy_frame, clean_frame = (np.zeros((60, 106), np.float32) for _ in range(2))
    a.read_depth_into(noisy_frame)
    clean.read_depth_into(clean_frame)
    seen = np.isfinite(clean_frame)  # rays near the horizon see nothing within range (+inf)
    assert seen.mean() > 0.5 and np.array_equal(np.isfinite(noisy_frame), seen)
    assert np.std(noisy_frame[seen] - clean_frame[seen]) == pytest.approx(0.01, rel=0.1)
    gyros = []
    for w in (a, b, c):
        samples = []
        for _ in range(200):
            w.advance(0.005)
            samples.append(w.imu_sample().angular_velocity_rad_s)
        gyros.append(np.array(samples))
    np.testing.assert_array_equal(gyros[0], gyros[1])
    assert not np.array_equal(gyros[0], gyros[2])
    assert np.std(gyros[0]) == pytest.approx(0.02, rel=0.15)  # the fixed trunk does not rotate


def test_importing_the_package_does_not_import_mujoco():
    import subprocess
    import sys

    code = "import sys, hal.sim; print('mujoco' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_a_shuffled_hardware_order_maps_every_joint_by_name():
    from pathlib import Path

    from hal.robot import load_robot

    robot = load_robot(Path(__file__).parents[1] / "data" / "go2_shuffled.toml")
    world = MujocoWorld(robot, MujocoWorldConfig(camera_fps=0, fixed_base=True, base_height_m=0.8,
                                                 settle_s=1.0))
    state = world.joint_state()
    # In the air each joint sits at its own default angle (up to gravity sag), read by name.
    np.testing.assert_allclose(state.position_rad, robot.to_hardware(robot.default_angles), atol=0.05)
    for name, q in zip(robot.joint_names_hardware, state.position_rad):
        joint = world.model.joint(name)
        assert world.data.qpos[joint.qposadr[0]] == q

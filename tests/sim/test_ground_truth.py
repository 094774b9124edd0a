"""The report's ``sim`` section and ``track`` against the world's own state.

First on a trajectory written into a real MuJoCo world (the trunk placed along a known arc, so
every figure has a closed form), then on the whole appliance, where a test listener keeps its own
copy of the trunk pose every tick and the figures are recomputed from it with numpy (yaw from the
rotation matrix, not from the quaternion the tracker uses).
"""

from __future__ import annotations

import math
import os
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("mujoco")  # the [sim] extra

from hal.safety.events import Mode  # noqa: E402
from hal.sim import MujocoWorld, MujocoWorldConfig  # noqa: E402
from hal.sim.config import quaternion_from_euler  # noqa: E402
from hal.sim.ground_truth import (  # noqa: E402
    TRACK_COLUMNS,
    GroundTruthConfig,
    GroundTruthTracker,
    euler_zyx,
    format_sim_section,
)

RATE_HZ = 50


class _Pose:
    """Writes a trunk pose into a real world and advances its clock by one control period."""

    def __init__(self, world: MujocoWorld) -> None:
        import mujoco

        self.world, self.mujoco = world, mujoco

    def put(self, xyz, roll, pitch, yaw) -> None:
        d = self.world.data
        d.qpos[0:3] = xyz
        d.qpos[3:7] = quaternion_from_euler(roll, pitch, yaw)
        self.mujoco.mj_kinematics(self.world.model, d)
        self.world._sim_ns += int(1e9 / RATE_HZ)  # the clock the server would have advanced


def test_euler_matches_the_rotation_matrix():
    rng = np.random.default_rng(0)
    for _ in range(200):
        roll, pitch, yaw = rng.uniform(-3.1, 3.1), rng.uniform(-1.5, 1.5), rng.uniform(-3.1, 3.1)
        q = quaternion_from_euler(roll, pitch, yaw)
        np.testing.assert_allclose(euler_zyx(q), (roll, pitch, yaw), atol=1e-9)
    with pytest.raises(ValueError, match="no orientation"):
        euler_zyx(np.zeros(4))


def test_config_rejects_bad_limits():
    with pytest.raises(ValueError, match="track_rate_hz"):
        GroundTruthConfig(track_rate_hz=0)


def test_arc_figures_have_their_closed_form(go2):
    """1.5 turns on a circle of radius 0.8 m at 0.4 m/s, a tilt fall at 3 s: distance, heading,
    forward and lateral displacement, attitude, heights, fall time and track rows."""
    world = MujocoWorld(go2, MujocoWorldConfig(camera_fps=0, settle_s=0.0))
    pose = _Pose(world)
    radius, speed = 0.8, 0.4
    omega = speed / radius
    n_ticks = int(round(1.5 * 2 * math.pi / omega * RATE_HZ))
    commands = iter(np.linspace(0.2, 0.6, n_ticks + 5))
    tracker = GroundTruthTracker(world, speed_command=lambda: next(commands))
    # Two ticks in stand: nothing counts before the hand-over.
    for _ in range(2):
        pose.put((5.0, 5.0, 0.3), 0.0, 0.0, 0.0)
        tracker(SimpleNamespace(safety_mode=Mode.STAND))
    handover_s = world.sim_time_s
    heights, rolls = [], []
    for k in range(n_ticks + 1):
        t = k / RATE_HZ
        angle = omega * t
        z = 0.3 + 0.02 * math.sin(3 * t)
        roll = 0.1 * math.sin(t)
        pitch = 1.2 if 3.0 <= t < 3.2 else 0.05
        pose.put((radius * math.sin(angle), radius * (1 - math.cos(angle)), z), roll, pitch, angle)
        heights.append(z)
        rolls.append(abs(roll))
        tracker(SimpleNamespace(safety_mode=Mode.POLICY))
    sim = tracker.report()
    total_angle = omega * n_ticks / RATE_HZ
    assert sim["handover_sim_time_s"] == pytest.approx(handover_s + 1 / RATE_HZ)
    assert sim["duration_s"] == pytest.approx(n_ticks / RATE_HZ)
    # Chords of an arc: N * 2R sin(dθ/2), within 1e-9 of the closed form.
    dtheta = omega / RATE_HZ
    assert sim["distance_m"] == pytest.approx(n_ticks * 2 * radius * math.sin(dtheta / 2), rel=1e-9)
    assert sim["heading_change_rad"] == pytest.approx(total_angle, abs=1e-9)
    assert sim["forward_m"] == pytest.approx(radius * math.sin(total_angle), abs=1e-9)
    assert sim["lateral_drift_m"] == pytest.approx(radius * (1 - math.cos(total_angle)), abs=1e-9)
    assert sim["mean_forward_speed_m_s"] == pytest.approx(sim["forward_m"] / sim["duration_s"])
    assert sim["mean_speed_command_m_s"] == pytest.approx(
        np.mean(np.linspace(0.2, 0.6, n_ticks + 5)[:n_ticks + 1]))
    assert sim["max_abs_roll_rad"] == pytest.approx(max(rolls), abs=1e-9)
    assert sim["max_abs_pitch_rad"] == pytest.approx(1.2, abs=1e-9)
    assert sim["min_base_height_m"] == pytest.approx(min(heights), abs=1e-9)
    assert sim["mean_base_height_m"] == pytest.approx(np.mean(heights), abs=1e-9)
    assert sim["falls"] == [{"t_s": 3.0, "kind": "tilt", "value": 1.2, "mode": "policy"}]
    rows = sim["track"]["rows"]
    assert sim["track"]["columns"] == list(TRACK_COLUMNS)
    assert len(rows) == int(n_ticks / RATE_HZ * 10) + 1
    for i, row in enumerate(rows):
        t = i * 0.1
        assert row[0] == pytest.approx(t, abs=1e-9)
        np.testing.assert_allclose(row[1:3], (radius * math.sin(omega * t),
                                              radius * (1 - math.cos(omega * t))), atol=1e-9)
        assert row[6] == pytest.approx(math.remainder(omega * t, 2 * math.pi), abs=1e-9)
        assert row[7] == "policy"
    lines = format_sim_section(sim)
    assert "heading +" in lines[0] and "falls 1" in lines[1] and "fall at 3.00 s: tilt" in lines[2]
    world.close()


def test_no_handover_says_so(go2):
    world = MujocoWorld(go2, MujocoWorldConfig(camera_fps=0))
    tracker = GroundTruthTracker(world)
    tracker(SimpleNamespace(safety_mode=Mode.STAND_UP))
    sim = tracker.report()
    assert sim["handover_sim_time_s"] is None and sim["track"]["rows"] == []
    assert format_sim_section(sim) == ["sim: the policy never took over"]
    world.close()


@pytest.mark.slow
@pytest.mark.torch
def test_appliance_sim_section_matches_the_world(tmp_path, monkeypatch):
    """The sim CLI in fast mode with a push on the trunk: the report's figures equal those
    recomputed from a per-tick copy of the world's trunk pose, and the exit table prints them."""
    from compute.parkour.synthetic import main as make_checkpoint
    from export.cli import main as export_main
    from hal.server.cli import run_appliance
    from hal.server.sim.main import config_from_argv, plan_from_config

    monkeypatch.chdir(tmp_path)
    checkpoint = tmp_path / "model.pt"
    assert make_checkpoint(["--output", str(checkpoint), "--robot", "go2", "--seed", "1"]) == 0
    assert export_main(["--checkpoint", str(checkpoint), "--robot", "go2",
                        "--parity-samples", "2"]) == 0
    tag = f"gt_{os.getpid()}"
    config = config_from_argv([
        "--engine", str(tmp_path / "model.onnx"), "--fast", "--control_rate", str(RATE_HZ),
        "--latency_budget_ms", "16", "--duration", "4.5", "--log-level", "WARNING",
        "--observation_bind", f"inproc://{tag}_obs", "--command_bind", f"inproc://{tag}_cmd",
        "--estop_bind", "none", "--flight-recorder-s", "0"])
    plan = plan_from_config(config)
    log: list[tuple[float, np.ndarray, np.ndarray, str]] = []

    def watch(server, _client) -> None:
        world = server.devices.world
        trunk = world._trunk

        def listener(record) -> None:
            # Push sideways in the policy's first second: the trunk must move.
            push = record.safety_mode == "policy" and log and log[-1][0] - first_policy() < 1.0
            world.data.xfrc_applied[trunk, 1] = 40.0 if push else 0.0
            log.append((world.sim_time_s, world.data.xpos[trunk].copy(),
                        world.data.xmat[trunk].reshape(3, 3).copy(), record.safety_mode))

        def first_policy() -> float:
            return next((t for t, _, _, m in log if m == "policy"), math.inf)

        server.tick_listeners.insert(0, listener)

    plan.on_started.insert(0, watch)
    report = run_appliance(plan, config)
    sim = report["sim"]
    start = next(i for i, entry in enumerate(log) if entry[3] == "policy")
    times = np.array([e[0] for e in log[start:]])
    xyz = np.array([e[1] for e in log[start:]])
    mats = np.array([e[2] for e in log[start:]])
    yaw = np.unwrap(np.arctan2(mats[:, 1, 0], mats[:, 0, 0]))
    roll = np.arctan2(mats[:, 2, 1], mats[:, 2, 2])
    pitch = -np.arcsin(np.clip(mats[:, 2, 0], -1, 1))
    assert sim["handover_sim_time_s"] == pytest.approx(times[0], abs=1e-6)
    assert sim["duration_s"] == pytest.approx(times[-1] - times[0], abs=1e-6)
    assert sim["distance_m"] == pytest.approx(
        np.sum(np.linalg.norm(np.diff(xyz[:, :2], axis=0), axis=1)), rel=1e-9)
    assert sim["distance_m"] > 0.02  # the push moved it
    delta = xyz[-1, :2] - xyz[0, :2]
    heading = np.array([math.cos(yaw[0]), math.sin(yaw[0])])
    assert sim["forward_m"] == pytest.approx(delta @ heading, abs=1e-9)
    assert sim["lateral_drift_m"] == pytest.approx(heading[0] * delta[1] - heading[1] * delta[0], abs=1e-9)
    assert sim["heading_change_rad"] == pytest.approx(yaw[-1] - yaw[0], abs=1e-9)
    assert sim["max_abs_roll_rad"] == pytest.approx(np.abs(roll).max(), abs=1e-9)
    assert sim["max_abs_pitch_rad"] == pytest.approx(np.abs(pitch).max(), abs=1e-9)
    assert sim["min_base_height_m"] == pytest.approx(xyz[:, 2].min(), abs=1e-12)
    assert sim["mean_base_height_m"] == pytest.approx(xyz[:, 2].mean(), abs=1e-12)
    assert sim["mean_speed_command_m_s"] == pytest.approx(config.command.speed_m_s)
    tilt = np.maximum(np.abs(roll), np.abs(pitch))
    fallen = (tilt > 1.0) | (xyz[:, 2] < 0.12)
    assert len(sim["falls"]) == int(np.sum(fallen[1:] & ~fallen[:-1]) + fallen[0])
    rows = sim["track"]["rows"]
    assert len(rows) == int(np.floor((times[-1] - times[0]) * 10 + 1e-6)) + 1
    for i, row in enumerate(rows):
        k = int(np.searchsorted(times - times[0], i * 0.1 - 1e-9))
        assert row[0] == pytest.approx(times[k] - times[0], abs=1e-6)
        np.testing.assert_allclose(row[1:4], xyz[k], atol=1e-12)
        assert row[7] == log[start + k][3]
    lines = format_sim_section(sim)
    assert f"travelled {sim['distance_m']:.2f} m" in lines[0]


def test_a_long_run_keeps_its_whole_track_in_bounded_rows(go2):
    """The track of a run of any length stays within max_track_rows: when full, every other row
    goes and the rate halves; the rows left are still the trajectory's, at the new rate."""
    world = MujocoWorld(go2, MujocoWorldConfig(camera_fps=0, settle_s=0.0))
    pose = _Pose(world)
    tracker = GroundTruthTracker(world, GroundTruthConfig(track_rate_hz=10.0, max_track_rows=8))
    speed = 0.5
    n_ticks = 4 * RATE_HZ  # 4 s: 41 rows at 10 Hz, far more than 8
    for k in range(n_ticks + 1):
        pose.put((speed * k / RATE_HZ, 0.0, 0.3), 0.0, 0.0, 0.0)
        tracker(SimpleNamespace(safety_mode=Mode.POLICY))
        assert len(tracker.rows) <= 8
    sim = tracker.report()
    rate = sim["track_rate_hz"]
    assert rate == 10.0 / 8  # thinned three times: 41 rows would need 5.125 at 8 rows
    rows = sim["track"]["rows"]
    assert rows[0][0] == 0.0 and rows[-1][0] <= 4.0
    for i, row in enumerate(rows):
        assert row[0] == pytest.approx(i / rate, abs=1e-9)
        assert row[1] == pytest.approx(speed * row[0], abs=1e-9)
    assert f"track {len(rows)} rows at 1.25 Hz" in format_sim_section(sim)[1]
    with pytest.raises(ValueError, match="max_track_rows"):
        GroundTruthConfig(max_track_rows=1)
    world.close()

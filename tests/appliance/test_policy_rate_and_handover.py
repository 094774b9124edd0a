"""The policy runs at its trained rate under a faster HAL, and every hand-over starts a primed
episode: the HAL server, the safety layer, the inference client and the simulated robot, for real
(inproc ZMQ, ONNX Runtime, MuJoCo), with every tick and every actor step recorded."""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest

from compute.parkour.layout import ObservationLayout, scan_points_xy

pytest.importorskip("mujoco")

from compute.parkour.contract import command_interval_ticks  # noqa: E402
from compute.parkour.inference_client import (  # noqa: E402
    InferenceClientConfig,
    ParkourInferenceClient,
)
from compute.parkour.policy_engines import open_policy_engines  # noqa: E402
from hal.safety.events import Mode  # noqa: E402
from hal.server.base import HalServer, HalServerConfig  # noqa: E402
from hal.sim import MujocoWorldConfig, make_sim_devices  # noqa: E402

_runs = itertools.count()


def run_appliance(go2, engine, control_rate_hz: float, policy_ticks: int, scene: str = "flat"):
    """Run the simulated appliance (not real time) until the policy has run ``policy_ticks``
    control ticks after the hand-over; returns the tick records, actor records and the server."""
    policy = open_policy_engines(go2, engine=engine)
    robot = policy.robot
    interval = command_interval_ticks(control_rate_hz, policy.contract.policy_rate_hz)
    tag = f"{os.getpid()}_{next(_runs)}"
    config = HalServerConfig(control_rate_hz=control_rate_hz, command_interval_ticks=interval,
                             latency_budget_ms=400.0 / control_rate_hz, realtime=False,
                             observation_endpoint=f"inproc://rate_obs_{tag}",
                             command_endpoint=f"inproc://rate_cmd_{tag}", gc_control=False)
    devices = make_sim_devices(robot, MujocoWorldConfig(
        scene=scene, settle_s=0.3, height_scan_points_xy=tuple(map(tuple, scan_points_xy().tolist()))))
    server = HalServer(robot, devices, config)
    client = ParkourInferenceClient(robot, policy.actor, policy.depth, InferenceClientConfig(
        config.observation_endpoint, config.command_endpoint, forward_speed_m_s=0.5))
    ticks, steps = [], []
    server.tick_listeners.append(ticks.append)
    client.actor_listeners.append(lambda r: steps.append(
        (r.obs_seq, r.engaged, r.episode, r.observation.copy(), r.raw_action.copy())))
    try:
        with server:
            client.start()
            server.safety.request_start()
            policy_seen = 0
            while policy_seen < policy_ticks and len(ticks) < 4000:
                record = server.tick()
                policy_seen += (record.safety_mode is Mode.POLICY)
            report = server.report()
    finally:
        client.stop()
        policy.close()
    return ticks, steps, report, interval


@pytest.mark.parametrize("control_rate_hz", [100.0, 200.0])
def test_actor_runs_at_the_policy_rate_and_the_hal_holds_between(go2, exported_policy,
                                                                  control_rate_hz):
    ticks, steps, report, interval = run_appliance(go2, exported_policy, control_rate_hz, 200)
    assert interval == int(control_rate_hz // 50)
    exchanges = [t.seq for t in ticks if t.exchange]
    assert exchanges == [s for s in range(1, len(ticks) + 1) if (s - 1) % interval == 0]
    # The actor answered exchange ticks only: one step per policy period.
    answered = sorted({seq for seq, *_ in steps})
    assert set(answered) <= set(exchanges)
    assert len(answered) >= 0.95 * len(exchanges)
    commanded = [t for t in ticks if t.command is not None]
    assert all(t.exchange for t in commanded)
    # In policy, a held tick re-applies the previous tick's target (nothing new arrived).
    held = [(a, b) for a, b in zip(ticks, ticks[1:])
            if b.safety_mode is Mode.POLICY and a.safety_mode is Mode.POLICY and not b.exchange]
    assert len(held) >= 100
    for a, b in held:
        np.testing.assert_array_equal(b.applied.target_rad, a.applied.target_rad)
    assert report["command_interval_ticks"] == interval


def test_hand_over_starts_from_primed_stand_frames_and_zero_actions(go2, exported_policy):
    ticks, steps, _, interval = run_appliance(go2, exported_policy, 100.0, 50)
    lay = ObservationLayout.from_robot(go2)
    gate = next(t for t in ticks if t.safety_mode is Mode.POLICY)
    assert gate.command is not None  # the gate opens on a fresh command
    first_seq = gate.command.message.obs_seq
    by_seq = {seq: (engaged, episode, obs, raw) for seq, engaged, episode, obs, raw in steps}
    engaged, episode, obs, raw = by_seq[first_seq]
    assert not engaged  # computed while the HAL still held the stand pose
    # Every frame it sees (current and history) carries zero last action: nothing unexecuted.
    history = obs[slice(*lay.history)].reshape(lay.history_len, lay.proprio_dim)
    assert not obs[slice(*lay.last_action)].any()
    assert not history[:, slice(*lay.last_action)].any()
    # ...and the stand pose: the default angles within the stand's tracking error.
    assert np.abs(history[:, slice(*lay.joint_pos)]).max() < 0.25
    # The episode began when ready began, at least 0.5 s (25 policy steps) before the hand-over.
    primed = [seq for seq, (e, ep, _, _) in by_seq.items() if ep == episode and seq <= first_seq]
    assert len(primed) >= 25
    ready_ticks = [t.seq for t in ticks if t.safety_mode is Mode.READY]
    assert min(primed) <= min(ready_ticks) + 2 * interval
    # The next step is engaged and feeds back the action that was executed at the gate.
    following = [seq for seq in sorted(by_seq) if seq > first_seq]
    engaged_next, episode_next, obs_next, _ = by_seq[following[0]]
    assert engaged_next and episode_next == episode
    np.testing.assert_array_equal(obs_next[slice(*lay.last_action)], raw)


def test_cli_refuses_a_control_rate_that_is_no_multiple_of_the_policy_rate(exported_policy,
                                                                           capsys):
    from hal.server.sim.main import main

    assert main(["--engine", str(exported_policy), "--fast", "--duration", "1",
                 "--control-rate", "75", "--estop-bind", "none"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "75 Hz" in err[0] and "50 Hz" in err[0], err


def test_cli_clamps_speed_to_the_trained_range_and_reports_edits(exported_policy, tmp_path):
    import json

    from hal.server.sim.main import main

    report_path = tmp_path / "run.json"
    assert main(["--engine", str(exported_policy), "--fast", "--duration", "4", "--speed", "3",
                 "--estop-bind", "none", "--report", str(report_path),
                 "--flight-recorder-s", "0"]) == 0
    report = json.loads(report_path.read_text())
    low, high = report["training_contract"]["forward_speed_range_m_s"]
    assert report["command"]["forward_speed_m_s"] == high == 1.5
    edits = report["safety"]["target_edits"]
    # Ticks that emitted the policy's target: those that began in policy, and the gate's tick.
    assert edits["policy_ticks"] == report["safety"]["counters"]["ticks.policy"] + 1
    assert edits["fraction"] == pytest.approx(edits["edited_ticks"] / edits["policy_ticks"])
    assert report["command_interval_ticks"] == 2


@pytest.fixture(scope="module")
def exported_teacher(tmp_path_factory, go2):
    from compute.parkour.synthetic import write_synthetic_checkpoint
    from export.cli import main as export_main

    directory = tmp_path_factory.mktemp("teacher")
    checkpoint = write_synthetic_checkpoint(directory / "teacher.pt", go2, seed=6, teacher=True)
    assert export_main(["--checkpoint", str(checkpoint), "--parity-samples", "2", "--quiet"]) == 0
    return directory / "teacher.onnx"


@pytest.mark.torch
def test_a_teacher_sees_the_box_through_the_simulated_scan(go2, exported_teacher):
    """End to end: the parkour course's box (0.15 m high from x = 1.0 m) in the scan block of the
    observations a teacher is fed, from the HAL's height scanner over the wire."""
    ticks, steps, _, _ = run_appliance(go2, exported_teacher, 100.0, 20, scene="parkour")
    lay = ObservationLayout.from_robot(go2)
    points = scan_points_xy()
    first = next(t for t in ticks if t.exchange)
    obs = next(o for seq, _, _, o, _ in steps if seq == first.seq)
    scan = obs[slice(*lay.scan)]
    # The trunk starts at x ≈ 0, y = 0, facing +x: points past x = 1.0 m are on the box.
    on_box = points[:, 0] > 1.0
    flat = scan[~on_box & (np.abs(points[:, 0] - 1.0) > 0.05)]
    assert np.ptp(flat) < 0.01  # level ground everywhere else in front and behind
    np.testing.assert_allclose(scan[on_box], flat.mean() - 0.15, atol=0.01)
    # Training's value: clip(base_z - 0.3 - terrain_z); the base stands about 0.30 m up.
    assert flat.mean() == pytest.approx(0.30 - 0.3, abs=0.03)

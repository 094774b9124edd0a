"""The whole appliance: sim HAL server + inference client + exported ONNX policy.

In-process over inproc, and with the client in a second process over tcp. Every applied command
answers the observation of its own tick, the counters add up, and shutdown leaves the motors damped.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest

from dataclasses import replace

from compute.parkour.inference_client import InferenceClientConfig, ParkourInferenceClient
from compute.parkour.policy_engines import open_policy_engines
from hal.devices.base import CONTROL_MODE_DAMP
from hal.safety import Mode
from hal.server.base import HalServer, HalServerConfig
from hal.sim import MujocoWorldConfig, make_sim_devices

from tests.child_process import ChildProcess

from .recording import RecordingJoints

pytestmark = pytest.mark.slow  # whole-appliance runs of seconds each


def make_server(robot, observation_endpoint, command_endpoint, rate_hz=50.0, realtime=True,
                keys_dir=None):
    pytest.importorskip("mujoco")  # the [sim] extra
    sim = make_sim_devices(robot, MujocoWorldConfig(scene="flat", settle_s=0.5))
    joints = RecordingJoints(sim.joints)
    devices = replace(sim, joints=joints)
    config = HalServerConfig(control_rate_hz=rate_hz, latency_budget_ms=400.0 / rate_hz,
                             observation_endpoint=observation_endpoint,
                             command_endpoint=command_endpoint, realtime=realtime,
                             keys_dir=None if keys_dir is None else str(keys_dir))
    server = HalServer(robot, devices, config)
    ticks = []
    server.tick_listeners.append(ticks.append)
    return server, joints, ticks


COUNTERS = ("cycles", "published", "commands_applied", "deadline_misses", "malformed_dropped")


def check_run(server, joints, ticks, counts, robot):
    """``counts``: the run's own counter values (differences when the server ran before)."""
    assert counts["cycles"] == len(ticks) > 0
    assert counts["cycles"] == counts["commands_applied"] + counts["deadline_misses"]
    assert counts["published"] == counts["cycles"]
    assert counts["malformed_dropped"] == 0
    answered = [t for t in ticks if t.command is not None]
    assert len(answered) == counts["commands_applied"]
    assert len(answered) >= 0.8 * len(ticks)
    for tick in answered:
        assert tick.command.message.obs_seq == tick.seq  # answers this tick's observation
        assert tick.command.receive_ns >= tick.publish_ns
        assert 0 < tick.obs_to_command_ns < 1e9
    assert any(t.safety_mode is Mode.POLICY for t in ticks)
    # Nothing unsafe reached the motors: finite and within the joint limits, every write.
    lower, upper = robot.to_hardware(robot.position_lower), robot.to_hardware(robot.position_upper)
    for command in joints.written:
        assert np.isfinite(command.target_rad).all()
        if command.mode != CONTROL_MODE_DAMP:
            assert (command.target_rad >= lower - 1e-9).all()
            assert (command.target_rad <= upper + 1e-9).all()
    last = joints.written[-1]
    assert last.mode == CONTROL_MODE_DAMP and (last.kp == 0).all() and (last.kd > 0).all()
    assert server.safety.mode is Mode.DAMPING


def test_inproc_appliance_runs_the_exported_policy(go2, exported_policy, endpoints):
    obs_ep, cmd_ep = endpoints
    policy = open_policy_engines(go2, engine=exported_policy, action_dim=12, obs_dim=753)
    assert policy.backend == "onnxruntime" and policy.depth is not None
    server, joints, ticks = make_server(go2, obs_ep, cmd_ep)
    client = ParkourInferenceClient(go2, policy.actor, policy.depth,
                                    InferenceClientConfig(obs_ep, cmd_ep, forward_speed_m_s=0.5))
    try:
        server.start()
        client.start()
        server.safety.request_start()
        report = server.run(duration_s=4.0)
    finally:
        client.stop()
        server.close()
        policy.close()
    check_run(server, joints, ticks, {k: report[k] for k in COUNTERS}, go2)
    stats = client.stats()
    assert stats["errors"] == []
    assert stats["counters"]["depth_steps"] >= 10  # ~10 Hz for 3+ s
    assert stats["counters"]["torn_observations"] == 0
    used = {t.command.message.depth_seq_used for t in ticks if t.command is not None}
    assert len(used) >= 5  # the actor kept picking up new depth latents


@pytest.mark.parametrize("endpoints", ["tcp"], indirect=True)
def test_tcp_client_in_a_second_process(go2, exported_policy, endpoints, tmp_path, curve_keys):
    """The two-machine setup of the README, with keys: an allowed policy key drives as before."""
    obs_ep, cmd_ep = endpoints
    server, joints, ticks = make_server(go2, obs_ep, cmd_ep, keys_dir=curve_keys["robot_dir"])
    server.start()
    # Bound on any free port: the client connects where the server actually listens.
    obs_ep, cmd_ep = server.publisher.last_endpoint, server.receiver.last_endpoint
    assert not obs_ep.endswith(":*") and not cmd_ep.endswith(":*")
    stats_path = tmp_path / "client.json"
    client = ChildProcess(
        [sys.executable, "-m", "compute.parkour.client_main", "--engine", str(exported_policy),
         "--robot", "go2", "--observation-endpoint", obs_ep, "--command-endpoint", cmd_ep,
         "--keys", str(curve_keys["pilot_dir"]),
         "--duration", "60", "--stats", str(stats_path)],
        timeout_s=30, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        with client:
            # The robot stays idle (damped) while the other process starts and connects.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and server.counters["commands_applied"] < 5:
                server.run(max_ticks=10)
                assert client.running(), client.output
            assert server.counters["commands_applied"] >= 5, "the tcp client never answered"
            before = dict(server.counters)
            ticks.clear()
            server.safety.request_start()
            server.run(duration_s=4.0)
            counts = {k: server.counters[k] - before[k] for k in COUNTERS}
    finally:
        server.close()
    assert client.returncode == 0, client.output  # SIGTERM ends it cleanly
    check_run(server, joints, ticks, counts, go2)
    assert stats_path.is_file()


def test_a_taken_endpoint_is_a_clear_error_and_leaves_the_motors_damped(go2, endpoints):
    from hal.server.base import HalServerError

    obs_ep, cmd_ep = endpoints
    first, _, _ = make_server(go2, obs_ep, cmd_ep)
    second, joints, _ = make_server(go2, obs_ep, cmd_ep)
    first.start()
    try:
        with pytest.raises(HalServerError, match="Is another krabby server running"):
            second.start()
    finally:
        first.close()
    # The second server had connected its devices: it closed them damped.
    assert joints.written and joints.written[-1].mode == CONTROL_MODE_DAMP
    assert not joints.is_connected


def test_a_damp_command_damps_the_motors_on_its_tick(go2, endpoints):
    """The command message's documented mode 1 (damp) is honoured: the safety layer goes to
    damping on the tick the command answers, and the joints get kp 0."""
    import threading

    from hal.client import HalClient
    from hal.devices.base import CONTROL_MODE_POSITION
    from hal.protocol import CommandMessage

    server, joints, ticks = make_server(go2, *endpoints, realtime=False)
    stop = threading.Event()
    damp_from_seq: list[int] = []
    default_hw = np.asarray(go2.to_hardware(go2.default_angles), np.float32)
    kp = np.asarray(go2.to_hardware(go2.kp), np.float32)
    kd = np.asarray(go2.to_hardware(go2.kd), np.float32)

    def client_loop() -> None:
        with HalClient(*endpoints, go2.n_joints, go2.n_feet) as client:
            while not stop.is_set():
                obs = client.poll(50)
                if obs is None:
                    continue
                mode = CONTROL_MODE_DAMP if damp_from_seq and obs.seq >= damp_from_seq[0] \
                    else CONTROL_MODE_POSITION
                client.send_command(CommandMessage(obs.seq, default_hw, kp, kd,
                                                   np.zeros(12, np.float32), mode=mode))
                client.release()

    thread = threading.Thread(target=client_loop, daemon=True)
    with server:
        thread.start()
        server.safety.request_start()
        for _ in range(400):
            if server.tick().safety_mode == "policy":
                break
        assert server.safety.mode == "policy"
        damp_from_seq.append(server._seq + 1)
        record = server.tick()
        stop.set()
    thread.join(5)
    assert record.command is not None and record.command.message.mode == CONTROL_MODE_DAMP
    assert record.safety_mode == "damping" and record.applied.mode == CONTROL_MODE_DAMP
    assert (record.applied.kp == 0).all()
    assert server.safety.events()[-1]["reason"] == "client_damp"  # shutdown: already damped

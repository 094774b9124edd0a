"""Only the operator drives the robot: the sim HAL with CURVE on real tcp sockets (127.0.0.1).

An authenticated policy client drives as before; strangers (no key, or a key the robot does not
allow) can neither subscribe, command, e-stop nor reset; a second allowed policy client is refused
and counted; with --no-client the entry gate opens only on an operator's START; floods on every
port leave the loop at its rate with an e-stop landing within 2 ticks.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time

import numpy as np
import pytest

from benchmarks.flood import KINDS, PolicyResponder, run_case
from hal.client import HalClient
from hal.safety import EstopSender
from hal.server.base import HalServer, HalServerConfig, HalServerError
from hal.sim import MujocoWorldConfig, make_sim_devices

from benchmarks.flood import free_endpoint


def _endpoints():
    return [free_endpoint() for _ in range(3)]


def _server(robot, keys_dir, endpoints, **extra):
    obs, cmd, estop = endpoints
    sim = make_sim_devices(robot, MujocoWorldConfig(scene="flat", settle_s=0.5, camera_fps=0))
    devices = dataclasses.replace(sim, camera=None)  # no depth: the checks here need none
    config = HalServerConfig(control_rate_hz=50.0, latency_budget_ms=8.0,
                             observation_endpoint=obs, command_endpoint=cmd, estop_endpoint=estop,
                             keys_dir=None if keys_dir is None else str(keys_dir), **extra)
    return HalServer(robot, devices, config)


class Watcher(threading.Thread):
    """Polls observations and, if given a target, sends commands answering them."""

    def __init__(self, robot, endpoints, keys, offset_rad=None):
        super().__init__(daemon=True)
        self.client = HalClient(endpoints[0], endpoints[1], robot.n_joints, robot.n_feet,
                                keys=keys, n_scan=None)
        self.robot, self.offset = robot, offset_rad
        self.stop = threading.Event()
        self.observations = 0

    def run(self):
        from hal.protocol import CommandMessage

        n = self.robot.n_joints
        target = np.asarray(self.robot.to_hardware(self.robot.default_angles), np.float32)
        with self.client as client:
            while not self.stop.is_set():
                obs = client.poll(20)
                if obs is None:
                    continue
                self.observations += 1
                if self.offset is not None:
                    client.send_command(CommandMessage(
                        obs.seq, target + np.float32(self.offset), np.full(n, 40, np.float32),
                        np.ones(n, np.float32), np.zeros(n, np.float32)))


def test_strangers_cannot_watch_or_drive_and_a_second_client_is_refused(go2, curve_keys):
    endpoints = _endpoints()
    server = _server(go2, curve_keys["robot_dir"], endpoints)
    ticks = []
    server.tick_listeners.append(ticks.append)
    pilot = Watcher(go2, endpoints, curve_keys["pilot"], offset_rad=0.0)
    strangers = [Watcher(go2, endpoints, None, offset_rad=0.05),
                 Watcher(go2, endpoints, curve_keys["mallory"], offset_rad=0.05)]
    copilot = Watcher(go2, endpoints, curve_keys["copilot"], offset_rad=0.1)
    try:
        server.start()
        pilot.start()
        for watcher in strangers:
            watcher.start()
        # The pilot connects first and owns the command stream; the copilot comes a second later.
        late = threading.Timer(1.0, copilot.start)
        late.start()
        server.safety.request_start()
        server.run(duration_s=4.0)
        late.join()
        with EstopSender(endpoints[2], keys=None, send_timeout_ms=300) as nobody:
            with pytest.raises(TimeoutError):  # no key, no connection: it cannot even e-stop
                nobody.estop("stranger")
        report = server.report()
    finally:
        for watcher in (pilot, copilot, *strangers):
            watcher.stop.set()
            watcher.join(5)
        server.close()
    assert pilot.observations > 50 and copilot.observations > 50
    assert all(w.observations == 0 for w in strangers)  # could not subscribe
    applied = [t for t in ticks if t.command is not None]
    assert len(applied) >= 0.8 * len(ticks)
    target = np.asarray(go2.to_hardware(go2.default_angles), np.float32)
    for tick in applied:  # every applied command was the pilot's (offset 0)
        np.testing.assert_array_equal(tick.command.message.target_rad, target)
    assert report["clients"]["owner"].startswith("pilot ")
    assert [r.split()[0] for r in report["clients"]["refused"]] == ["copilot"]
    assert report["clients"]["foreign_commands"] > 50
    assert ("ready", "policy") in [(e["from"], e["to"]) for e in report["safety"]["events"]]
    assert report["estop"] == {"received": 0, "rejected": 0, "refused": 0}


def test_network_endpoints_need_keys_or_insecure(go2, tmp_path):
    endpoints = _endpoints()
    with pytest.raises(HalServerError, match="--observation-bind .*--keys DIR.*--insecure"):
        _server(go2, None, endpoints).start()
    server = _server(go2, None, endpoints, insecure=True)
    server.start()  # explicitly insecure: binds (and logs it loudly)
    server.close()
    with pytest.raises(HalServerError, match="does not exist"):
        _server(go2, tmp_path / "missing", endpoints).start()


def test_no_client_waits_for_an_operator_start(go2, curve_keys, tmp_path):
    """With --no-client a policy client's valid commands never open the entry gate; a policy
    key's START is refused; the operator's START (CURVE, operator key) stands the robot up."""
    from hal.server.sim.main import main as sim_main

    obs, cmd, estop = _endpoints()
    report_path = tmp_path / "run.json"
    pilot = PolicyResponder(go2, obs, cmd, curve_keys["pilot"])
    sent = []

    def operate():
        time.sleep(2.0)
        with EstopSender(estop, keys=curve_keys["pilot"], send_timeout_ms=3000) as policy:
            policy.start()
        sent.append("policy START")
        time.sleep(1.0)
        with EstopSender(estop, keys=curve_keys["alice"], send_timeout_ms=3000) as operator:
            operator.start()
        sent.append("operator START")

    operator_thread = threading.Thread(target=operate, daemon=True)
    pilot.start()
    operator_thread.start()
    try:
        # Real time: the operator acts on the wall clock.
        code = sim_main(["--no-client", "--duration", "5", "--camera_fps", "0",
                         "--observation_bind", obs, "--command_bind", cmd, "--estop_bind", estop,
                         "--keys", str(curve_keys["robot_dir"]), "--report", str(report_path)])
    finally:
        pilot.stop.set()
        pilot.join(5)
        operator_thread.join(10)
    assert code == 0 and sent == ["policy START", "operator START"]
    report = json.loads(report_path.read_text())
    assert pilot.sent > 100
    events = report["safety"]["events"]
    starts = [e for e in events if e["to"] == "stand_up"]
    assert len(starts) == 1 and starts[0]["reason"] == "operator_start"
    # Nothing moved before the operator's START: ~3 s of idle (damped) ticks at 100 Hz.
    assert report["safety"]["counters"]["ticks.idle"] >= 250
    assert report["estop"] == {"received": 2, "rejected": 0, "refused": 1}


@pytest.mark.parametrize("kind", KINDS)
def test_flood_on_each_port_keeps_the_rate_and_the_estop(kind, curve_keys):
    """3 s of hostile traffic from another process (bounded in time and count, 127.0.0.1):
    the loop keeps its 100 Hz, an operator e-stop lands within 2 ticks, and memory stays put
    (``oversize``: 32 MiB frames, dropped by ZMQ_MAXMSGSIZE before they are buffered)."""
    result = run_case(kind, 3.0, curve_keys)
    assert result["attacker"]["messages"] >= (2 if kind == "oversize" else 1000), result
    assert result["estop_latency_ticks"] is not None and result["estop_latency_ticks"] <= 2, result
    # The unbounded wait used to stretch ticks to 420-850 ms under such a flood. The margin
    # below 100 Hz is the shared 2-core CI machine (the attacker takes a core), not the flood:
    # quiet runs hold 99-100 Hz (benchmarks/README.md, flood).
    assert result["rate_held_hz"] >= 90.0, result
    assert result["tick_interval_ms"]["max"] < 100.0, result
    assert result["rss_growth_mb"] < 16, result
    assert result["commands_applied_before_estop"] >= 0.8, result
    if kind == "estop":
        assert result["estop_counts"]["refused"] > 100  # RESET/START from a policy key


def test_operator_endpoint_admits_operator_keys_only(go2, curve_keys):
    """The network operator endpoint (--teleop-bind) takes START and motion from operator keys;
    a policy key, a stranger's key and a peer without keys never reach it."""
    from hal.auth import secure_client_socket
    from hal.operator.base import Action
    from hal.operator.network import NetworkOperatorSource, TeleopSender

    obs, cmd, estop = _endpoints()
    teleop = _endpoints()[0]
    server = _server(go2, curve_keys["robot_dir"], (obs, cmd, estop))
    server.start()
    source = NetworkOperatorSource(teleop, server.context,
                                   secure=lambda s: server.secure_socket(s, "operator"))
    source.connect()
    events = []
    try:
        for who in ("pilot", "mallory", None, "alice"):
            keys = curve_keys[who] if who else None
            secure = (lambda s, k=keys: secure_client_socket(s, k)) if keys else None
            with TeleopSender(teleop, server.context, secure=secure) as sender:
                sender.send(0.3, action=Action.START)
                deadline = time.monotonic() + (3.0 if who == "alice" else 0.7)
                got = []
                while time.monotonic() < deadline and not got:
                    got = source.poll(time.monotonic_ns())
                    time.sleep(0.01)
                events.append((who, [e.action for e in got]))
    finally:
        source.close()
        server.close()
    assert events == [("pilot", []), ("mallory", []), (None, []), ("alice", [Action.START])]

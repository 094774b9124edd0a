"""The operator on the whole simulated appliance: a gamepad's recorded evdev records drive the
real inference client's command and the real safety layer; the dead-man's release returns the
robot to stand within one policy step; a speed outside the manifest's trained range is clamped."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import struct
import time
from pathlib import Path

import pytest

from hal.operator.gamepad import GamepadDecoder, GamepadSource
from hal.server.cli import run_appliance
from hal.server.sim.main import config_from_argv, plan_from_config

RATE_HZ = 50  # = the Go2 policy's rate: one tick is one policy step
BTN_TL, ABS_Y = 0x136, 0x01


def input_event(type_: int, code: int, value: int) -> bytes:
    return struct.pack("=qqHHi", 0, 0, type_, code, value)


@pytest.fixture
def policy_with_contract(exported_policy, tmp_path) -> Path:
    """The exported policy with a training contract whose forward speed range is 0–1.0 m/s."""
    directory = tmp_path / "policy"
    directory.mkdir()
    for path in exported_policy.parent.iterdir():
        if path.is_file():
            shutil.copy2(path, directory / path.name)
    manifest = directory / "model.json"
    data = json.loads(manifest.read_text())
    data["training_contract"]["forward_speed_range_m_s"] = [0.0, 1.0]
    manifest.write_text(json.dumps(data))
    return directory / "model.onnx"


@pytest.mark.slow
def test_gamepad_drives_and_dead_man_release_stands_within_one_policy_step(
        policy_with_contract, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    tag = f"op_{os.getpid()}_{time.monotonic_ns()}"
    config = config_from_argv([
        "--engine", str(policy_with_contract), "--fast", "--control-rate", str(RATE_HZ),
        "--latency-budget-ms", "16", "--duration", "5", "--log-level", "WARNING",
        "--speed", "1.4", "--observation-bind", f"inproc://{tag}_obs",
        "--command-bind", f"inproc://{tag}_cmd", "--estop-bind", "none",
        "--flight-recorder-s", "0", "--no-keyboard", "--record", str(tmp_path / "run.mcap")])
    plan = plan_from_config(config)
    read_fd, write_fd = os.pipe()
    # A pad whose full stick asks for 1.3 m/s, beyond the trained 1.0: the hub clamps it.
    plan.operator_sources.append(GamepadSource(None, GamepadDecoder(1.3, 1.0), fd=read_fd))
    ticks: list[tuple[int, str, float]] = []
    marks: dict[str, int] = {}

    def watch(server, client) -> None:
        def listener(record) -> None:
            ticks.append((record.seq, str(record.safety_mode), client.command.forward_speed_m_s))
            policy_ticks = sum(1 for t in ticks if t[1] == "policy")
            if policy_ticks == 10 and "press" not in marks:
                marks["press"] = record.seq  # dead-man down, stick full up
                os.write(write_fd, input_event(1, BTN_TL, 1) + input_event(3, ABS_Y, -32768)
                         + input_event(0, 0, 0))
            elif policy_ticks == 60 and "release" not in marks:
                marks["release"] = record.seq
                os.write(write_fd, input_event(1, BTN_TL, 0) + input_event(0, 0, 0))

        server.tick_listeners.insert(0, listener)  # ahead of the hub: it reads in the same tick

    plan.on_started.append(watch)
    try:
        report = run_appliance(plan, config)
    finally:
        os.close(read_fd)
        os.close(write_fd)
    by_seq = {seq: (mode, speed) for seq, mode, speed in ticks}
    # --speed 1.4 ran clamped to the manifest's 1.0 (the training contract's own clamp).
    assert ticks[0][2] == pytest.approx(1.0)
    # The press reached the client's command in the tick it was read, clamped to 1.0 by the hub.
    assert by_seq[marks["press"]][1] == pytest.approx(1.0)
    assert "clamped to 1.00 m/s (trained range 0.00-1.00)" in caplog.text
    assert by_seq[marks["release"] - 1][0] == "policy"
    # Released in tick r: the hub asks for stand in r; the safety layer's step of tick r + 1 (one
    # policy step at 50 Hz) is already in stand, and the command is 0.
    assert by_seq[marks["release"] + 1][0] == "stand"
    assert by_seq[marks["release"] + 1][1] == 0.0
    operator = report["operator"]
    stop = [e for e in operator["events"] if e["what"] == "stop"]
    assert stop and stop[0]["seq"] == marks["release"] and stop[0]["source"] == "gamepad"
    assert stop[0]["reason"] == "dead-man released"
    assert operator["sources"]["gamepad"]["input_events"] == 5
    assert operator["counters"]["clamped"] == 1
    assert operator["speed_range_m_s"] == [0.0, 1.0]
    # Every change is in the log too, on the tick that applied it.
    from hal.recorder.reader import read_log

    logged = [m[2] for m in read_log(tmp_path / "run.mcap").extra["/operator/event"]]
    assert [e["what"] for e in logged] == [e["what"] for e in operator["events"]]
    assert logged[-1]["what"] == "stop" and logged[-1]["seq"] == marks["release"]


def test_status_line_text_and_quiet_without_a_terminal(go2):
    from hal.operator import OperatorCommand
    from hal.server.status_line import StatusLine, status_text

    text = status_text("policy", OperatorCommand(0.5, -0.25, "walk"), 99.96, 3, 1.234)
    assert text == ("[policy] speed 0.50 m/s yaw -0.25 rad/s walk | 100.0 Hz, misses 3, "
                    "obs→cmd p99 1.23 ms")
    assert StatusLine(None, stream=io.StringIO()).start() is False  # not a terminal: quiet


def test_status_line_refreshes_on_a_live_server(go2):
    pytest.importorskip("mujoco")  # the [sim] extra
    from hal.server.base import HalDevices, HalServer, HalServerConfig
    from hal.server.status_line import StatusLine
    from hal.sim import MujocoWorldConfig, make_sim_devices

    sim = make_sim_devices(go2, MujocoWorldConfig(camera_fps=0))
    tag = f"status_{os.getpid()}_{time.monotonic_ns()}"
    server = HalServer(go2, HalDevices(sim.joints, sim.imu, sim.contacts, None, sim.world),
                       HalServerConfig(control_rate_hz=100, latency_budget_ms=2,
                                       observation_endpoint=f"inproc://{tag}_o",
                                       command_endpoint=f"inproc://{tag}_c"))
    out = io.StringIO()
    status = StatusLine(server, stream=out, rate_hz=20, force=True)
    try:
        server.start()
        assert status.start()
        server.run(duration_s=0.5)
    finally:
        status.stop()
        server.close()
        sim.world.close()
    lines = [chunk for chunk in out.getvalue().split("\r\033[K") if chunk]
    assert len(lines) >= 3
    # No client: every tick is a miss and there is no latency to show.
    assert re.fullmatch(r"\[idle\] \| \d+\.\d Hz, misses \d+, obs→cmd p99 -", lines[-1]), lines[-1]
    assert int(lines[-1].split("misses ")[1].split(",")[0]) <= server.counters["deadline_misses"]

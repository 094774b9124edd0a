"""The Jetson pipeline on any machine: recorded ZED depth + IMU, the serial motor bus against the
microcontroller emulator over a pty, the exported ONNX policy — through krabby-hal-server-jetson."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hal.tools.mcu_emulator import McuEmulator, McuEmulatorConfig
from hal.server.jetson.main import main as jetson_main

pytestmark = pytest.mark.slow  # a 4.5 s appliance run

RECORDING = Path(__file__).resolve().parents[1] / "data" / "sim_recording.npz"


def test_recorded_camera_and_emulated_motors_run_the_appliance(go2, exported_policy, tmp_path,
                                                              endpoints):
    obs_ep, cmd_ep = endpoints
    report_path = tmp_path / "run.json"
    start = tuple(float(v) for v in go2.to_hardware(go2.default_angles))
    with McuEmulator(McuEmulatorConfig(initial_position_rad=start)) as emulator:
        code = jetson_main([
            "--engine", str(exported_policy), "--action-dim", "12", "--obs-dim", "753",
            "--device", "cpu", "--control-rate", "50", "--duration", "5.5",
            "--camera", "recorded", "--recording", str(RECORDING), "--loop-recording",
            "--motors", "serial", "--serial-port", emulator.port,
            "--observation-bind", obs_ep, "--command-bind", cmd_ep, "--estop-bind", "none",
            "--report", str(report_path)])
        final = emulator.snapshot()
    assert code == 0
    report = json.loads(report_path.read_text())
    assert report["cycles"] >= 200
    assert report["cycles"] == report["commands_applied"] + report["deadline_misses"]
    assert report["commands_applied"] >= 0.8 * report["cycles"]
    assert report["malformed_dropped"] == 0
    assert report["counters"]["depth_frames"] >= 60  # the recording plays at 30 fps
    camera = report["camera"]  # the grab thread's own counters
    assert camera["device"] == "recorded-depth" and camera["health"]["frames"] >= 60
    assert camera["health"]["dropped"] == 0 and camera["health"]["grab_failures"] == 0
    assert report["inference"]["counters"]["depth_steps"] >= 20
    transitions = [(e["from"], e["to"]) for e in report["safety"]["events"]]
    assert ("ready", "policy") in transitions
    assert report["safety"]["mode_final"] == "damping"
    assert report["policy"]["backend"] == "onnxruntime"
    # The last command the motors got is damping (mode 1, kp 0): shutdown left the robot damped.
    assert final.last_targets is not None and final.last_targets.mode == 1
    assert (final.last_targets.kp == 0).all() and (final.last_targets.kd > 0).all()

"""--dry-run bring-up: every sensor, the policy and the safety layer run; the motors get nothing
(or only damping); the commands that would have been sent are recorded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hal.devices.base import CONTROL_MODE_DAMP, CONTROL_MODE_POSITION
from hal.tools.mcu_emulator import McuEmulator, McuEmulatorConfig
from hal.server.jetson.main import main as jetson_main

RECORDING = Path(__file__).resolve().parents[1] / "data" / "sim_recording.npz"


def _run(go2, exported_policy, endpoints, emulator, *extra: str) -> int:
    obs_ep, cmd_ep = endpoints
    return jetson_main([
        "--engine", str(exported_policy), "--device", "cpu", "--control-rate", "50", "--duration", "2.5",
        "--camera", "recorded", "--recording", str(RECORDING), "--loop-recording",
        "--motors", "serial", "--serial-port", emulator.port,
        "--observation-bind", obs_ep, "--command-bind", cmd_ep, "--estop-bind", "none", *extra])


def test_dry_run_sends_nothing_and_records_what_it_would_send(go2, exported_policy, tmp_path, endpoints):
    import json

    record, report = tmp_path / "dry.npz", tmp_path / "run.json"
    start = tuple(float(v) for v in go2.to_hardware(go2.default_angles))
    with McuEmulator(McuEmulatorConfig(initial_position_rad=start)) as emulator:
        code = _run(go2, exported_policy, endpoints, emulator, "--dry-run", "--dry-run-record", str(record),
                    "--report", str(report))
        final = emulator.snapshot()
    assert code == 0
    summary = json.loads(report.read_text())
    assert summary["dry_run"]["mode"] == "silent" and summary["dry_run"]["position_commands"] >= 30
    assert "telemetry_frames" in summary["motor_health"]
    assert not final.enabled and final.last_targets is None  # the MCU never got a target
    rec = np.load(record)
    assert len(rec["t_ns"]) >= 60 and (np.diff(rec["t_ns"]) > 0).all()
    position = rec["mode"] == CONTROL_MODE_POSITION
    assert position.sum() >= 30  # the stand-up ramp and the policy ran through the safety layer
    assert np.isfinite(rec["target_rad"][position]).all() and np.isfinite(rec["measured_rad"][position]).all()
    assert rec["mode"][-1] == CONTROL_MODE_DAMP and (rec["kp"][-1] == 0).all()  # shutdown damped
    assert list(rec["joint_names"]) == list(go2.joint_names_hardware)


def test_dry_run_damp_sends_only_damping(go2, exported_policy, endpoints):
    start = tuple(float(v) for v in go2.to_hardware(go2.default_angles))
    with McuEmulator(McuEmulatorConfig(initial_position_rad=start)) as emulator:
        code = _run(go2, exported_policy, endpoints, emulator, "--dry-run-damp")
        final = emulator.snapshot()
    assert code == 0
    assert final.last_targets is not None and final.last_targets.mode == 1
    assert (final.last_targets.kp == 0).all() and (final.last_targets.kd > 0).all()


def test_dry_run_record_needs_dry_run(go2, exported_policy, tmp_path, endpoints, capsys):
    with McuEmulator(McuEmulatorConfig()) as emulator:
        code = _run(go2, exported_policy, endpoints, emulator, "--dry-run-record", str(tmp_path / "x.npz"))
    assert code == 2 and "--dry-run-record needs --dry-run" in capsys.readouterr().err

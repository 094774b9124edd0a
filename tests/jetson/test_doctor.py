"""krabby-hal-doctor on this machine: software checks, the motor-bus check against the MCU
emulator, the camera checks on the shipped recording, and the engine/manifest check."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hal.tools.doctor import FAIL, OK, WARN, main
from hal.tools.mcu_emulator import McuEmulator, McuEmulatorConfig
from hal.optional import available
from hal.robot import load_robot

SIM_RECORDING = Path(__file__).resolve().parents[1] / "data" / "sim_recording.npz"


def run(capsys, *argv: str) -> tuple[int, dict[str, tuple[str, str]], str]:
    code = main(["--camera", "none", "--seconds", "0.5", *argv])
    out = capsys.readouterr().out
    rows = {}
    for line in out.splitlines()[2:]:
        if not line.strip():
            break
        name, rest = line[:line.index("  ")], line[line.index("  "):].strip()
        status, _, detail = rest.partition("  ")
        rows[name] = (status.strip(), detail.strip())
    return code, rows, out


def test_software_checks_on_this_machine(capsys):
    code, rows, out = run(capsys)
    assert rows["Python"][0] == OK and rows["numpy"][0] == OK and rows["ONNX Runtime"][0] == OK
    if not available("tensorrt"):
        assert rows["TensorRT"][0] == WARN and "not present" in rows["TensorRT"][1]
        assert "JetPack" in out  # the fix is printed
    if not available("pyzed.sl"):
        assert rows["pyzed (ZED SDK)"][0] == WARN and "get_python_api.py" in out
    assert code == 0  # nothing asked for failed


@pytest.mark.skipif(available("tensorrt"), reason="TensorRT is installed here")
def test_jetson_mode_turns_missing_runtime_pieces_into_failures(capsys):
    code, rows, _ = run(capsys, "--jetson")
    assert rows["TensorRT"][0] == FAIL and code == 1


def test_motor_bus_check_against_the_emulator(capsys):
    with McuEmulator(McuEmulatorConfig()) as emulator:
        code, rows, _ = run(capsys, "--serial-port", emulator.port)
        status, detail = rows["motor bus"]
        assert status == OK and "telemetry/s" in detail and "0 bad frames" in detail
        assert not emulator.snapshot().enabled  # the doctor never powers the motors
    assert code == 0


def test_motor_bus_check_fails_when_the_mcu_is_silent(capsys):
    with McuEmulator(McuEmulatorConfig()) as emulator:
        emulator.set_silent(True)
        code, rows, out = run(capsys, "--serial-port", emulator.port)
    assert rows["motor bus"][0] == FAIL and "no telemetry" in rows["motor bus"][1]
    assert "SERIAL_PROTOCOL.md" in out and code == 1


def test_camera_checks_on_the_shipped_recording(capsys):
    code, rows, _ = run(capsys, "--recording", str(SIM_RECORDING))
    assert rows["recording"][0] == OK
    assert rows["recorded stream"][0] in (OK, WARN) and "frames/s" in rows["recorded stream"][1]
    assert rows["recorded field of view"][0] == OK  # the simulator camera is the training camera
    assert rows["recorded IMU gravity"][0] == OK
    assert code == 0


def _export(tmp_path: Path, robot_name: str, engine_name: str, tensorrt=None) -> Path:
    engine = tmp_path / engine_name
    engine.write_bytes(b"not really a model, but hashed like one")
    manifest = {
        "format_version": 1,
        "robot": load_robot(robot_name).summary(),
        "graphs": {"actor": {"inputs": {"obs": {"shape": [1, 753], "dtype": "float32"}},
                             "outputs": {"actions": {"shape": [1, 12], "dtype": "float32"}},
                             "files": {"onnx": engine_name}}},
        "files": {engine_name: {"sha256": hashlib.sha256(engine.read_bytes()).hexdigest()}},
        "tensorrt": tensorrt,
    }
    (tmp_path / "model.json").write_text(json.dumps(manifest))
    return engine


def test_engine_check_reads_the_manifest_beside_the_engine(tmp_path, capsys):
    engine = _export(tmp_path, "go2", "model.onnx")
    code, rows, _ = run(capsys, "--engine", str(engine))
    assert rows["engine manifest"][0] == OK and rows["engine platform"][0] == OK and code == 0
    engine.write_bytes(b"replaced")
    code, rows, _ = run(capsys, "--engine", str(engine))
    assert rows["engine"][0] == FAIL and "sha256" in rows["engine"][1] and code == 1


def test_engine_check_refuses_another_robot(tmp_path, capsys):
    engine = _export(tmp_path, "a1", "model.onnx")
    code, rows, _ = run(capsys, "--engine", str(engine))
    assert rows["engine"][0] == FAIL and "'a1'" in rows["engine"][1] and code == 1


@pytest.mark.skipif(available("tensorrt"), reason="TensorRT is installed here")
def test_a_tensorrt_plan_fails_where_tensorrt_is_missing(tmp_path, capsys):
    engine = _export(tmp_path, "go2", "model.plan", tensorrt={"version": "10.3.0", "device_name": "Orin"})
    code, rows, _ = run(capsys, "--engine", str(engine))
    assert rows["engine platform"][0] == FAIL and "TensorRT" in rows["engine platform"][1] and code == 1


def test_console_script_bad_arguments_exit_2_without_a_traceback():
    proc = subprocess.run([sys.executable, "-m", "hal.tools.doctor", "--robot", "no-such-robot"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "no-such-robot" in proc.stderr and "Traceback" not in proc.stderr

"""The doctor's Jetson lines on fakes (tests/fakes) and on the texts JetPack writes: CUDA error codes
and versions, the GPU's SM count, L4T / power mode / clocks, the ZED SDK and its AI models."""

from __future__ import annotations

from pathlib import Path

import pytest

from hal.config import parse_config
from hal.tools import doctor
from hal.tools.checks import FAIL, OK, SKIP, WARN
from hal.jetson.platform_info import GpuClock, gpu_clocks, parse_l4t_release, parse_nvpmodel
from tests.fakes import install, install_gpu
from tests.fakes.pyzed import ZedScript, make_pyzed


def test_cuda_python_13_on_jetpack_6_names_error_35_and_the_pin(monkeypatch):
    install_gpu(monkeypatch, trt_version=None, binding_version="13.0.1", driver_version=12060)
    result = doctor.check_cuda_binding(required=True)
    assert result.status == FAIL
    assert "CUDA error 35 (cudaErrorInsufficientDriver)" in result.detail
    assert "cuda-python>=12.6.1,<13" in result.fix


def test_not_in_the_video_group_is_named(monkeypatch):
    install_gpu(monkeypatch, trt_version=None, device_error=999)
    result = doctor.check_cuda_binding(required=True)
    assert result.status == FAIL and "CUDA error 999" in result.detail and "video" in result.fix


def test_a_working_binding_reports_driver_and_runtime_versions_and_the_gpu(monkeypatch):
    install_gpu(monkeypatch, trt_version="10.3.0.30")
    binding = doctor.check_cuda_binding(required=True)
    assert binding.status == OK and "CUDA driver 12.6, runtime 12.6" in binding.detail
    gpu = doctor.check_gpu(required=True)
    assert gpu.status == OK and "compute 8.7, 16 SMs, integrated (Jetson)" in gpu.detail
    assert doctor.check_tensorrt(required=True).detail == "10.3.0.30"


@pytest.mark.parametrize("version, status", [("4.2.5", WARN), ("5.1.0", OK)])
def test_pyzed_line_names_the_sdk_its_depth_modes_and_the_gil(monkeypatch, version, status):
    pyzed, sl = make_pyzed(ZedScript(sdk_version=version))
    install(monkeypatch, {"pyzed": pyzed, "pyzed.sl": sl})
    result = doctor.check_pyzed(required=True)
    assert result.status == status and f"ZED SDK {version}" in result.detail
    assert ("NEURAL_LIGHT" in result.detail) == (version >= "5")
    if status == WARN:
        assert "5.1" in result.fix


def test_zed_models_presence(tmp_path):
    assert doctor.check_zed_models(tmp_path / "missing").status == SKIP
    result = doctor.check_zed_models(tmp_path)
    assert result.status == WARN and "before going offline" in result.fix
    # The command the fix names is one the doctor takes (it said --camera auto once, gone).
    command = result.fix.split("(krabby-hal-doctor ", 1)[1].split(",", 1)[0].split()
    config = parse_config(doctor.DoctorConfig, command, doctor.build_parser())
    assert (config.hardware.camera, config.zed.depth_mode) == ("zed", "NEURAL")
    (tmp_path / "neural_depth_5.2.model").write_bytes(b"x")
    assert doctor.check_zed_models(tmp_path).status == OK


def test_l4t_release_and_power_mode_parsers():
    text = "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Wed Jan  8\n"
    assert parse_l4t_release(text) == "36.4.3"
    assert parse_l4t_release("garbage") is None
    assert parse_nvpmodel("NV Power Mode: MAXN\n0\n") == "MAXN (mode 0)"
    assert parse_nvpmodel("NV Power Mode: 15W\n2") == "15W (mode 2)"
    assert parse_nvpmodel("") is None


def test_gpu_clocks_from_devfreq(tmp_path: Path):
    gpu = tmp_path / "17000000.gpu"
    gpu.mkdir()
    (gpu / "cur_freq").write_text("624750000\n")
    (gpu / "max_freq").write_text("1300500000\n")
    (tmp_path / "3d00000.pcie").mkdir()  # not a GPU
    assert gpu_clocks(tmp_path) == [GpuClock("17000000.gpu", 624750000, 1300500000)]
    assert not gpu_clocks(tmp_path)[0].at_max


def test_off_a_jetson_the_platform_line_is_skipped_or_failed(monkeypatch):
    monkeypatch.setattr("hal.jetson.platform_info.NV_TEGRA_RELEASE", Path("/nonexistent/nv_tegra_release"))
    from hal.jetson import platform_info

    monkeypatch.setattr(platform_info, "l4t_release", lambda path=Path("/nonexistent"): None)
    assert doctor.check_jetson_platform(required=False).status == SKIP
    assert doctor.check_jetson_platform(required=True).status == FAIL


@pytest.mark.parametrize("sms, status", [(16, OK), (8, FAIL)])
def test_engine_platform_line_compares_the_full_build_record(tmp_path, monkeypatch, sms, status):
    import hashlib
    import json

    from hal.tools.checks import check_engine
    from hal.robot import load_robot

    install_gpu(monkeypatch, trt_version="10.3.0.30", multiprocessor_count=sms)
    robot = load_robot("go2")
    plan = tmp_path / "model.plan"
    plan.write_bytes(b"plan bytes")
    (tmp_path / "model.json").write_text(json.dumps({
        "format_version": 1, "robot": robot.summary(),
        "graphs": {"actor": {"inputs": {"obs": {"shape": [1, 753], "dtype": "float32"}},
                             "outputs": {"actions": {"shape": [1, 12], "dtype": "float32"}},
                             "files": {"tensorrt": "model.plan"}}},
        "files": {"model.plan": {"sha256": hashlib.sha256(b"plan bytes").hexdigest()}},
        "tensorrt": {"version": "10.3.0.30", "device_name": "Orin", "compute_capability": "8.7", "sm_count": 16}}))
    line = check_engine(plan, robot)[-1]
    assert line.name == "engine platform" and line.status == status
    if status == FAIL:
        assert "16 SMs, this one has 8" in line.detail
    else:
        assert "compute 8.7, 16 SMs" in line.detail

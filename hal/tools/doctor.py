"""``krabby-hal-doctor``: check a machine before a run and say how to fix what is wrong.

Checks: Python, numpy, ONNX Runtime, TensorRT (full version), the CUDA binding (cuda-python or
pycuda; the CUDA driver and runtime versions, and for a binding that sees no GPU the CUDA error code
and what it means: 35 driver too old, 100 no device, 999 often not in the ``video`` group), a GPU
(compute capability, SM count), the Jetson (L4T release, nvpmodel power mode, GPU clock), pyzed (ZED
SDK version, which depth modes it has, whether it holds the GIL, whether the neural depth model is
already downloaded and optimised); with a camera, that it opens and streams (frame rate over ``--seconds``), that it covers
the training camera's field of view, the IMU rate and its gravity alignment; with
``--serial-port``, that the motor MCU answers (without powering the motors); with ``--engine``,
that the engine matches its manifest, the robot, and (for a TensorRT plan) this TensorRT and GPU.

Prints a table of OK / WARN / FAIL (SKIP: not asked for) and, below it, how to fix each problem.
Exit status: 0 when nothing FAILed, 1 otherwise, 2 for bad arguments. Missing Jetson-only pieces
(TensorRT, CUDA, pyzed) are WARN on a development machine and FAIL with ``--jetson``.

    krabby-hal-doctor
    krabby-hal-doctor --jetson --engine model.plan --serial-port /dev/ttyUSB0
    krabby-hal-doctor --recording tests/data/sim_recording.npz   # camera checks on a recording
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Sequence

import numpy as np

from hal.backends.serial_bus import SerialPortSection
from hal.config import ConfigError, parse_config, part, setting
from hal.config import build_parser as build_config_parser
from hal.config.sections import ENGINE, MeasureSection, RobotSection
from hal.jetson.zed_camera import ZedConfig
from hal.playback.devices import RecordedConfig
from hal.tools.checks import (
    FAIL,
    OK,
    SKIP,
    WARN,
    CheckResult,
    check_engine,
    check_motor_bus,
    check_recording,
    check_zed,
    cuda_device,
    install_hint,
)
from hal.optional import available, require
from hal.robot import RobotConfig, RobotDefinitionError, load_robot
from hal.server.jetson.hal_server import JetsonDevicesConfig

__all__ = ["check_python", "check_numpy", "check_onnxruntime", "check_tensorrt", "check_cuda_binding",
           "check_gpu", "check_jetson_platform", "check_pyzed", "check_zed_models", "run_checks",
           "format_report", "DoctorSection", "DoctorConfig", "build_parser", "main"]

ZED_RESOURCES = Path("/usr/local/zed/resources")

_MIN_PYTHON = (3, 10)
_MIN_NUMPY = (1, 24)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _parse_version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


# -- software --------------------------------------------------------------------------------------

def check_python() -> CheckResult:
    version = platform.python_version()
    if sys.version_info[:2] < _MIN_PYTHON:
        return CheckResult("Python", FAIL, version, f"use Python >= {'.'.join(map(str, _MIN_PYTHON))}")
    return CheckResult("Python", OK, f"{version} ({sys.executable})")


def check_numpy() -> CheckResult:
    if _parse_version(np.__version__) < _MIN_NUMPY:
        return CheckResult("numpy", FAIL, np.__version__, "pip install 'numpy>=1.24'")
    return CheckResult("numpy", OK, np.__version__)


def check_onnxruntime() -> CheckResult:
    if not available("onnxruntime"):
        return CheckResult("ONNX Runtime", FAIL, "not installed", install_hint("onnxruntime"))
    ort = require("onnxruntime")
    providers = ort.get_available_providers()
    return CheckResult("ONNX Runtime", OK, f"{ort.__version__}, providers: {', '.join(providers)}")


def _missing(name: str, module: str, required: bool, what: str) -> CheckResult:
    return CheckResult(name, FAIL if required else WARN, f"not present ({what})", install_hint(module))


def check_tensorrt(required: bool) -> CheckResult:
    if not available("tensorrt"):
        return _missing("TensorRT", "tensorrt", required, "needed for .plan engines; ONNX Runtime still runs")
    return CheckResult("TensorRT", OK, require("tensorrt").__version__)


def _cuda_version_text(encoded: int | None) -> str:
    return "unknown" if encoded is None else f"{encoded // 1000}.{encoded % 1000 // 10}"


def check_cuda_binding(required: bool) -> CheckResult:
    from engines.cuda_memory import load_backend, probe_backends

    try:
        statuses = probe_backends()
    except ValueError as exc:
        return CheckResult("CUDA binding", FAIL, str(exc), "unset KRABBY_CUDA_BACKEND or fix its value")
    usable = [s for s in statuses if s.ok]
    installed = [s for s in statuses if not s.detail.startswith("not installed")]
    if usable:
        name = usable[0].backend
        detail = f"{name} {_version('cuda-python' if name == 'cuda-python' else 'pycuda')}"
        versions = getattr(load_backend(name), "versions", None)
        if versions is not None:
            v = versions()
            detail += f", CUDA driver {_cuda_version_text(v['driver'])}, runtime {_cuda_version_text(v['runtime'])}"
        skipped = [s.describe() for s in installed if not s.ok]
        return CheckResult("CUDA binding", OK, detail + (f" (skipped: {'; '.join(skipped)})" if skipped else ""))
    if not installed:
        return CheckResult("CUDA binding", FAIL if required else WARN,
                           "neither cuda-python nor pycuda (observation slots use ordinary memory)",
                           f"{install_hint('cuda.bindings')}; or {install_hint('pycuda')}")
    detail = "; ".join(s.describe() for s in installed)
    fix = "see the CUDA error above"
    if any(s.error_code == 35 for s in installed):
        fix = "pip install 'cuda-python>=12.6.1,<13' (JetPack 6 has CUDA 12.6; cuda-python 13 needs CUDA 13)"
    elif any(s.error_code == 999 for s in installed):
        fix = "sudo usermod -aG video $USER, log in again; else reboot (GPU driver not loaded)"
    return CheckResult("CUDA binding", FAIL if required or _nvidia_driver_present() else WARN,
                       f"installed but sees no GPU: {detail}", fix)


def _nvidia_driver_present() -> str:
    for marker in ("/proc/driver/nvidia/version", "/etc/nv_tegra_release", "/dev/nvidia0", "/dev/nvhost-ctrl-gpu"):
        if os.path.exists(marker):
            return marker
    return "nvidia-smi" if shutil.which("nvidia-smi") else ""


def check_gpu(required: bool) -> CheckResult:
    try:
        info, count = cuda_device()
    except Exception as exc:  # noqa: BLE001 - a broken driver is a finding, not a crash
        return CheckResult("GPU", FAIL if required else WARN, f"CUDA error: {exc}",
                           "check the NVIDIA driver (nvidia-smi / tegrastats) and reboot after JetPack updates")
    if info is not None:
        kind = "integrated (Jetson)" if info.integrated else "discrete"
        return CheckResult("GPU", OK, f"{info.name}, compute {info.compute_capability_text}, "
                                      f"{info.multiprocessor_count} SMs, {kind}, {count} device(s)")
    marker = _nvidia_driver_present()
    if marker:
        return CheckResult("GPU", FAIL if required else WARN,
                           f"an NVIDIA driver is present ({marker}) but no CUDA binding sees a device",
                           install_hint("cuda.bindings"))
    return CheckResult("GPU", FAIL if required else WARN, "no NVIDIA GPU visible",
                       "run on the Jetson (JetPack 6) or a machine with an NVIDIA GPU and driver")


def check_jetson_platform(required: bool) -> CheckResult:
    from hal.jetson.platform_info import gpu_clocks, l4t_release, power_mode

    release = l4t_release()
    if release is None:
        return CheckResult("Jetson", FAIL if required else SKIP, "not a Jetson (no /etc/nv_tegra_release)",
                           "run on the robot's Jetson (JetPack 6)" if required else "")
    mode = power_mode()
    clocks = gpu_clocks()
    clock = ", ".join(f"GPU {c.current_hz / 1e6:.0f}/{c.max_hz / 1e6:.0f} MHz" for c in clocks) or "GPU clock unknown"
    detail = f"L4T {release}, power mode {mode or 'unknown (nvpmodel not found)'}, {clock}"
    if (mode is not None and not mode.startswith("MAXN")) or any(not c.at_max for c in clocks):
        return CheckResult("Jetson", WARN, detail, "for the measured latency: sudo nvpmodel -m 0 (MAXN) and "
                                                   "sudo jetson_clocks (the GPU otherwise scales its clock down)")
    return CheckResult("Jetson", OK, detail)


def check_pyzed(required: bool) -> CheckResult:
    if not available("pyzed.sl"):
        return _missing("pyzed (ZED SDK)", "pyzed.sl", required, "needed for the ZED camera")
    from hal.jetson.zed_camera import GIL_RELEASED_FROM, sdk_options, sdk_version

    sl = require("pyzed.sl")
    version = sdk_version(sl)
    resolutions, modes = sdk_options(sl)
    detail = f"ZED SDK {'.'.join(map(str, version))}; depth modes {', '.join(modes)}"
    if version[:2] < GIL_RELEASED_FROM:
        return CheckResult("pyzed (ZED SDK)", WARN, detail + "; holds the GIL while grabbing",
                           "install ZED SDK >= 5.1 (its pyzed releases the GIL in grab, retrieve_measure and "
                           "get_sensors_data; older ones stall the control loop for each grab)")
    return CheckResult("pyzed (ZED SDK)", OK, detail)


def check_zed_models(resources: Path = ZED_RESOURCES) -> CheckResult:
    """Whether the ZED SDK's neural depth model is already on disk (a first NEURAL open downloads it
    and optimises it for this GPU, which takes minutes and needs the network).

    The check looks for neural model files in the SDK's resources folder; their exact names differ
    between SDK releases, so this is a presence check, not a version check."""
    if not resources.is_dir():
        return CheckResult("ZED AI models", SKIP, f"{resources} does not exist (no ZED SDK here)")
    models = sorted(p.name for p in resources.iterdir() if "neural" in p.name.lower())
    if not models:
        return CheckResult("ZED AI models", WARN, f"no neural depth model in {resources}",
                           "before going offline, open the camera once with the depth mode you will use "
                           "(krabby-hal-doctor --camera zed --zed-depth-mode NEURAL, or ZED_Depth_Viewer): the "
                           "SDK downloads the model and optimises it for this GPU (minutes)")
    return CheckResult("ZED AI models", OK, f"{len(models)} in {resources}: {', '.join(models[:4])}"
                                            + (" ..." if len(models) > 4 else ""))


# -- report ----------------------------------------------------------------------------------------

def run_checks(config: DoctorConfig, robot: RobotConfig) -> list[CheckResult]:
    required = config.doctor.jetson
    results = [check_python(), check_numpy(), check_onnxruntime(), check_tensorrt(required),
               check_cuda_binding(required), check_gpu(required), check_jetson_platform(required),
               check_pyzed(required)]
    if available("pyzed.sl"):
        results.append(check_zed_models())
    seconds = config.measure.seconds
    camera = config.hardware.camera
    steps: list[Callable[[], list[CheckResult]]] = []
    if config.recorded.recording is not None:
        steps.append(lambda: check_recording(config.recorded.recording, seconds, robot))
    elif camera == "zed":
        zed = config.zed
        steps.append(lambda: check_zed(seconds, zed.resolution, zed.fps, zed.depth_mode, robot))
    elif camera != "none":
        results.append(CheckResult("camera", SKIP, f"no check for camera {camera!r}: the doctor "
                                                   "checks zed, and a recording given with "
                                                   "--recording PATH"))
    serial = config.serial
    if serial.serial_port:
        steps.append(lambda: check_motor_bus(serial.serial_port, serial.baudrate, robot,
                                             min(seconds, 1.0)))
    if config.doctor.engine:
        steps.append(lambda: check_engine(Path(config.doctor.engine), robot))
    for step in steps:
        results += step()
    return results


def format_report(results: Sequence[CheckResult]) -> str:
    width = max(len(r.name) for r in results)
    lines = [f"{'check'.ljust(width)}  status  detail", f"{'-' * width}  ------  ------"]
    lines += [f"{r.name.ljust(width)}  {r.status.ljust(6)}  {r.detail}" for r in results]
    fixes = [r for r in results if r.fix and r.status in (WARN, FAIL)]
    if fixes:
        lines += ["", "How to fix:"]
        lines += [f"  [{r.status}] {r.name}: {r.fix}" for r in fixes]
    counts = {s: sum(r.status == s for r in results) for s in (OK, WARN, FAIL, SKIP)}
    lines += ["", ", ".join(f"{n} {s}" for s, n in counts.items() if n)]
    return "\n".join(lines)


@dataclass(frozen=True)
class DoctorSection:
    """What the doctor checks beyond the machine's software."""

    section: ClassVar[str] = "doctor"

    jetson: bool = setting(False, help="this is the robot: missing TensorRT/CUDA/GPU/pyzed are "
                                       "failures")
    engine: str | None = setting(None, like=ENGINE)


@dataclass(frozen=True)
class DoctorConfig:
    """``krabby-hal-doctor``'s settings: the robot, what to check, and the checked backends'
    own settings (the ZED's, the recording's and the serial bus's flags, as the Jetson server
    spells them)."""

    robot: RobotSection = part(RobotSection)
    doctor: DoctorSection = part(DoctorSection)
    # The camera to check, as the Jetson server names it (zed: checked when pyzed is installed).
    hardware: JetsonDevicesConfig = part(JetsonDevicesConfig, only=("camera",))
    measure: MeasureSection = part(MeasureSection, only=("seconds",), defaults={"seconds": 2.0})
    zed: ZedConfig = part(ZedConfig)
    recorded: RecordedConfig = part(RecordedConfig, only=("recording",))
    serial: SerialPortSection = part(SerialPortSection)


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(DoctorConfig, prog="krabby-hal-doctor",
                               description=__doc__.split("\n\n")[0])


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        config = parse_config(DoctorConfig, argv, parser)
        robot = load_robot(config.robot.robot)
    except (ConfigError, RobotDefinitionError) as exc:
        parser.error(str(exc))
    results = run_checks(config, robot)
    print(format_report(results))
    return 1 if any(r.status == FAIL for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())

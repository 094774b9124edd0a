"""Device checks of ``krabby-hal-doctor``: sensor streams, the motor bus, an exported engine.

Each check returns :class:`CheckResult` lines (never raises for what it finds). The stream
measurements take any :class:`~hal.devices.base.DepthCamera`/:class:`~hal.devices.base.Imu`, so
they run on the live ZED and on a recording alike.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hal.devices.base import DepthCamera, Imu
from hal.jetson.intrinsics import training_fov_margins_px
from hal.optional import MissingDependencyError, available, require
from hal.robot import RobotConfig

__all__ = ["OK", "WARN", "FAIL", "SKIP", "CheckResult", "StreamMeasurement", "install_hint", "cuda_device",
           "measure_camera", "measure_imu", "camera_checks", "check_zed", "zed_open_result",
           "zed_grab_warnings", "check_recording",
           "check_motor_bus", "check_engine"]

OK, WARN, FAIL, SKIP = "OK", "WARN", "FAIL", "SKIP"
_MIN_IMU_RATE_HZ = 100.0
_MIN_TELEMETRY_RATE_HZ = 100.0
_MAX_GRAVITY_TILT_DEG = 10.0


@dataclass(frozen=True)
class CheckResult:
    """One line of the report."""

    name: str
    status: str
    detail: str
    fix: str = ""


def install_hint(module: str) -> str:
    """The install command hal.optional gives for a missing ``module``."""
    try:
        require(module)
    except MissingDependencyError as exc:
        return str(exc).split(". Import error")[0]
    return ""


def cuda_device():
    """(DeviceInfo of device 0, device count) through the first binding that sees a device, or
    (None, 0) when none does (the CUDA binding check says why)."""
    from engines.cuda_memory import usable_backend

    backend, _ = usable_backend()
    if backend is None:
        return None, 0
    count = backend.device_count()
    return (backend.device_info(0), count) if count > 0 else (None, 0)



@dataclass(frozen=True)
class StreamMeasurement:
    samples: int  # new samples seen while measuring
    seconds: float
    stale: bool

    @property
    def rate_hz(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0


def measure_camera(camera: DepthCamera, seconds: float) -> StreamMeasurement:
    """Count new frames of a connected camera over ``seconds`` (by seq, so none are missed)."""
    out = np.empty(camera.frame_shape, np.float32)
    info = camera.read_into(out)
    first_seq = last_seq = info.seq if info is not None else 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        info = camera.read_into(out, last_seq)
        if info is not None:
            last_seq = info.seq
        time.sleep(0.002)
    elapsed = time.monotonic() - start
    stale = bool(getattr(camera, "stale", False))
    return StreamMeasurement(last_seq - first_seq, elapsed, stale)


def measure_imu(imu: Imu, seconds: float) -> tuple[StreamMeasurement, np.ndarray]:
    """Count distinct IMU samples over ``seconds``; also returns their mean acceleration (base frame)."""
    last = imu.read()
    stamps = 0
    accel = [last.linear_acceleration_m_s2]
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        sample = imu.read()
        if sample.timestamp_ns != last.timestamp_ns:
            stamps += 1
            accel.append(sample.linear_acceleration_m_s2)
            last = sample
        time.sleep(0.0005)
    elapsed = time.monotonic() - start
    return StreamMeasurement(stamps, elapsed, bool(getattr(imu, "stale", False))), np.mean(accel, axis=0)


def camera_checks(camera: DepthCamera, imu: Imu | None, seconds: float, expected_fps: float,
                  robot: RobotConfig, label: str) -> list[CheckResult]:
    """Stream checks on connected devices (the live ZED, or a recording)."""
    results = []
    m = measure_camera(camera, seconds)
    if m.samples == 0:
        results.append(CheckResult(f"{label} stream", FAIL, f"no frames in {m.seconds:.1f} s",
                                   "check the camera's cable (USB 3 / GMSL) and that nothing else holds it"))
    else:
        detail = f"{m.rate_hz:.1f} frames/s over {m.seconds:.1f} s (configured {expected_fps:g})"
        if m.rate_hz < 0.9 * expected_fps:
            results.append(CheckResult(f"{label} stream", WARN, detail,
                                       "the grab loop is slower than the camera: use depth_mode NEURAL_LIGHT (ZED SDK >= 5.0), "
                                       "a lower resolution or fps, or run sudo jetson_clocks"))
        else:
            results.append(CheckResult(f"{label} stream", OK, detail))
    margins = training_fov_margins_px(camera.intrinsics, robot.depth_camera)
    intr = camera.intrinsics
    fov = f"{intr.width}x{intr.height}, FOV {intr.horizontal_fov_deg:.1f}x{intr.vertical_fov_deg:.1f} deg"
    if margins.covered:
        results.append(CheckResult(f"{label} field of view", OK, f"{fov}: {margins.describe()}"))
    else:
        results.append(CheckResult(f"{label} field of view", FAIL, f"{fov}: {margins.describe()}",
                                   f"the policy needs {robot.depth_camera.horizontal_fov_deg:g} deg horizontally "
                                   "around the principal point: use a wider camera or resolution"))
    if imu is not None:
        im, mean_acc = measure_imu(imu, min(seconds, 1.0))
        detail = f"{im.rate_hz:.0f} samples/s"
        if im.rate_hz < _MIN_IMU_RATE_HZ:
            results.append(CheckResult(f"{label} IMU rate", WARN, detail,
                                       f"expected >= {_MIN_IMU_RATE_HZ:g} Hz: check the camera model and firmware"))
        else:
            results.append(CheckResult(f"{label} IMU rate", OK, detail))
        norm = float(np.linalg.norm(mean_acc))
        tilt = math.degrees(math.acos(max(-1.0, min(1.0, mean_acc[2] / norm)))) if norm > 0 else 180.0
        detail = f"mean acceleration {np.round(mean_acc, 2).tolist()} m/s², {tilt:.1f} deg from base +z"
        if tilt > _MAX_GRAVITY_TILT_DEG or not 0.7 * 9.81 < norm < 1.3 * 9.81:  # wide: the robot may sway
            results.append(CheckResult(f"{label} IMU gravity", WARN, detail,
                                       "with the robot standing level this should point up (+z, 9.81): "
                                       "fix imu_mount_rpy_deg in the ZED config"))
        else:
            results.append(CheckResult(f"{label} IMU gravity", OK, detail))
    return results


def check_zed(seconds: float, resolution: str, fps: int, depth_mode: str, robot: RobotConfig) -> list[CheckResult]:
    from hal.jetson.zed_camera import ZedConfig, ZedDepthCamera
    from hal.jetson.zed_imu import ZedImu

    if not available("pyzed.sl"):
        return [CheckResult("ZED camera", SKIP, "pyzed not installed (see pyzed above)")]
    try:
        config = ZedConfig(resolution=resolution, fps=fps, depth_mode=depth_mode)
    except ValueError as exc:
        return [CheckResult("ZED camera", FAIL, str(exc), "fix the --zed-* options")]
    camera = ZedDepthCamera(config)
    imu = ZedImu(camera.session)
    try:
        camera.connect()
        try:
            imu.connect()
        except Exception as exc:  # noqa: BLE001 - a camera without an IMU still streams depth
            imu = None
            results = [CheckResult("ZED IMU", WARN, str(exc), "use a ZED 2/2i/X, or another IMU backend")]
        else:
            results = []
        results.insert(0, zed_open_result(camera.session.describe(), camera.session.open_warning))
        results += camera_checks(camera, imu, seconds, float(fps), robot, "ZED")
        return results + zed_grab_warnings(camera.report()["warnings"],
                                           imu.warnings() if imu is not None else {})
    except Exception as exc:  # noqa: BLE001 - every failure becomes a line of the report
        return [CheckResult("ZED camera", FAIL, str(exc),
                            "check the cable and power, run ZED_Diagnostic, close other ZED programs")]
    finally:
        if imu is not None:
            imu.close()
        camera.close()


def zed_open_result(description: str, open_warning: str | None) -> CheckResult:
    """The "ZED camera" line: OK, or WARN naming the warning ``open`` returned (the camera works)."""
    if open_warning is None:
        return CheckResult("ZED camera", OK, description)
    fixes = {"CONFIGURATION_FALLBACK": "the camera opened with a fallback setting: check --zed-resolution/"
                                       "--zed-fps against what this camera model supports",
             "POTENTIAL_CALIBRATION_ISSUE": "recalibrate the camera (ZED Calibration) or download its "
                                            "factory calibration (ZED Explorer)"}
    return CheckResult("ZED camera", WARN, f"{description}; opened with warning {open_warning}",
                       fixes.get(open_warning, "see the ZED SDK's ERROR_CODE documentation; run ZED_Diagnostic"))


def zed_grab_warnings(depth: dict[str, int], imu: dict[str, int]) -> list[CheckResult]:
    """A WARN line counting the warning codes grab/retrieve and get_sensors_data returned, if any."""
    counts = {f"depth {name}": n for name, n in depth.items()}
    counts.update({f"IMU {name}": n for name, n in imu.items()})
    if not counts:
        return []
    detail = ", ".join(f"{name} x{n}" for name, n in sorted(counts.items()))
    fix = "corrupted frames were dropped (depth goes stale if they persist): check the cable, " \
          "its connector and the camera's power" if depth.get("CORRUPTED_FRAME") else \
          "see the ZED SDK's ERROR_CODE documentation; run ZED_Diagnostic"
    return [CheckResult("ZED warnings", WARN, detail, fix)]


def check_recording(path: Path, seconds: float, robot: RobotConfig) -> list[CheckResult]:
    from hal.playback.devices import RecordedConfig, make_recorded_devices
    from hal.playback.recording import load_recording

    try:
        recording = load_recording(path)
    except (OSError, ValueError) as exc:
        return [CheckResult("recording", FAIL, str(exc), "record one with python -m hal.tools.record_sim")]
    camera, imu = make_recorded_devices(recording, RecordedConfig(loop=True))
    fps = (recording.n_frames - 1) / recording.duration_s if recording.duration_s > 0 else 0.0
    try:
        camera.connect()
        if recording.n_imu:
            imu.connect()
        results = [CheckResult("recording", OK, f"{path}: {recording.n_frames} frames, {recording.n_imu} IMU "
                                                f"samples, {recording.source or 'unnamed source'}")]
        return results + camera_checks(camera, imu if recording.n_imu else None, seconds, fps, robot, "recorded")
    finally:
        imu.close()
        camera.close()


def check_motor_bus(port: str, baudrate: int, robot: RobotConfig, seconds: float) -> list[CheckResult]:
    from hal.devices.base import DeviceError
    from hal.backends import serial_protocol as sp
    from hal.backends.serial_bus import SerialBusConfig, SerialJointDriver

    try:
        driver = SerialJointDriver(SerialBusConfig.from_robot(robot, port, baudrate=baudrate))
        driver.connect()
    except (DeviceError, ValueError, ImportError) as exc:
        return [CheckResult("motor bus", FAIL, str(exc), "see SERIAL_PROTOCOL.md; try the emulator: "
                                                         "python -m hal.tools.mcu_emulator")]
    try:
        start_frames = driver.health().telemetry_frames
        time.sleep(seconds)
        health = driver.health()
        rate = (health.telemetry_frames - start_frames) / seconds
        detail = (f"{port}: {rate:.0f} telemetry/s, MCU flags {health.flags_text}, "
                  f"{health.bad_crc + health.bad_length + health.bad_version + health.unknown_type} bad frames, "
                  f"{health.garbage_bytes} stray bytes, MCU rejected {health.mcu_rx_errors}")
        if health.stale or rate < _MIN_TELEMETRY_RATE_HZ:
            return [CheckResult("motor bus", FAIL, detail, "the MCU stops answering: check power, the cable "
                                                           "and the baud rate")]
        if health.flags & sp.FLAG_FAULT:
            return [CheckResult("motor bus", FAIL, detail, "the MCU reports a FAULT: check motor temperatures "
                                                           "and currents, then power-cycle it")]
        bad = health.bad_crc + health.bad_length + health.bad_version + health.unknown_type + health.bad_payload
        if bad or health.mcu_rx_errors:
            return [CheckResult("motor bus", WARN, detail, "corrupted frames on the line: shorten or shield the "
                                                           "cable, lower the baud rate, check ground")]
        return [CheckResult("motor bus", OK, detail)]
    finally:
        driver.close()


def check_engine(path: Path, robot: RobotConfig) -> list[CheckResult]:
    from engines.base import EngineMismatchError
    from compute.parkour.graphs import load_policy_manifest
    from engines.manifest import ManifestError, manifest_path_for

    if not path.is_file():
        return [CheckResult("engine", FAIL, f"{path} does not exist", "pass the exported model.plan / model.onnx")]
    manifest_path = manifest_path_for(path)
    try:
        manifest = load_policy_manifest(manifest_path)
        manifest.verify_file(path)
        manifest.check_robot(robot)
    except (ManifestError, EngineMismatchError) as exc:
        return [CheckResult("engine", FAIL, str(exc), f"re-export for {robot.name} with krabby-export")]
    results = [CheckResult("engine manifest", OK, f"{manifest_path.name}: robot {manifest.robot.get('name')}, "
                                                  f"{manifest.precision}, sha256 matches {path.name}")]
    if path.suffix != ".plan":
        return results + [CheckResult("engine platform", OK, f"{path.suffix} runs with ONNX Runtime anywhere")]
    if not available("tensorrt"):
        return results + [CheckResult("engine platform", FAIL, f"{path.name} is a TensorRT plan and TensorRT "
                                                               "is not installed", install_hint("tensorrt"))]
    from engines.tensorrt_engine import check_plan_platform

    try:
        info, _ = cuda_device()
    except Exception as exc:  # noqa: BLE001
        info = None
        cuda_error = f" ({exc})"
    else:
        cuda_error = ""
    if info is None:
        return results + [CheckResult("engine platform", FAIL, f"no CUDA device to run {path.name} on{cuda_error}",
                                      "see the GPU and CUDA binding lines above")]
    try:
        check_plan_platform(path, manifest.tensorrt, require("tensorrt").__version__, info)
    except EngineMismatchError as exc:
        return results + [CheckResult("engine platform", FAIL, str(exc), "rebuild the plan on this device")]
    built = manifest.tensorrt
    return results + [CheckResult("engine platform", OK, f"built by TensorRT {built['version']} on "
                                                         f"{built['device_name']} (compute {built['compute_capability']}, "
                                                         f"{built['sm_count']} SMs), as here")]

"""A camera backend registered from this test module only, chosen by name on the real
``krabby-hal-server-jetson`` command line, with its own flag, driving a whole run against the
microcontroller emulator: no other module knows it."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest

from hal.config import setting
from hal.devices.base import (
    CameraIntrinsics,
    DepthCamera,
    DepthFrameInfo,
    DeviceNotConnectedError,
    Imu,
    ImuSample,
)
from hal.devices.registry import DeviceParts, register_backend, unregister_backend
from hal.robot import RobotConfig
from hal.server.jetson.main import main as jetson_main
from hal.tools.mcu_emulator import McuEmulator, McuEmulatorConfig

pytestmark = pytest.mark.slow  # a 3.5 s appliance run

NAME = "x-flat-wall"
BUILT: list["FlatWallConfig"] = []


@dataclass(frozen=True)
class FlatWallConfig:
    """A camera that sees a flat wall at a set distance, and a level IMU."""

    section: ClassVar[str] = "flat_wall"

    wall_distance_m: float = setting(1.0, flag="--wall-distance", metavar="M",
                                     help="with --camera x-flat-wall: the wall's distance, m")
    frame_rate_hz: float = 30.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.wall_distance_m) and self.wall_distance_m > 0):
            raise ValueError(f"--wall-distance {self.wall_distance_m}: must be positive metres")


class FlatWallCamera(DepthCamera):
    """Frames of one depth at ``frame_rate_hz``, stamped when asked for."""

    def __init__(self, robot: RobotConfig, config: FlatWallConfig) -> None:
        model = robot.depth_camera
        fx = model.width / (2.0 * math.tan(math.radians(model.horizontal_fov_deg) / 2.0))
        self._intrinsics = CameraIntrinsics(model.width, model.height, fx, fx,
                                            model.width / 2.0, model.height / 2.0)
        self.config = config
        self._start_ns: int | None = None
        self.frames = 0

    @property
    def is_connected(self) -> bool:
        return self._start_ns is not None

    def connect(self) -> None:
        self._start_ns = time.monotonic_ns()

    def close(self) -> None:
        self._start_ns = None

    @property
    def frame_shape(self) -> tuple[int, int]:
        return self._intrinsics.height, self._intrinsics.width

    @property
    def intrinsics(self) -> CameraIntrinsics:
        return self._intrinsics

    def read_into(self, out: np.ndarray, newer_than_seq: int = 0) -> DepthFrameInfo | None:
        if self._start_ns is None:
            raise DeviceNotConnectedError("FlatWallCamera: not connected")
        now = time.monotonic_ns()
        seq = 1 + int((now - self._start_ns) * 1e-9 * self.config.frame_rate_hz)
        if seq <= newer_than_seq:
            return None
        out[...] = self.config.wall_distance_m
        self.frames += 1
        return DepthFrameInfo(seq, now, self._intrinsics)

    def report(self) -> dict[str, Any]:  # hal.devices.protocols.ReportsStatus
        return {"device": NAME, "wall_distance_m": self.config.wall_distance_m,
                "frames": self.frames}


class LevelImu(Imu):
    """A robot standing level and still."""

    def __init__(self) -> None:
        self._connected = False

    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        self._connected = True

    def close(self) -> None:
        self._connected = False

    def read(self) -> ImuSample:
        return ImuSample(np.array([1.0, 0.0, 0.0, 0.0]), np.zeros(3), np.array([0.0, 0.0, 9.81]),
                         time.monotonic_ns())


def make_flat_wall(robot: RobotConfig, config: FlatWallConfig) -> DeviceParts:
    BUILT.append(config)
    return DeviceParts(camera=FlatWallCamera(robot, config), imu=LevelImu())


@pytest.fixture
def flat_wall_backend():
    BUILT.clear()
    register_backend("camera", NAME, make_flat_wall, config=FlatWallConfig,
                     provides=("camera", "imu"), help="a flat wall (this test's own backend)")
    yield
    unregister_backend("camera", NAME)


def test_a_backend_registered_here_runs_by_name_with_its_own_flag(flat_wall_backend, go2,
                                                                 exported_policy, tmp_path,
                                                                 endpoints, capsys):
    from hal.server.jetson.main import build_parser

    help_text = build_parser().format_help()
    assert NAME in help_text and "--wall-distance" in help_text
    obs_ep, cmd_ep = endpoints
    report_path = tmp_path / "run.json"
    start = tuple(float(v) for v in go2.to_hardware(go2.default_angles))
    with McuEmulator(McuEmulatorConfig(initial_position_rad=start)) as emulator:
        code = jetson_main([
            "--engine", str(exported_policy), "--action-dim", "12", "--obs-dim", "753",
            "--device", "cpu", "--control-rate", "50", "--duration", "3.5",
            "--camera", NAME, "--wall-distance", "1.75",
            "--motors", "serial", "--serial-port", emulator.port,
            "--observation-bind", obs_ep, "--command-bind", cmd_ep, "--estop-bind", "none",
            "--no-keyboard", "--report", str(report_path)])
    assert code == 0, capsys.readouterr().err
    assert BUILT == [FlatWallConfig(wall_distance_m=1.75)]  # built once, with the flag's value
    report = json.loads(report_path.read_text())
    assert report["camera"]["device"] == NAME and report["camera"]["wall_distance_m"] == 1.75
    assert report["camera"]["frames"] >= 30  # 30 fps for ~3 s, read by the loop
    assert report["counters"]["depth_frames"] >= 30
    assert report["cycles"] >= 100 and report["malformed_dropped"] == 0
    assert report["inference"]["counters"]["depth_steps"] >= 10
    assert report["motor_health"]["telemetry_frames"] > 0  # the serial bus's own counters
    assert report["safety"]["mode_final"] == "damping"
    # The effective configuration records the choice and the backend's own section.
    assert report["config"]["hardware"] == {"camera": NAME, "motors": "serial"}
    assert report["config"]["flat_wall"] == {"wall_distance_m": 1.75}
    assert report["config"]["serial"]["serial_port"] == emulator.port


def test_an_unregistered_camera_is_refused_by_the_parser_naming_the_valid_ones(capsys):
    with pytest.raises(SystemExit) as exited:
        jetson_main(["--camera", NAME])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"invalid choice: '{NAME}'" in err and "'zed', 'recorded', 'go2-sim', 'none'" in err


def test_the_jetson_server_runs_the_simulator_backend_by_name(go2, exported_policy, tmp_path,
                                                             endpoints, capsys):
    """The simulator is a motor backend like any other: ``--motors sim`` gives the Jetson
    server a simulated robot (joints, IMU, contacts and the depth camera of one world)."""
    pytest.importorskip("mujoco")
    obs_ep, cmd_ep = endpoints
    report_path = tmp_path / "run.json"
    code = jetson_main([
        "--engine", str(exported_policy), "--device", "cpu", "--control-rate", "50",
        "--duration", "2", "--camera", "none", "--motors", "sim",
        "--observation-bind", obs_ep, "--command-bind", cmd_ep, "--estop-bind", "none",
        "--no-keyboard", "--no-status", "--flight-recorder-s", "0",
        "--report", str(report_path)])
    assert code == 0, capsys.readouterr().err
    report = json.loads(report_path.read_text())
    assert report["config"]["hardware"] == {"camera": "none", "motors": "sim"}
    assert report["cycles"] >= 50 and report["counters"]["depth_frames"] > 0  # the sim's camera
    assert report["inference"]["counters"]["depth_steps"] > 0
    assert report["safety"]["mode_final"] == "damping"

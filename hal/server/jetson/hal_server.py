"""``JetsonHalServer``: the HAL server over the robot's real devices.

Devices are chosen by :class:`JetsonDevicesConfig` — each a backend module of :mod:`hal.jetson`:

============  ===============================================================================
camera        ``zed`` (ZED 2/2i/X depth, ZED IMU) · ``recorded`` (a ``.npz`` recording played at
              its original timing through the same grab-thread path) · ``go2-sim`` (the ZED's
              stand-in: ``krabby-go2-sim``'s depth camera over loopback, :mod:`hal.sim.depth_link`)
              · ``none``
motors        ``go2`` (Unitree Go2 low-level SDK: joints, IMU, foot forces) · ``serial`` (the
              documented serial protocol to joint microcontrollers; ``hal/jetson/SERIAL_PROTOCOL.md``)
============  ===============================================================================

The IMU comes from the Go2 when the motors are a Go2, else from the ZED (or the recording).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import zmq

from hal.robot import RobotConfig
from hal.server.base import HalDevices, HalServer, HalServerConfig

__all__ = ["JetsonDevicesConfig", "JetsonHalServer", "build_jetson_devices", "CAMERAS", "MOTORS"]

log = logging.getLogger(__name__)

CAMERAS = ("zed", "recorded", "go2-sim", "none")
MOTORS = ("go2", "serial")


@dataclass
class JetsonDevicesConfig:
    """Which backends drive the robot, and their settings."""

    camera: str = "zed"
    motors: str = "go2"
    recording: Path | None = None
    recording_loop: bool = False
    serial_port: str | None = None
    camera_endpoint: str | None = None  # camera "go2-sim": krabby-go2-sim's --camera-bind
    zed: "object | None" = None  # hal.jetson.zed_camera.ZedConfig; None = defaults
    go2: "object | None" = None  # hal.jetson.unitree_go2.UnitreeGo2Config; None = defaults
    dry_run: str | None = None  # None, "silent" or "damp" (hal.jetson.dry_run)
    dry_run_record: Path | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.camera not in CAMERAS:
            raise ValueError(f"camera {self.camera!r}: valid are {CAMERAS}")
        if self.motors not in MOTORS:
            raise ValueError(f"motors {self.motors!r}: valid are {MOTORS}")
        if self.camera == "go2-sim" and not self.camera_endpoint:
            raise ValueError("camera 'go2-sim' needs --camera-connect tcp://127.0.0.1:PORT (krabby-go2-sim "
                             "--camera-bind)")
        if self.camera == "go2-sim" and self.motors != "go2":
            raise ValueError("camera 'go2-sim' comes with krabby-go2-sim: use --motors go2")
        if self.camera == "recorded" and self.recording is None:
            raise ValueError("camera 'recorded' needs a recording file (--recording PATH)")
        if self.motors == "serial" and not self.serial_port:
            raise ValueError("motors 'serial' need a serial port (--serial-port /dev/ttyUSB0)")
        if self.motors == "serial" and self.camera == "none":
            raise ValueError("serial motors carry no IMU: use camera 'zed' or 'recorded' for one")
        if self.dry_run not in (None, "silent", "damp"):
            raise ValueError(f"dry_run {self.dry_run!r}: valid are None, 'silent', 'damp'")


def build_jetson_devices(robot: RobotConfig, config: JetsonDevicesConfig) -> HalDevices:
    """Construct (not connect) the devices ``config`` names."""
    camera = imu = contacts = None
    if config.camera == "zed":
        from hal.jetson.zed_camera import ZedConfig, ZedDepthCamera
        from hal.jetson.zed_imu import ZedImu

        camera = ZedDepthCamera(config.zed or ZedConfig())
        imu = ZedImu(camera.session)
    elif config.camera == "recorded":
        from hal.playback.devices import RecordedConfig, make_recorded_devices

        camera, imu = make_recorded_devices(config.recording, RecordedConfig(loop=config.recording_loop))
    elif config.camera == "go2-sim":
        from hal.sim.depth_link import LinkedDepthCamera

        camera = LinkedDepthCamera(config.camera_endpoint)
    if config.motors == "go2":
        from dataclasses import replace

        from hal.jetson.unitree_go2 import UnitreeGo2Config, make_go2_devices

        go2 = config.go2 or UnitreeGo2Config.from_robot(robot)
        if config.dry_run == "silent":
            # Nothing may reach the motors: leave Unitree's own controller in charge, publish no LowCmd.
            go2 = replace(go2, release_sport_mode=False, send_commands=False)
        joints, go2_imu, contacts = make_go2_devices(go2)
        imu = go2_imu  # the Go2's own IMU sits on the base: no mounting rotation to get wrong
    else:
        from hal.jetson.serial_bus import SerialBusConfig, SerialJointDriver

        joints = SerialJointDriver(SerialBusConfig.from_robot(robot, config.serial_port))
    if tuple(joints.joint_names) != robot.joint_names_hardware:
        raise ValueError(f"motor backend joints {list(joints.joint_names)} differ from robot "
                         f"{robot.name!r} hardware order {list(robot.joint_names_hardware)}")
    if config.dry_run is not None:
        from hal.jetson.dry_run import DryRunJointDriver

        joints = DryRunJointDriver(joints, config.dry_run, record_path=config.dry_run_record)
    return HalDevices(joints=joints, imu=imu, contacts=contacts, camera=camera)


class JetsonHalServer(HalServer):
    """The HAL server on the Jetson: ZED depth and IMU, joint encoders, motors.

    Args:
        robot: The robot definition.
        devices: Backend choice (:class:`JetsonDevicesConfig`), or ready :class:`HalDevices`.
        config: Loop and transport settings.
        safety: A ``hal.safety.SafetyLayer``; by default one fitted to the devices
            (:func:`hal.server.base.default_safety_layer`).
        context: ZMQ context shared with an in-process inference client.
    """

    def __init__(self, robot: RobotConfig, devices: JetsonDevicesConfig | HalDevices | None = None,
                 config: HalServerConfig | None = None, safety=None,
                 context: zmq.Context | None = None) -> None:
        if not isinstance(devices, HalDevices):
            devices = build_jetson_devices(robot, devices or JetsonDevicesConfig())
        super().__init__(robot, devices, config, safety, context)

"""The built-in backends, registered by kind and name (:mod:`hal.devices.registry`).

Loaded by the registry on its first query. Each registration names the backend's config
dataclass (its flags) and a factory that imports the backend's module when called, so registering
imports no SDK (pyzed, the Unitree SDK, mujoco).

============  ===============================================================================
camera        ``zed`` (ZED 2/2i/X depth, ZED IMU) · ``recorded`` (a ``.npz`` recording played at
              its original timing through the same grab-thread path) · ``go2-sim`` (the ZED's
              stand-in: ``krabby-go2-sim``'s depth camera over loopback, :mod:`hal.sim.depth_link`)
              · ``none``
motors        ``go2`` (Unitree Go2 low-level SDK: joints, IMU, foot forces) · ``serial`` (the
              documented serial protocol to joint microcontrollers; ``hal/backends/SERIAL_PROTOCOL.md``)
============  ===============================================================================
"""

from __future__ import annotations

import logging
from dataclasses import replace

from hal.backends.dry_run import DryRunSection
from hal.backends.serial_bus import SerialPortSection
from hal.backends.unitree_go2 import Go2MotorsSection
from hal.config.sections import Go2NetworkSection
from hal.devices.registry import DeviceParts, register_backend
from hal.jetson.zed_camera import ZedConfig
from hal.playback.devices import RecordedConfig
from hal.robot import RobotConfig
from hal.sim.depth_link import LinkedCameraSection
from hal.unitree_dds import NETWORK_HELP

__all__ = ["make_zed", "make_recorded", "make_go2_sim_camera", "make_no_camera", "make_go2",
           "make_serial"]

log = logging.getLogger(__name__)


# -- cameras ---------------------------------------------------------------------------------------

def make_zed(robot: RobotConfig, config: ZedConfig) -> DeviceParts:
    """The ZED's depth camera and its IMU, sharing one ``sl.Camera``."""
    from hal.jetson.zed_camera import ZedDepthCamera
    from hal.jetson.zed_imu import ZedImu

    camera = ZedDepthCamera(config)
    return DeviceParts(camera=camera, imu=ZedImu(camera.session))


def _check_recorded(config: RecordedConfig) -> None:
    if config.recording is None:
        raise ValueError("camera 'recorded' needs a recording file (--recording PATH)")


def make_recorded(robot: RobotConfig, config: RecordedConfig) -> DeviceParts:
    """A recording's depth and IMU, played on one clock."""
    from hal.playback.devices import make_recorded_devices

    _check_recorded(config)
    camera, imu = make_recorded_devices(config.recording, config)
    return DeviceParts(camera=camera, imu=imu)


def _check_linked(config: LinkedCameraSection) -> None:
    if not config.camera_connect:
        raise ValueError("camera 'go2-sim' needs --camera-connect tcp://127.0.0.1:PORT "
                         "(krabby-go2-sim --camera-bind)")


def make_go2_sim_camera(robot: RobotConfig, config: LinkedCameraSection) -> DeviceParts:
    """``krabby-go2-sim``'s depth camera over loopback."""
    from hal.sim.depth_link import LinkedDepthCamera

    _check_linked(config)
    return DeviceParts(camera=LinkedDepthCamera(config.camera_connect))


def make_no_camera(robot: RobotConfig, config: None) -> DeviceParts:
    """No camera (a blind policy, or a bench test of the motors)."""
    return DeviceParts()


register_backend("camera", "zed", make_zed, config=ZedConfig, provides=("camera", "imu"),
                 help="ZED 2/2i/X depth camera and its IMU (pyzed)")
register_backend("camera", "recorded", make_recorded, config=RecordedConfig,
                 provides=("camera", "imu"), check=_check_recorded,
                 help="a sensor recording (.npz) played at its original timing")
register_backend("camera", "go2-sim", make_go2_sim_camera, config=LinkedCameraSection,
                 provides=("camera",), requires={"motors": ("go2",)}, check=_check_linked,
                 help="krabby-go2-sim's depth camera over loopback (the ZED's stand-in)")
register_backend("camera", "none", make_no_camera, help="no camera")


# -- motors ----------------------------------------------------------------------------------------

def make_go2(robot: RobotConfig, config: Go2MotorsSection, network: Go2NetworkSection,
             dry_run: DryRunSection) -> DeviceParts:
    """The Go2's joints, IMU and foot contacts over one DDS session (refused without
    ``--network``)."""
    from hal.backends.unitree_go2 import UnitreeGo2Config, make_go2_devices

    if not network.network:
        raise ValueError(f"--motors go2 needs --network: {NETWORK_HELP}")
    go2 = UnitreeGo2Config.from_robot(robot, network_interface=network.network,
                                      domain_id=network.domain_id)
    if dry_run.mode == "silent":
        # Nothing may reach the motors: leave Unitree's own controller in charge, publish no LowCmd.
        go2 = replace(go2, release_sport_mode=False, send_commands=False)
    joints, imu, contacts = make_go2_devices(go2)
    # The Go2's own IMU sits on the base: no mounting rotation to get wrong.
    return DeviceParts(joints=joints, imu=imu, contacts=contacts)


def _check_serial(config: SerialPortSection) -> None:
    if not config.serial_port:
        raise ValueError("motors 'serial' need a serial port (--serial-port /dev/ttyUSB0)")


def make_serial(robot: RobotConfig, config: SerialPortSection) -> DeviceParts:
    """The joints behind a motor MCU on a serial line (they carry no IMU)."""
    from hal.backends.serial_bus import SerialJointDriver

    return DeviceParts(joints=SerialJointDriver(config.bus_config(robot)))


register_backend("motors", "go2", make_go2, config=Go2MotorsSection,
                 uses=(Go2NetworkSection, DryRunSection), provides=("joints", "imu", "contacts"),
                 help="Unitree Go2 low-level SDK over DDS: joints, IMU, foot forces")
register_backend("motors", "serial", make_serial, config=SerialPortSection, provides=("joints",),
                 check=_check_serial,
                 help="joint microcontrollers on a serial line (hal/backends/SERIAL_PROTOCOL.md)")

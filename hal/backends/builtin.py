"""The built-in backends, registered by kind and name (:mod:`hal.devices.registry`).

Loaded by the registry on its first query. Each registration names the backend's config
dataclass (its flags) and a factory that imports the backend's module when called, so registering
imports no SDK (pyzed, the Unitree SDK, mujoco).

==============  =============================================================================
camera          ``zed`` (ZED 2/2i/X depth, and the ZED's IMU) · ``recorded`` (a ``.npz``
                recording's depth and IMU, played at its original timing through the same
                grab-thread path) · ``go2-sim`` (the ZED's stand-in: ``krabby-go2-sim``'s depth
                camera over loopback, :mod:`hal.sim.depth_link`) · ``none``
motors          ``go2`` (Unitree Go2 low-level SDK: joints, and the Go2's IMU and foot forces) ·
                ``serial`` (the documented serial protocol to joint microcontrollers;
                ``hal/backends/SERIAL_PROTOCOL.md``) · ``sim`` (the MuJoCo simulator: joints,
                IMU, foot contacts, depth camera and height scanner, views of one world)
imu             none standalone: every IMU comes with a camera (``zed``, ``recorded``) or motors
                (``go2``, ``sim``), as their ``provides`` say
height_scanner  none standalone: only the simulator measures the terrain (``sim``); on hardware
                the policy sees flat ground
operator        ``keyboard`` (the terminal's keys; ``--no-keyboard``) · ``gamepad`` (a Linux
                gamepad; ``--gamepad DEVICE``) · ``network`` (``krabby-teleop``'s endpoint;
                ``--teleop-bind``) · ``go2-remote`` (the Go2's wireless remote, riding on the
                ``go2`` motors' session; ``--no-go2-remote``)
==============  =============================================================================

Every operator source whose config enables it joins the operator hub
(:func:`hal.server.operator_setup.build_operator_hub`).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from hal.backends.dry_run import DryRunSection
from hal.backends.serial_bus import SerialPortSection
from hal.config.sections import NETWORK_HELP, Go2NetworkSection
from hal.devices.registry import DeviceParts, register_backend
from hal.jetson.zed_camera import ZedConfig
from hal.operator.base import OperatorContext, OperatorSource
from hal.operator.gamepad import GamepadSection
from hal.operator.go2_remote import Go2RemoteSection
from hal.operator.keyboard import KeyboardSection
from hal.operator.network import TeleopSection
from hal.playback.devices import RecordedConfig
from hal.robot import RobotConfig
from hal.sim.config import MujocoWorldConfig
from hal.sim.depth_link import LinkedCameraSection

__all__ = ["make_zed", "make_recorded", "make_go2_sim_camera", "make_no_camera", "make_go2",
           "make_serial", "make_sim", "make_keyboard", "make_gamepad", "make_network_operator",
           "make_go2_remote"]

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

def make_go2(robot: RobotConfig, config: None, network: Go2NetworkSection,
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


register_backend("motors", "go2", make_go2, uses=(Go2NetworkSection, DryRunSection),
                 provides=("joints", "imu", "contacts"),
                 help="Unitree Go2 low-level SDK over DDS: joints, IMU, foot forces")
register_backend("motors", "serial", make_serial, config=SerialPortSection, provides=("joints",),
                 check=_check_serial,
                 help="joint microcontrollers on a serial line (hal/backends/SERIAL_PROTOCOL.md)")


def make_sim(robot: RobotConfig, config: MujocoWorldConfig) -> DeviceParts:
    """A MuJoCo world for ``robot`` (standing, settled) and every device as a view of it, on the
    world's simulated clock (:func:`hal.sim.make_sim_devices`, the simulator's own constructor).
    ``krabby-hal-server-sim`` computes ``config`` (scene, seed, sensor rates, the episode's draw);
    elsewhere it runs with the defaults."""
    import hal.sim  # the module attribute, read now: a test may stand in for the constructor

    devices = hal.sim.make_sim_devices(robot, config)
    return DeviceParts(joints=devices.joints, imu=devices.imu, contacts=devices.contacts,
                       camera=devices.camera, height_scanner=devices.height_scanner,
                       world=devices.world, clock_ns=devices.clock_ns)


register_backend("motors", "sim", make_sim, config=MujocoWorldConfig,
                 provides=("joints", "imu", "contacts", "camera", "height_scanner"),
                 help="the MuJoCo simulator: joints, IMU, foot contacts, depth camera and height "
                      "scanner of one world (krabby-hal-server-sim)")


# -- operator sources ------------------------------------------------------------------------------

def make_keyboard(context: OperatorContext, config: KeyboardSection) -> OperatorSource | None:
    """The terminal's keys, where stdin is a terminal this process may read."""
    from hal.operator.keyboard import KeyboardSource

    return KeyboardSource() if config.enabled and KeyboardSource.usable() else None


def make_gamepad(context: OperatorContext, config: GamepadSection) -> OperatorSource | None:
    """A Linux gamepad (``--gamepad DEVICE``); its full stick is the trained top speed."""
    if not config.device:
        return None
    from hal.operator.gamepad import GamepadDecoder, GamepadSource

    return GamepadSource(config.device, GamepadDecoder(context.speed_range_m_s[1],
                                                       context.max_yaw_rate_rad_s))


def make_network_operator(context: OperatorContext,
                          config: TeleopSection) -> OperatorSource | None:
    """``krabby-teleop``'s endpoint (``--teleop-bind``): CURVE with operator keys on a network
    endpoint (the server checked at start-up that it has keys or ``--insecure``)."""
    endpoint = config.endpoint
    if endpoint is None:
        return None
    from hal.auth import is_network
    from hal.operator.network import NetworkOperatorSource

    server = context.server
    secure = None
    if is_network(endpoint):
        secure = lambda socket: server.secure_socket(socket, "operator")  # noqa: E731
        if server.keys is not None:
            log.info("  %-12s %s (CURVE: operator keys, %d allowed)", "operator", endpoint,
                     len(server.keys.authorized))
        else:
            log.warning("  %-12s %s UNAUTHENTICATED (--insecure): ANYONE WHO REACHES IT CAN "
                        "DRIVE, START AND RESET THE ROBOT", "operator", endpoint)
    return NetworkOperatorSource(endpoint, server.context, secure=secure)


def make_go2_remote(context: OperatorContext, config: Go2RemoteSection) -> OperatorSource | None:
    """The Go2's wireless remote, when the motors carry it (its bytes ride on the Go2's motor
    session, :class:`~hal.operator.go2_remote.CarriesGo2Remote`), else None."""
    if not config.enabled:
        return None
    from hal.devices.protocols import unwrap
    from hal.operator.go2_remote import CarriesGo2Remote, Go2RemoteDecoder, Go2RemoteSource

    driver = unwrap(context.server.devices.joints)  # a dry run wraps it
    if not isinstance(driver, CarriesGo2Remote):
        return None
    return Go2RemoteSource(driver.wireless_remote, Go2RemoteDecoder(
        context.speed_range_m_s[1], context.max_yaw_rate_rad_s))


register_backend("operator", "keyboard", make_keyboard, config=KeyboardSection,
                 help="the terminal's keys (where stdin is a terminal)")
register_backend("operator", "gamepad", make_gamepad, config=GamepadSection,
                 help="a Linux gamepad through evdev, with a dead-man button")
register_backend("operator", "network", make_network_operator, config=TeleopSection,
                 help="krabby-teleop's versioned, validated network endpoint")
register_backend("operator", "go2-remote", make_go2_remote, config=Go2RemoteSection,
                 requires={"motors": ("go2",)},
                 help="the Go2's wireless remote, decoded from the motors' LowState")

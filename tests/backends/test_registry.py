"""The backend registry: names by kind, errors that list the valid names, the checks made before
anything is built, and registration that imports no SDK."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from typing import ClassVar

import pytest

from hal.backends.dry_run import DryRunJointDriver, DryRunSection
from hal.backends.serial_bus import SerialJointDriver, SerialPortSection
from hal.config import setting
from hal.devices.protocols import ReportsHealth, WrapsDevice, unwrap
from hal.devices.registry import (
    KINDS,
    DeviceParts,
    UnknownBackendError,
    backend_names,
    backend_sections,
    get_backend,
    providers,
    register_backend,
    unregister_backend,
)
from hal.robot import load_robot
from hal.server.jetson import JetsonDevicesConfig, build_jetson_devices


@pytest.fixture(scope="module")
def go2():
    return load_robot("go2")


def test_the_built_in_backends_are_registered_by_kind():
    assert backend_names("camera") == ("zed", "recorded", "go2-sim", "none")
    assert backend_names("motors") == ("go2", "serial", "sim")
    assert backend_names("operator") == ("keyboard", "gamepad", "network", "go2-remote")
    assert set(KINDS) == {"camera", "motors", "imu", "height_scanner", "operator"}
    zed = get_backend("camera", "zed")
    assert zed.config.section == "zed" and set(zed.provides) == {"camera", "imu"}
    assert get_backend("motors", "go2").uses[1] is DryRunSection
    # The IMUs and the height scanner come with a camera or motors; none is standalone.
    assert providers("imu") == ("zed", "recorded", "go2", "sim")
    assert providers("height_scanner") == ("sim",)
    assert backend_names("imu") == backend_names("height_scanner") == ()
    assert set(get_backend("motors", "sim").provides) == {"joints", "imu", "contacts", "camera",
                                                          "height_scanner"}


def test_an_unknown_name_or_kind_is_refused_with_the_valid_ones():
    with pytest.raises(UnknownBackendError, match=r"camera backend 'kinect' is not registered: "
                                                  r"valid are \['zed', 'recorded', 'go2-sim', 'none'\]"):
        get_backend("camera", "kinect")
    with pytest.raises(UnknownBackendError, match=r"backend kind 'lidar': valid are \['camera'"):
        backend_names("lidar")
    with pytest.raises(ValueError, match=r"motors backend 'can' is not registered: valid are "
                                         r"\['go2', 'serial', 'sim'\]"):
        JetsonDevicesConfig(motors="can")


def test_a_registration_is_checked_and_can_be_undone():
    def factory(robot, config):
        return DeviceParts()

    with pytest.raises(ValueError, match="already registered"):
        register_backend("camera", "zed", factory)
    with pytest.raises(ValueError, match=r"provides \['lidar'\]: valid parts are"):
        register_backend("camera", "x-bad", factory, provides=("lidar",))
    with pytest.raises(UnknownBackendError, match="valid are"):
        register_backend("camera", "x-bad", factory, requires={"gpu": ("a",)})
    register_backend("imu", "x-test-imu", factory, provides=("imu",))
    try:
        assert "x-test-imu" in backend_names("imu")
    finally:
        unregister_backend("imu", "x-test-imu")
    assert "x-test-imu" not in backend_names("imu")
    with pytest.raises(UnknownBackendError):
        unregister_backend("imu", "x-test-imu")


def test_a_backend_config_dataclass_brings_its_flags_to_the_parser():
    @dataclass(frozen=True)
    class ThermalConfig:
        section: ClassVar[str] = "x_thermal"
        gain_db: float = setting(3.0, flag="--thermal-gain", help="sensor gain, dB")

    register_backend("camera", "x-thermal", lambda robot, config: DeviceParts(),
                     config=ThermalConfig, provides=("camera",))
    try:
        assert ThermalConfig in backend_sections("camera")
        from hal.server.jetson.hardware import hardware_parts

        assert ("x_thermal", ThermalConfig) in [(n, s) for n, s, _ in hardware_parts()]
    finally:
        unregister_backend("camera", "x-thermal")
    assert ThermalConfig not in backend_sections("camera")


@pytest.mark.parametrize("choice, sections, message", [
    ({"camera": "recorded", "motors": "go2"}, (), r"needs a recording file \(--recording PATH\)"),
    ({"camera": "zed", "motors": "serial"}, (), r"need a serial port \(--serial-port"),
    ({"camera": "none", "motors": "serial"}, (SerialPortSection(serial_port="/dev/null"),),
     r"motors 'serial' carry no IMU and camera 'none' has none"),
    ({"camera": "go2-sim", "motors": "serial"}, (SerialPortSection(serial_port="/dev/null"),),
     r"camera 'go2-sim' needs --camera-connect"),
])
def test_a_choice_that_cannot_run_is_refused_before_anything_is_built(go2, choice, sections,
                                                                      message):
    config = JetsonDevicesConfig(**choice, backend_configs=sections)
    with pytest.raises(ValueError, match=message):
        build_jetson_devices(go2, config)


def test_go2_sim_camera_needs_the_go2_motors(go2):
    from hal.sim.depth_link import LinkedCameraSection

    config = JetsonDevicesConfig(camera="go2-sim", motors="serial", backend_configs=(
        LinkedCameraSection(camera_connect="tcp://127.0.0.1:5999"),
        SerialPortSection(serial_port="/dev/null")))
    with pytest.raises(ValueError, match=r"camera 'go2-sim' only works with --motors go2, not "
                                         r"'serial'"):
        config.check()


def test_the_go2_motors_need_a_network(go2):
    with pytest.raises(ValueError, match="--motors go2 needs --network"):
        build_jetson_devices(go2, JetsonDevicesConfig(camera="none", motors="go2"))


def test_the_dry_run_wraps_the_serial_bus_and_says_what_it_wraps(go2):
    from pathlib import Path

    recording = Path(__file__).resolve().parents[1] / "data" / "sim_recording.npz"
    from hal.playback.devices import RecordedConfig

    devices = build_jetson_devices(go2, JetsonDevicesConfig(
        camera="recorded", motors="serial", backend_configs=(
            RecordedConfig(recording=recording), SerialPortSection(serial_port="/dev/null"),
            DryRunSection(dry_run=True))))
    assert isinstance(devices.joints, DryRunJointDriver) and devices.joints.mode == "silent"
    assert isinstance(devices.joints, WrapsDevice) and not isinstance(devices.joints, ReportsHealth)
    bus = unwrap(devices.joints)
    assert isinstance(bus, SerialJointDriver) and isinstance(bus, ReportsHealth)
    assert bus.config.port == "/dev/null" and bus.config.joint_names == go2.joint_names_hardware
    assert devices.camera is not None and devices.imu is not None  # from the recording


def test_dry_run_flags_are_checked():
    assert DryRunSection().mode is None
    assert DryRunSection(dry_run=True, dry_run_damp=True).mode == "damp"
    with pytest.raises(ValueError, match="--dry-run-record needs --dry-run or --dry-run-damp"):
        DryRunSection(dry_run_record="x.npz")


def test_registering_imports_no_sdk():
    code = ("import sys\nfrom hal.devices.registry import backend_names\n"
            "from hal.server.jetson.hardware import hardware_parts\n"
            "names = backend_names('camera') + backend_names('motors')\nhardware_parts()\n"
            "heavy = [m for m in ('pyzed', 'unitree_sdk2py', 'mujoco', 'serial', 'cyclonedds') "
            "if m in sys.modules]\nassert not heavy, heavy\nprint(len(names))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "7"


def _actions(parser) -> dict[str, tuple]:
    return {flag: (action.dest, action.help) for action in parser._actions
            for flag in action.option_strings}


def test_the_doctor_and_the_jetson_server_share_the_backends_flags(capsys):
    from hal.server.jetson.main import build_parser as jetson_parser
    from hal.tools.doctor import build_parser as doctor_parser
    from hal.tools.doctor import main as doctor_main

    jetson, doctor = _actions(jetson_parser()), _actions(doctor_parser())
    for flag in ("--zed-resolution", "--zed-fps", "--zed-depth-mode", "--recording",
                 "--serial-port", "--baudrate", "--robot"):
        assert jetson[flag] == doctor[flag], flag  # one declaration: same setting, same help
    assert "(default HD720)" in doctor["--zed-resolution"][1]
    assert "(default 60)" in doctor["--zed-fps"][1]
    with pytest.raises(SystemExit) as exited:
        doctor_main(["--camera", "none", "--zed-fps", "45"])
    assert exited.value.code == 2
    assert "ZedConfig.fps 45 is not a ZED frame rate; valid: (15, 30, 60, 100, 120)" in \
        capsys.readouterr().err


def test_a_config_file_chooses_the_backends_and_holds_their_settings(tmp_path):
    from hal.config import parse_config
    from hal.playback.devices import RecordedConfig
    from hal.server.jetson.hardware import devices_config_of
    from hal.server.jetson.main import build_parser

    run_toml = tmp_path / "run.toml"
    run_toml.write_text('[hardware]\ncamera = "recorded"\nmotors = "serial"\n'
                        '[recorded]\nrecording = "rec.npz"\nloop = true\n'
                        '[serial]\nserial_port = "/dev/ttyTHS1"\n[dry_run]\ndry_run_damp = true\n')
    parser = build_parser()
    config = parse_config(parser.config_root, ["--config", str(run_toml), "--serial-port",
                                               "/dev/ttyUSB1"], parser)
    devices = devices_config_of(config)
    assert (devices.camera, devices.motors) == ("recorded", "serial")
    recorded = devices.config_of(RecordedConfig)
    assert recorded.recording.name == "rec.npz" and recorded.loop
    assert devices.config_of(SerialPortSection).serial_port == "/dev/ttyUSB1"  # the flag wins
    assert devices.dry_run.mode == "damp"
    run_toml.write_text('[hardware]\ncamera = "kinect"\n')
    from hal.config import ConfigError

    with pytest.raises(ConfigError, match=r"camera = 'kinect': valid are \['zed', 'recorded'"):
        parse_config(parser.config_root, ["--config", str(run_toml)], parser)


def test_an_operator_source_needs_a_config_that_enables_it():
    with pytest.raises(ValueError, match="operator backend 'x-op' needs a config dataclass"):
        register_backend("operator", "x-op", lambda context, config: None)
    assert "x-op" not in backend_names("operator")


def test_the_simulator_is_a_motor_backend_giving_every_part_of_one_world(go2):
    """Composed as the Jetson server composes any backend (``--motors sim --camera none``), and
    with the world a run computed, as ``krabby-hal-server-sim`` composes it."""
    pytest.importorskip("mujoco")
    from hal.devices.registry import compose_devices
    from hal.sim import MujocoWorldConfig

    devices = build_jetson_devices(go2, JetsonDevicesConfig(camera="none", motors="sim"))
    try:
        world = devices.world
        assert world is not None and devices.clock_ns == world.now_ns  # the simulated clock
        assert all(part.world is world for part in (devices.joints, devices.imu, devices.contacts,
                                                   devices.camera))
        assert devices.height_scanner is None  # its points are the policy's: none by default
    finally:
        devices.close()
    points = ((0.3, 0.0), (0.3, 0.1))
    world_config = MujocoWorldConfig(camera_fps=0, settle_s=0.1, height_scan_points_xy=points)
    devices = compose_devices(go2, {"motors": get_backend("motors", "sim")},
                              lambda section: world_config if section is MujocoWorldConfig
                              else section())
    try:
        assert devices.camera is None  # camera_fps 0: no camera
        assert devices.height_scanner.world is devices.world
        assert devices.world.config.height_scan_points_xy == points
    finally:
        devices.close()


def test_the_go2_remote_joins_only_where_the_motors_carry_it(go2):
    """The registered ``go2-remote`` source rides on the Go2 motors' session (through a dry run
    too); on other motors, or with ``--no-go2-remote``, it does not join the hub."""
    from types import SimpleNamespace

    from hal.backends.unitree_go2 import UnitreeGo2Config, make_go2_devices
    from hal.devices.aggregate import HalDevices
    from hal.operator.base import OperatorContext
    from hal.operator.go2_remote import Go2RemoteSection, Go2RemoteSource

    joints, imu, _ = make_go2_devices(UnitreeGo2Config.from_robot(go2))  # not connected
    make = get_backend("operator", "go2-remote").factory

    def context(driver):
        server = SimpleNamespace(devices=HalDevices(joints=driver, imu=imu))
        return OperatorContext(server=server, speed_range_m_s=(0.0, 1.2), max_yaw_rate_rad_s=0.8)

    source = make(context(DryRunJointDriver(joints, "silent")), Go2RemoteSection())
    assert isinstance(source, Go2RemoteSource)
    assert (source.decoder.max_speed_m_s, source.decoder.max_yaw_rate_rad_s) == (1.2, 0.8)
    assert make(context(joints), Go2RemoteSection(enabled=False)) is None
    bus = SerialJointDriver(SerialPortSection(serial_port="/dev/null").bus_config(go2))
    assert make(context(bus), Go2RemoteSection()) is None
    assert get_backend("operator", "go2-remote").requires == {"motors": ("go2",)}

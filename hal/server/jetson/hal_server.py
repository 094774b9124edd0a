"""``JetsonHalServer``: the HAL server over the robot's real devices.

Devices are chosen by :class:`JetsonDevicesConfig`: a camera and a motor backend by their
registered names (:mod:`hal.devices.registry`; the built-ins are listed in
:mod:`hal.backends.builtin`), each built from its own config dataclass. The IMU comes from the
motors when they have one (the Go2's sits on the base), else from the camera (the ZED's, or the
recording's).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

import zmq

from hal.backends.dry_run import DryRunSection
from hal.config.fields import setting
from hal.devices.registry import Backend, DeviceParts, choices, get_backend
from hal.robot import RobotConfig
from hal.server.base import HalDevices, HalServer, HalServerConfig

__all__ = ["JetsonDevicesConfig", "JetsonHalServer", "build_jetson_devices"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JetsonDevicesConfig:
    """Which backends drive the robot, and their settings.

    Attributes:
        camera: A registered camera backend (``zed``, ``recorded``, ``go2-sim``, ``none``, ...).
        motors: A registered motor backend (``go2``, ``serial``, ...).
        backend_configs: The backends' config dataclasses (and the sections they use, such as
            the Go2's network and the dry run), one instance per type; a backend whose config is
            missing here runs with its defaults.
    """

    section: ClassVar[str] = "hardware"

    camera: str = setting("zed", choices=choices("camera"),
                          help="the depth camera backend (registered: hal.devices.registry)")
    motors: str = setting("go2", choices=choices("motors"),
                          help="the motor backend (registered: hal.devices.registry)")
    backend_configs: tuple[Any, ...] = field(default=())

    def __post_init__(self) -> None:
        get_backend("camera", self.camera)  # an unknown name is refused, naming the valid ones
        get_backend("motors", self.motors)
        object.__setattr__(self, "backend_configs", tuple(self.backend_configs))
        types = [type(c) for c in self.backend_configs]
        doubled = sorted({t.__name__ for t in types if types.count(t) > 1})
        if doubled:
            raise ValueError(f"JetsonDevicesConfig.backend_configs holds {doubled} more than once")

    def config_of(self, section: type) -> Any:
        """The configured instance of ``section``, else its defaults."""
        for config in self.backend_configs:
            if type(config) is section:
                return config
        return section()

    @property
    def dry_run(self) -> DryRunSection:
        return self.config_of(DryRunSection)

    def chosen(self) -> dict[str, Backend]:
        """The chosen backends by kind."""
        return {"camera": get_backend("camera", self.camera),
                "motors": get_backend("motors", self.motors)}

    def check(self) -> None:
        """Refuse a choice that cannot run, before anything is built (ValueError naming the
        flag): a backend's own check, a backend that needs another, a robot without an IMU."""
        chosen = self.chosen()
        for kind, backend in chosen.items():
            if backend.check is not None and backend.config is not None:
                backend.check(self.config_of(backend.config))
            for other_kind, names in backend.requires.items():
                other = chosen.get(other_kind)
                if other is not None and other.name not in names:
                    raise ValueError(f"{kind} {backend.name!r} only works with --{other_kind} "
                                     f"{' or '.join(names)}, not {other.name!r}")
        if not any("imu" in b.provides for b in chosen.values()):
            raise ValueError(f"motors {self.motors!r} carry no IMU and camera {self.camera!r} "
                             "has none: use a camera that has one (zed, recorded)")

    def build(self, kind: str, robot: RobotConfig) -> DeviceParts:
        """Build the chosen ``kind`` backend for ``robot`` (unconnected)."""
        backend = self.chosen()[kind]
        args = [self.config_of(backend.config) if backend.config is not None else None]
        args += [self.config_of(section) for section in backend.uses]
        parts = backend.factory(robot, *args)
        if not isinstance(parts, DeviceParts):
            raise TypeError(f"{kind} backend {backend.name!r} ({backend.factory.__module__}) "
                            f"returned {type(parts).__name__}, not DeviceParts")
        return parts


def build_jetson_devices(robot: RobotConfig, config: JetsonDevicesConfig) -> HalDevices:
    """Construct (not connect) the devices ``config`` names.

    Raises:
        ValueError: a choice that cannot run (see :meth:`JetsonDevicesConfig.check`), or motors
            whose joints are not the robot's.
    """
    config.check()
    camera = config.build("camera", robot)
    motors = config.build("motors", robot)
    joints = motors.joints
    if joints is None:
        raise ValueError(f"motors {config.motors!r} built no joint driver")
    if tuple(joints.joint_names) != robot.joint_names_hardware:
        raise ValueError(f"motor backend joints {list(joints.joint_names)} differ from robot "
                         f"{robot.name!r} hardware order {list(robot.joint_names_hardware)}")
    dry_run = config.dry_run
    if dry_run.mode is not None:
        from hal.backends.dry_run import DryRunJointDriver

        joints = DryRunJointDriver(joints, dry_run.mode, record_path=dry_run.dry_run_record)
    return HalDevices(joints=joints, imu=motors.imu or camera.imu,
                      contacts=motors.contacts or camera.contacts, camera=camera.camera,
                      height_scanner=camera.height_scanner or motors.height_scanner)


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

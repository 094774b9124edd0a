"""``JetsonHalServer``: the HAL server over the robot's real devices.

Devices are chosen by :class:`JetsonDevicesConfig`: a camera and a motor backend by their
registered names (:mod:`hal.devices.registry`; the built-ins are listed in
:mod:`hal.backends.builtin`), each built from its own config dataclass. The IMU comes from the
motors when they have one (the Go2's sits on the base, the simulator's in its world), else from
the camera (the ZED's, or the recording's); the devices are composed as every server composes them
(:func:`hal.devices.registry.compose_devices`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

import zmq

from hal.backends.dry_run import DryRunSection
from hal.config.fields import setting
from hal.devices.registry import (
    Backend,
    DeviceParts,
    build_backend,
    choices,
    compose_devices,
    get_backend,
    providers,
)
from hal.robot import RobotConfig
from hal.server.base import HalDevices, HalServer, HalServerConfig

if TYPE_CHECKING:
    from hal.safety import SafetyLayer

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
                             "has none: use a camera that has one "
                             f"({', '.join(providers('imu', 'camera'))})")

    def build(self, kind: str, robot: RobotConfig) -> DeviceParts:
        """Build the chosen ``kind`` backend for ``robot`` (unconnected)."""
        return build_backend(self.chosen()[kind], robot, self.config_of)


def build_jetson_devices(robot: RobotConfig, config: JetsonDevicesConfig) -> HalDevices:
    """Construct (not connect) the devices ``config`` names.

    Raises:
        ValueError: a choice that cannot run (see :meth:`JetsonDevicesConfig.check`), or motors
            whose joints are not the robot's.
    """
    config.check()
    chosen = config.chosen()
    # The motors first: their IMU (the Go2's sits on the base) before the camera's.
    devices = compose_devices(robot, {"motors": chosen["motors"], "camera": chosen["camera"]},
                              config.config_of)
    dry_run = config.dry_run
    if dry_run.mode is not None:
        from hal.backends.dry_run import DryRunJointDriver

        devices = replace(devices, joints=DryRunJointDriver(
            devices.joints, dry_run.mode, record_path=dry_run.dry_run_record))
    return devices


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
                 config: HalServerConfig | None = None, safety: SafetyLayer | None = None,
                 context: zmq.Context | None = None) -> None:
        if not isinstance(devices, HalDevices):
            devices = build_jetson_devices(robot, devices or JetsonDevicesConfig())
        super().__init__(robot, devices, config, safety, context)

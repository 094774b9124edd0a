"""The Jetson server's hardware settings and run-report sections, from the backend registry.

The run configuration of ``krabby-hal-server-jetson`` is its appliance configuration plus the
parts here (:func:`jetson_config_type`): the backend choice (``--camera``, ``--motors``, whose
choices are read from :mod:`hal.devices.registry` when the parser is built), the dry run, and one
part per config dataclass the registered camera and motor backends declare (``--zed-*``,
``--recording``, ``--serial-port``, ``--network``, ...), then the operator sources' parts
(:func:`hal.server.backend_parts.operator_parts`: ``--no-keyboard``, ``--gamepad``,
``--teleop-bind``, ``--no-go2-remote``, ...). A backend registered before the parser is built
brings its own flags.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hal.backends.dry_run import DryRunJointDriver, DryRunSection
from hal.config import part
from hal.devices.base import DepthCamera, JointDriver
from hal.devices.protocols import ReportsHealth, ReportsStatus, unwrap
from hal.devices.registry import backend_names, backend_sections
from hal.server.backend_parts import extend_config, operator_parts, section_parts
from hal.server.jetson.hal_server import JetsonDevicesConfig

__all__ = ["HARDWARE_KINDS", "hardware_parts", "jetson_config_type", "devices_config_of",
           "motor_report", "camera_report"]

HARDWARE_KINDS = ("camera", "motors")
"""The backend kinds the Jetson server chooses among."""


def hardware_parts() -> list[tuple[str, type, dataclasses.Field]]:
    """(name, section, field) of the hardware parts, for :func:`dataclasses.make_dataclass`:
    the backend choice, the dry run, then each registered backend's sections (named by their
    ``section``), as registered now."""
    parts: list[tuple[str, type, Any]] = [
        ("hardware", JetsonDevicesConfig, part(JetsonDevicesConfig)),
        ("dry_run", DryRunSection, part(DryRunSection))]
    taken = {"hardware", "dry_run"}
    return parts + section_parts((s for s in backend_sections(*HARDWARE_KINDS)
                                  if s is not DryRunSection), taken)


def jetson_config_type(base: type) -> type:
    """The Jetson command's run configuration: ``base`` (the appliance's, a frozen dataclass)
    extended with the hardware parts and the operator sources' parts (those any registered motors
    carry), built now (so it has every backend registered now)."""
    hardware = hardware_parts()
    taken = {f.name for f in dataclasses.fields(base)} | {name for name, _, _ in hardware}
    return extend_config(base, "JetsonRunConfig",
                         hardware + operator_parts(backend_names("motors"), taken))


def devices_config_of(config: Any) -> JetsonDevicesConfig:
    """The :class:`JetsonDevicesConfig` of a run configuration built by
    :func:`jetson_config_type`: its choice with every backend section attached."""
    sections = tuple(getattr(config, name) for name, _, _ in hardware_parts()
                     if name != "hardware")
    return dataclasses.replace(config.hardware, backend_configs=sections)


def motor_report(joints: JointDriver) -> dict[str, Any]:
    """The run report's view of the motors: the dry run's summary, and the driver's health
    (Go2: temperatures and packets lost since connect; serial bus: frame counters)."""
    out: dict[str, Any] = {}
    if isinstance(joints, DryRunJointDriver):
        out["dry_run"] = joints.summary()
    driver = unwrap(joints)
    if isinstance(driver, ReportsHealth) and driver.is_connected:
        try:
            out["motor_health"] = driver.health().to_dict()
        except Exception as exc:  # noqa: BLE001 - a report line, never a failure of the run
            out["motor_health"] = {"error": str(exc)}
    return out


def camera_report(camera: DepthCamera | None) -> dict[str, Any]:
    """The run report's camera section: the backend's own ``report()`` (ZED: grab health, the
    warning ``open`` returned, warning codes by name and ``corrupted_frames`` dropped)."""
    if not isinstance(camera, ReportsStatus):
        return {}
    try:
        return {"camera": camera.report()}
    except Exception as exc:  # noqa: BLE001 - a report line, never a failure of the run
        return {"camera": {"error": str(exc)}}


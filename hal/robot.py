"""Robot definitions: TOML data files loaded into typed, validated config objects.

A robot definition says everything the runtime needs to know about a robot that the policy does
not: joint names in hardware order and the order the policy was trained with, default angles, PD
gains, joint limits, action scale and clip, feet, control rate and the depth camera model the
policy was trained with. The shipped definitions (``go2``, ``a1``) live in ``hal/robots``;
``load_robot`` accepts one of those names or a path to a TOML file of the same form.

Every array on :class:`RobotConfig` is in **policy order** unless its name says ``hardware``;
:attr:`RobotConfig.policy_to_hardware` and :attr:`RobotConfig.hardware_to_policy` map between them::

    hardware_values = policy_values[robot.policy_to_hardware]
    policy_values = hardware_values[robot.hardware_to_policy]
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from hal.toml_compat import tomllib

__all__ = [
    "RobotDefinitionError",
    "DEPTH_TYPES",
    "DepthCameraModel",
    "RobotConfig",
    "available_robots",
    "load_robot",
]

log = logging.getLogger(__name__)


class RobotDefinitionError(ValueError):
    """A robot definition file is missing a field or holds a bad value."""


DEPTH_TYPES = ("z_depth", "distance_to_camera")
"""What a training camera's pixel holds (see :attr:`DepthCameraModel.depth_type`)."""


@dataclass(frozen=True)
class DepthCameraModel:
    """The depth camera the policy was trained with (docs/architecture.md#the-depth-image)."""

    width: int = 106
    height: int = 60
    horizontal_fov_deg: float = 87.0
    near_m: float = 0.0
    far_m: float = 2.0
    update_interval_steps: int = 5
    policy_height: int = 58
    policy_width: int = 87
    # Mounting on the base, used by the simulator: position (x, y, z) in the base frame and the
    # downward pitch of the optical axis.
    position_m: tuple[float, float, float] = (0.33, 0.0, 0.08)
    pitch_deg: float = 48.0
    # What a pixel holds in training: "z_depth" (along the optical axis, what a ZED reports) or
    # "distance_to_camera" (along the pixel's ray, Isaac Lab's default for its ray-cast camera).
    depth_type: str = "z_depth"

    def __post_init__(self) -> None:
        if self.depth_type not in DEPTH_TYPES:
            raise RobotDefinitionError(f"depth_camera.depth_type {self.depth_type!r}: valid are "
                                       f"{', '.join(DEPTH_TYPES)}")

    @property
    def vertical_fov_deg(self) -> float:
        """Vertical FOV of a pinhole camera with square pixels and the horizontal FOV above."""
        half_h = math.tan(math.radians(self.horizontal_fov_deg) / 2.0)
        return math.degrees(2.0 * math.atan(half_h * self.height / self.width))


@dataclass(frozen=True)
class RobotConfig:
    """A validated robot definition. Arrays are read-only and in policy order unless named otherwise."""

    name: str
    source: str
    joint_names_hardware: tuple[str, ...]
    joint_names_policy: tuple[str, ...]
    foot_names: tuple[str, ...]
    default_angles: np.ndarray
    kp: np.ndarray
    kd: np.ndarray
    position_lower: np.ndarray
    position_upper: np.ndarray
    velocity_limit: np.ndarray
    torque_limit: np.ndarray
    action_scale: float
    action_clip: float
    policy_rate_hz: float
    contact_force_threshold_n: float
    depth_camera: DepthCameraModel = field(default_factory=DepthCameraModel)
    # The feet in the order the policy's contact terms use; empty means ``foot_names`` (the order
    # the contact sensors report in).
    foot_names_policy: tuple[str, ...] = ()
    # Base height above flat ground at the default pose: the flat-ground height scan of a robot
    # that measures none.
    nominal_base_height_m: float = 0.3
    # The simulator body this robot uses (``[robot] sim_body``; empty: the one named as the
    # robot). hal.sim.mjcf refuses a robot it has no body for.
    sim_body: str = ""

    @property
    def feet_hardware_to_policy(self) -> np.ndarray:
        """Index array: ``policy_feet = sensor_feet[feet_hardware_to_policy]``."""
        order = self.foot_names_policy or self.foot_names
        index = {name: i for i, name in enumerate(self.foot_names)}
        return np.array([index[n] for n in order], dtype=np.intp)

    @property
    def n_joints(self) -> int:
        return len(self.joint_names_policy)

    @property
    def n_feet(self) -> int:
        return len(self.foot_names)

    @property
    def action_dim(self) -> int:
        return self.n_joints

    @property
    def hardware_to_policy(self) -> np.ndarray:
        """Index array: ``policy = hardware[hardware_to_policy]``."""
        index = {name: i for i, name in enumerate(self.joint_names_hardware)}
        return np.array([index[n] for n in self.joint_names_policy], dtype=np.intp)

    @property
    def policy_to_hardware(self) -> np.ndarray:
        """Index array: ``hardware = policy[policy_to_hardware]``."""
        index = {name: i for i, name in enumerate(self.joint_names_policy)}
        return np.array([index[n] for n in self.joint_names_hardware], dtype=np.intp)

    def to_hardware(self, policy_values: np.ndarray) -> np.ndarray:
        """Reorder a per-joint array from policy order to hardware order (new array)."""
        return np.asarray(policy_values)[..., self.policy_to_hardware]

    def to_policy(self, hardware_values: np.ndarray) -> np.ndarray:
        """Reorder a per-joint array from hardware order to policy order (new array)."""
        return np.asarray(hardware_values)[..., self.hardware_to_policy]

    def summary(self) -> dict[str, Any]:
        """The facts a manifest records to refuse an engine built for another robot."""
        return {
            "name": self.name,
            "joint_names_policy": list(self.joint_names_policy),
            "joint_names_hardware": list(self.joint_names_hardware),
            "foot_names": list(self.foot_names),
            "default_angles": [float(v) for v in self.default_angles],
            "action_scale": self.action_scale,
            "action_clip": self.action_clip,
            "action_dim": self.action_dim,
        }


_ROBOTS_PACKAGE = "hal.robots"


def available_robots() -> list[str]:
    """Names of the robot definitions shipped with krabby."""
    files = resources.files(_ROBOTS_PACKAGE).iterdir()
    return sorted(f.name[:-5] for f in files if f.name.endswith(".toml"))


def load_robot(name_or_path: str | Path) -> RobotConfig:
    """Load a shipped robot definition by name (``go2``) or a TOML file by path.

    Raises:
        RobotDefinitionError: the name is unknown, the file does not parse, or a field is missing
            or holds a bad value. The message names the file, the field and the value.
    """
    text_path = str(name_or_path)
    if text_path in available_robots():
        source = f"{_ROBOTS_PACKAGE}/{text_path}.toml"
        text = resources.files(_ROBOTS_PACKAGE).joinpath(f"{text_path}.toml").read_text()
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise RobotDefinitionError(
                f"robot {text_path!r}: not a shipped robot ({', '.join(available_robots())}) "
                "and not a TOML file"
            )
        source = str(path)
        text = path.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RobotDefinitionError(f"{source}: not valid TOML: {exc}") from None
    return _parse(data, source)


class _Reader:
    """Field access that names the file and field in every error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> RobotDefinitionError:
        return RobotDefinitionError(f"{self.source}: {where}: {message}")

    def get(self, table: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...],
            default: Any = ...) -> Any:
        if key not in table:
            if default is ...:
                raise self.fail(f"{where}.{key}" if where else key, "missing field")
            return default
        value = table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise self.fail(f"{where}.{key}" if where else key,
                            f"expected {getattr(kind, '__name__', kind)}, found {value!r}")
        return value

    def positive(self, value: float, where: str) -> float:
        if not math.isfinite(value) or value <= 0:
            raise self.fail(where, f"must be a positive number, found {value!r}")
        return value


def _policy_rate_hz(r: _Reader, robot: dict[str, Any]) -> float:
    """``[robot] policy_rate_hz``: the rate the policy was trained at. Definitions written before
    it was named so say ``control_rate_hz``, which also meant the policy's rate: still read."""
    if "control_rate_hz" in robot:
        if "policy_rate_hz" in robot:
            raise r.fail("robot.control_rate_hz", "the old name of robot.policy_rate_hz: give "
                                                  "policy_rate_hz only")
        log.warning("%s: [robot] control_rate_hz is the policy's rate: rename it policy_rate_hz",
                    r.source)
        return r.get(robot, "control_rate_hz", "robot", float)
    return r.get(robot, "policy_rate_hz", "robot", float)


def _parse(data: dict[str, Any], source: str) -> RobotConfig:
    r = _Reader(source)
    robot = r.get(data, "robot", "", dict)
    name = r.get(robot, "name", "robot", str)
    policy_rate_hz = r.positive(_policy_rate_hz(r, robot), "robot.policy_rate_hz")
    nominal_height = r.positive(r.get(robot, "nominal_base_height_m", "robot", float, 0.3),
                                "robot.nominal_base_height_m")
    sim_body = r.get(robot, "sim_body", "robot", str, "")

    control = r.get(data, "control", "", dict)
    default_kp = r.get(control, "kp", "control", float)
    default_kd = r.get(control, "kd", "control", float)
    action_scale = r.positive(r.get(control, "action_scale", "control", float), "control.action_scale")
    action_clip = r.positive(r.get(control, "action_clip", "control", float), "control.action_clip")

    joints = r.get(data, "joint", "", list)
    if not joints:
        raise r.fail("joint", "at least one [[joint]] entry is needed")
    hardware_names: list[str] = []
    per_joint: dict[str, dict[str, float]] = {}
    for i, joint in enumerate(joints):
        where = f"joint[{i}]"
        if not isinstance(joint, dict):
            raise r.fail(where, f"expected a table, found {joint!r}")
        jname = r.get(joint, "name", where, str)
        where = f"joint[{i}] ({jname})"
        if jname in per_joint:
            raise r.fail(where, f"duplicate joint name {jname!r}")
        values = {
            "default": r.get(joint, "default", where, float),
            "lower": r.get(joint, "lower", where, float),
            "upper": r.get(joint, "upper", where, float),
            "velocity": r.get(joint, "velocity", where, float),
            "torque": r.get(joint, "torque", where, float),
            "kp": r.get(joint, "kp", where, float, default_kp),
            "kd": r.get(joint, "kd", where, float, default_kd),
        }
        if not values["lower"] < values["upper"]:
            raise r.fail(where, f"lower {values['lower']} must be below upper {values['upper']}")
        if not values["lower"] <= values["default"] <= values["upper"]:
            raise r.fail(f"{where}.default", f"{values['default']} is outside "
                                             f"[{values['lower']}, {values['upper']}]")
        for key in ("velocity", "torque"):
            r.positive(values[key], f"{where}.{key}")
        if values["kp"] < 0 or values["kd"] < 0:
            raise r.fail(where, f"kp/kd must be >= 0, found kp={values['kp']} kd={values['kd']}")
        hardware_names.append(jname)
        per_joint[jname] = values

    policy_names = r.get(data, "policy", "", dict)
    policy_order = r.get(policy_names, "joint_order", "policy", list)
    unknown = [n for n in policy_order if n not in per_joint]
    if unknown:
        raise r.fail("policy.joint_order", f"unknown joint(s) {unknown}; the [[joint]] names are "
                                           f"{hardware_names}")
    if sorted(policy_order) != sorted(hardware_names):
        missing = sorted(set(hardware_names) - set(policy_order))
        raise r.fail("policy.joint_order", f"must list every joint exactly once; "
                                           f"found {len(policy_order)} names, missing {missing}")
    foot_names = r.get(policy_names, "foot_order", "policy", list)
    if not foot_names or not all(isinstance(f, str) for f in foot_names):
        raise r.fail("policy.foot_order", f"expected a non-empty list of names, found {foot_names!r}")
    contact_threshold = r.get(policy_names, "contact_force_threshold_n", "policy", float, 2.0)

    camera_table = r.get(data, "depth_camera", "", dict, {})
    camera_fields = {}
    for key, value in camera_table.items():
        if key not in DepthCameraModel.__dataclass_fields__:
            raise r.fail(f"depth_camera.{key}", "unknown field; valid: "
                                                f"{sorted(DepthCameraModel.__dataclass_fields__)}")
        camera_fields[key] = tuple(value) if isinstance(value, list) else value
    camera = DepthCameraModel(**camera_fields)

    def column(key: str) -> np.ndarray:
        arr = np.array([per_joint[n][key] for n in policy_order], dtype=np.float64)
        arr.setflags(write=False)
        return arr

    return RobotConfig(
        name=name,
        source=source,
        joint_names_hardware=tuple(hardware_names),
        joint_names_policy=tuple(policy_order),
        foot_names=tuple(foot_names),
        default_angles=column("default"),
        kp=column("kp"),
        kd=column("kd"),
        position_lower=column("lower"),
        position_upper=column("upper"),
        velocity_limit=column("velocity"),
        torque_limit=column("torque"),
        action_scale=action_scale,
        action_clip=action_clip,
        policy_rate_hz=policy_rate_hz,
        contact_force_threshold_n=contact_threshold,
        depth_camera=camera,
        nominal_base_height_m=nominal_height,
        sim_body=sim_body,
    )

"""The training contract: everything a training run chose that the runtime must reproduce
(docs/architecture.md#the-training-contract).

A policy only behaves as in training when it runs at the trained policy rate, sees its joints in the
trained order, relative to the trained default angles, commands them through the trained action
scale and clip, under the trained PD gains, and sees depth from a camera with the trained pose,
field of view, clipping and depth type. :class:`TrainingContract` holds those facts. ``krabby-export``
writes it into the manifest (from the robot definition, overridden by the run's training config
when given, see :mod:`compute.parkour.train_config`), and the runtime derives the robot
configuration it runs from it (:meth:`TrainingContract.apply`), so checkpoints from different
training setups run without code changes.

Joint-order conventions:

- ``legged_gym``: the extreme-parkour reindexing, FR, FL, RR, RL × (hip, thigh, calf), feet
  FR, FL, RR, RL.
- ``isaac_lab``: Isaac Lab's articulation order for a Go2/A1 USD, grouped by joint type: the four
  hips (FL, FR, RL, RR), then the four thighs, then the four calves; feet FL, FR, RL, RR.
- ``robot``: whatever ``[policy] joint_order`` / ``foot_order`` the robot definition lists.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping

import numpy as np

from hal.robot import DEPTH_TYPES, RobotConfig

__all__ = [
    "JOINT_ORDER_CONVENTIONS",
    "ContractError",
    "CameraContract",
    "TrainingContract",
    "joint_order_for",
    "command_interval_ticks",
]

JOINT_ORDER_CONVENTIONS = ("legged_gym", "isaac_lab", "robot")
_LEGS_LEGGED_GYM = ("FR", "FL", "RR", "RL")
_LEGS_ISAAC_LAB = ("FL", "FR", "RL", "RR")
_PARTS = ("hip", "thigh", "calf")


class ContractError(ValueError):
    """A training contract that is incomplete, inconsistent, or does not fit the robot or flags."""


def joint_order_for(convention: str, robot: RobotConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The policy's joint and foot names under ``convention`` for ``robot``'s joints.

    Raises:
        ContractError: unknown convention, or the robot's joints are not named ``<LEG>_<part>_joint``
            (a quadruped convention needs its legs and parts).
    """
    if convention == "robot":
        return tuple(robot.joint_names_policy), tuple(robot.foot_names_policy or robot.foot_names)
    if convention not in JOINT_ORDER_CONVENTIONS:
        raise ContractError(f"joint order convention {convention!r}: valid are "
                            f"{', '.join(JOINT_ORDER_CONVENTIONS)}")
    if convention == "legged_gym":
        joints = tuple(f"{leg}_{part}_joint" for leg in _LEGS_LEGGED_GYM for part in _PARTS)
        feet = tuple(f"{leg}_foot" for leg in _LEGS_LEGGED_GYM)
    else:
        joints = tuple(f"{leg}_{part}_joint" for part in _PARTS for leg in _LEGS_ISAAC_LAB)
        feet = tuple(f"{leg}_foot" for leg in _LEGS_ISAAC_LAB)
    missing = sorted(set(joints) - set(robot.joint_names_hardware))
    missing_feet = sorted(set(feet) - set(robot.foot_names))
    if missing or missing_feet or len(joints) != robot.n_joints:
        raise ContractError(
            f"joint order convention {convention!r} names joints {list(joints)} and feet "
            f"{list(feet)}; robot {robot.name!r} has {list(robot.joint_names_hardware)} and "
            f"{list(robot.foot_names)} (missing {missing + missing_feet}). Use convention 'robot' "
            "and list the order in the robot definition")
    return joints, feet


@dataclass(frozen=True)
class CameraContract:
    """The training depth camera (docs/architecture.md#the-training-contract)."""

    width: int
    height: int
    horizontal_fov_deg: float
    position_m: tuple[float, float, float]
    pitch_deg: float  # downward pitch of the optical axis
    near_m: float
    far_m: float
    depth_type: str  # "z_depth" or "distance_to_camera"
    update_interval_steps: int  # policy steps between depth frames

    def check(self) -> None:
        if self.depth_type not in DEPTH_TYPES:
            raise ContractError(f"camera.depth_type {self.depth_type!r}: valid are "
                                f"{', '.join(DEPTH_TYPES)}")
        if not (self.width > 0 and self.height > 0 and 0 < self.horizontal_fov_deg < 180):
            raise ContractError(f"camera {self.width}x{self.height} at "
                                f"{self.horizontal_fov_deg}° horizontal FOV is not a camera")
        if not 0 <= self.near_m < self.far_m:
            raise ContractError(f"camera clip near {self.near_m} m / far {self.far_m} m: need "
                                "0 <= near < far")
        if self.update_interval_steps < 1:
            raise ContractError(f"camera.update_interval_steps {self.update_interval_steps}: "
                                "must be >= 1")


@dataclass(frozen=True)
class TrainingContract:
    """What a training run chose, in the policy's joint order (see the module docstring).

    Attributes:
        policy_rate_hz: Rate of the actor in training (1 / (sim dt × decimation)).
        joint_order_convention: One of :data:`JOINT_ORDER_CONVENTIONS`.
        joint_names_policy / foot_names_policy: The policy's joint and foot order.
        default_angles_rad / kp / kd / torque_limits_nm: Per joint, policy order.
        action_scale / action_clip: target = default + scale × clip(action, ±clip).
        forward_speed_range_m_s: The trained forward-speed command range.
        camera: The training depth camera.
        scan_nominal_base_height_m: Base height used for the flat-ground height scan where nothing
            measures the terrain.
        source: Where the values came from (robot definition, training config file).
    """

    policy_rate_hz: float
    joint_order_convention: str
    joint_names_policy: tuple[str, ...]
    foot_names_policy: tuple[str, ...]
    default_angles_rad: tuple[float, ...]
    kp: tuple[float, ...]
    kd: tuple[float, ...]
    torque_limits_nm: tuple[float, ...]
    action_scale: float
    action_clip: float
    forward_speed_range_m_s: tuple[float, float]
    camera: CameraContract
    scan_nominal_base_height_m: float
    source: str = "robot definition"
    notes: tuple[str, ...] = field(default=())

    # -- construction --------------------------------------------------------------------------

    @classmethod
    def from_robot(cls, robot: RobotConfig, convention: str | None = None,
                   forward_speed_range_m_s: tuple[float, float] = (0.0, 1.5)) -> "TrainingContract":
        """The contract a robot definition implies (the shipped definitions describe the
        extreme-parkour training setup); ``convention`` reorders the joints. None: the robot
        definition's ``[policy]`` order, named ``legged_gym`` when it is that order."""
        if convention is None:
            convention = "robot"
            try:
                if joint_order_for("legged_gym", robot) == joint_order_for("robot", robot):
                    convention = "legged_gym"
            except ContractError:
                pass  # not a quadruped named the legged_gym way
        joints, feet = joint_order_for(convention, robot)
        index = {name: i for i, name in enumerate(robot.joint_names_policy)}
        order = [index[name] for name in joints]

        def column(values: np.ndarray) -> tuple[float, ...]:
            return tuple(float(values[i]) for i in order)

        cam = robot.depth_camera
        camera = CameraContract(
            width=cam.width, height=cam.height, horizontal_fov_deg=cam.horizontal_fov_deg,
            position_m=tuple(float(v) for v in cam.position_m), pitch_deg=cam.pitch_deg,
            near_m=cam.near_m, far_m=cam.far_m, depth_type=cam.depth_type,
            update_interval_steps=cam.update_interval_steps)
        contract = cls(
            policy_rate_hz=robot.policy_rate_hz, joint_order_convention=convention,
            joint_names_policy=joints, foot_names_policy=feet,
            default_angles_rad=column(robot.default_angles), kp=column(robot.kp),
            kd=column(robot.kd), torque_limits_nm=column(robot.torque_limit),
            action_scale=robot.action_scale, action_clip=robot.action_clip,
            forward_speed_range_m_s=(float(forward_speed_range_m_s[0]),
                                     float(forward_speed_range_m_s[1])),
            camera=camera, scan_nominal_base_height_m=robot.nominal_base_height_m,
            source=f"robot definition {robot.source}")
        contract.check(robot)
        return contract

    def check(self, robot: RobotConfig) -> None:
        """Raise :class:`ContractError` unless this contract is complete and fits ``robot``."""
        n = robot.n_joints
        if sorted(self.joint_names_policy) != sorted(robot.joint_names_hardware):
            raise ContractError(f"the contract's joints {list(self.joint_names_policy)} are not "
                                f"robot {robot.name!r}'s {list(robot.joint_names_hardware)}")
        if sorted(self.foot_names_policy) != sorted(robot.foot_names):
            raise ContractError(f"the contract's feet {list(self.foot_names_policy)} are not "
                                f"robot {robot.name!r}'s {list(robot.foot_names)}")
        for name in ("default_angles_rad", "kp", "kd", "torque_limits_nm"):
            values = getattr(self, name)
            if len(values) != n or not all(math.isfinite(v) for v in values):
                raise ContractError(f"{name} needs {n} finite values, found {list(values)}")
        if min(self.kp) < 0 or min(self.kd) < 0 or min(self.torque_limits_nm) <= 0:
            raise ContractError(f"gains must be >= 0 and torque limits > 0: kp {self.kp}, "
                                f"kd {self.kd}, torque {self.torque_limits_nm}")
        for name in ("policy_rate_hz", "action_scale", "action_clip",
                     "scan_nominal_base_height_m"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ContractError(f"{name} must be a positive number, found {value!r}")
        lo, hi = self.forward_speed_range_m_s
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise ContractError(f"forward_speed_range_m_s {self.forward_speed_range_m_s}: need "
                                "finite lo <= hi")
        if self.joint_order_convention not in JOINT_ORDER_CONVENTIONS:
            raise ContractError(f"joint_order_convention {self.joint_order_convention!r}: valid "
                                f"are {', '.join(JOINT_ORDER_CONVENTIONS)}")
        self.camera.check()

    # -- use -----------------------------------------------------------------------------------

    def apply(self, robot: RobotConfig) -> RobotConfig:
        """``robot`` (its hardware: joint names, limits, feet) running this contract's policy."""
        self.check(robot)
        hw_index = {name: i for i, name in enumerate(robot.joint_names_policy)}
        order = [hw_index[name] for name in self.joint_names_policy]

        def frozen(values) -> np.ndarray:
            arr = np.array(values, dtype=np.float64)
            arr.setflags(write=False)
            return arr

        def reorder(values: np.ndarray) -> np.ndarray:
            return frozen([values[i] for i in order])

        cam = self.camera
        camera = replace(robot.depth_camera, width=cam.width, height=cam.height,
                         horizontal_fov_deg=cam.horizontal_fov_deg, near_m=cam.near_m,
                         far_m=cam.far_m, update_interval_steps=cam.update_interval_steps,
                         position_m=tuple(cam.position_m), pitch_deg=cam.pitch_deg,
                         depth_type=cam.depth_type)
        return replace(
            robot, joint_names_policy=tuple(self.joint_names_policy),
            foot_names_policy=tuple(self.foot_names_policy),
            default_angles=frozen(self.default_angles_rad), kp=frozen(self.kp),
            kd=frozen(self.kd), torque_limit=frozen(self.torque_limits_nm),
            position_lower=reorder(robot.position_lower),
            position_upper=reorder(robot.position_upper),
            velocity_limit=reorder(robot.velocity_limit), action_scale=self.action_scale,
            action_clip=self.action_clip, policy_rate_hz=self.policy_rate_hz,
            depth_camera=camera, nominal_base_height_m=self.scan_nominal_base_height_m)

    def clamp_forward_speed(self, speed_m_s: float) -> float:
        """``speed_m_s`` inside the trained range (the caller warns when it changed)."""
        lo, hi = self.forward_speed_range_m_s
        return min(max(speed_m_s, lo), hi)

    # -- (de)serialisation ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["forward_speed_range_m_s"] = list(self.forward_speed_range_m_s)
        for key, value in list(data.items()):
            if isinstance(value, tuple):
                data[key] = list(value)
        data["camera"]["position_m"] = list(self.camera.position_m)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainingContract":
        """Parse a manifest's ``training_contract``; every missing or unknown key is named."""
        if not isinstance(data, Mapping):
            raise ContractError(f"training_contract must be a mapping, found {type(data).__name__}")
        names = set(cls.__dataclass_fields__)
        required = names - {"source", "notes"}
        missing, unknown = sorted(required - set(data)), sorted(set(data) - names)
        if missing or unknown:
            raise ContractError(f"training_contract: missing {missing}, unknown {unknown}; "
                                "re-export with this krabby version")
        cam = data["camera"]
        cam_names = set(CameraContract.__dataclass_fields__)
        if not isinstance(cam, Mapping) or set(cam) != cam_names:
            raise ContractError(f"training_contract.camera needs exactly {sorted(cam_names)}, "
                                f"found {sorted(cam) if isinstance(cam, Mapping) else cam!r}")
        try:
            camera = CameraContract(
                width=int(cam["width"]), height=int(cam["height"]),
                horizontal_fov_deg=float(cam["horizontal_fov_deg"]),
                position_m=tuple(float(v) for v in cam["position_m"]),
                pitch_deg=float(cam["pitch_deg"]), near_m=float(cam["near_m"]),
                far_m=float(cam["far_m"]), depth_type=str(cam["depth_type"]),
                update_interval_steps=int(cam["update_interval_steps"]))
            contract = cls(
                policy_rate_hz=float(data["policy_rate_hz"]),
                joint_order_convention=str(data["joint_order_convention"]),
                joint_names_policy=tuple(str(v) for v in data["joint_names_policy"]),
                foot_names_policy=tuple(str(v) for v in data["foot_names_policy"]),
                default_angles_rad=tuple(float(v) for v in data["default_angles_rad"]),
                kp=tuple(float(v) for v in data["kp"]), kd=tuple(float(v) for v in data["kd"]),
                torque_limits_nm=tuple(float(v) for v in data["torque_limits_nm"]),
                action_scale=float(data["action_scale"]), action_clip=float(data["action_clip"]),
                forward_speed_range_m_s=tuple(float(v) for v in data["forward_speed_range_m_s"]),
                camera=camera,
                scan_nominal_base_height_m=float(data["scan_nominal_base_height_m"]),
                source=str(data.get("source", "manifest")),
                notes=tuple(str(v) for v in data.get("notes", ())))
        except (TypeError, ValueError) as exc:
            raise ContractError(f"training_contract holds a bad value: {exc}") from None
        if len(contract.forward_speed_range_m_s) != 2 or len(camera.position_m) != 3:
            raise ContractError("training_contract: forward_speed_range_m_s needs 2 values and "
                                "camera.position_m 3")
        return contract


def command_interval_ticks(control_rate_hz: float, policy_rate_hz: float) -> int:
    """HAL ticks per policy step; the control rate must be a whole multiple of the policy rate.

    Raises:
        ContractError: naming both rates and the nearest valid control rates.
    """
    if not (math.isfinite(control_rate_hz) and control_rate_hz > 0):
        raise ContractError(f"--control-rate {control_rate_hz}: must be a positive number of Hz")
    ratio = control_rate_hz / policy_rate_hz
    interval = round(ratio)
    if interval < 1 or abs(ratio - interval) > 1e-6 * ratio:
        below = max(1, math.floor(ratio)) * policy_rate_hz
        above = max(1, math.ceil(ratio)) * policy_rate_hz
        raise ContractError(
            f"--control-rate {control_rate_hz:g} Hz is not a whole multiple of the policy's "
            f"trained rate {policy_rate_hz:g} Hz (the actor must run at exactly its trained rate "
            f"while the HAL holds its target in between); use {below:g} or {above:g} Hz")
    return interval

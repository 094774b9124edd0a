"""Read a training run's configuration into a :class:`~compute.parkour.contract.TrainingContract`.

The file is read by :func:`compute.parkour.config_dump.read_config_dump`; two formats, recognised by
content:

- **legged_gym** (extreme-parkour and its Go2 forks): the ``class_to_dict`` dump of the env config
  as JSON. Rate from ``sim.dt × control.decimation``; gains from ``control.stiffness/damping``
  (matched to joints by substring, as legged_gym does); ``control.action_scale`` and
  ``normalization.clip_actions`` (radians around the default: extreme-parkour clips the raw action
  to ``±clip_actions / action_scale``, the contract's ``action_clip``);
  ``init_state.default_joint_angles``
  (not ``init_state_slope`` or other unused copies); ``commands.ranges.lin_vel_x`` (not
  ``max_ranges``). The camera (:func:`compute.parkour.train_camera.legged_gym_camera`) from
  ``depth``: ``depth.rotation`` (radians) over ``depth.angle`` (degrees) as the Go2 forks do,
  ``depth.position`` as ``[x, y, z]``, ranges or ``{mean, std}``, ``horizontal_fov`` scalar or
  range. Joint order: the legged_gym reindexing.
- **Isaac Lab**: ``params/env.yaml`` of the run. Rate from ``sim.dt × decimation``; default angles
  and gains from ``scene.robot.init_state.joint_pos`` and ``scene.robot.actuators.*`` (joint-name
  regular expressions, as Isaac Lab matches them); ``actions.joint_pos.scale`` (and ``clip``);
  ``commands.base_velocity.ranges.lin_vel_x``; the camera from the scene sensor that has
  ``data_types`` (:func:`compute.parkour.train_camera.isaac_lab_camera`). Joint order: the
  articulation's.

A randomisation range gives its middle as the nominal value, and every such reading is named in the
contract's ``notes``. What the file does not say (torque limits come from the URDF, the nominal
base height) comes from the robot definition, and every such fallback is listed in the notes too.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping

from compute.parkour.config_dump import env_config, lookup, nominal, read_config_dump
from compute.parkour.contract import ContractError, TrainingContract
from compute.parkour.train_camera import CameraOverrides, isaac_lab_camera, legged_gym_camera
from hal.robot import RobotConfig

__all__ = ["load_train_config", "contract_from_legged_gym", "contract_from_isaac_lab",
           "with_camera_overrides"]

log = logging.getLogger(__name__)


def load_train_config(path: str | Path, robot: RobotConfig,
                      overrides: CameraOverrides | None = None) -> TrainingContract:
    """The contract of the training run whose config is at ``path`` (JSON or YAML).

    Args:
        path: legged_gym ``class_to_dict`` JSON dump or Isaac Lab ``env.yaml``.
        robot: the robot definition (fills what the file does not say).
        overrides: user-given camera values that replace the file's (named in the notes).

    Raises:
        ContractError: the file does not parse, is neither format, or lacks a needed value.
    """
    kind, data, key = env_config(read_config_dump(path), f"--train-config {path}")
    where = f"{path}" + (f" [{key}]" if key else "")
    if kind == "legged_gym":
        contract = contract_from_legged_gym(data, robot, source=f"legged_gym config {where}")
    else:
        contract = contract_from_isaac_lab(data, robot, source=f"Isaac Lab env.yaml {where}")
    for note in contract.notes:
        log.info("training contract: %s", note)
    return with_camera_overrides(contract, overrides, robot)


def with_camera_overrides(contract: TrainingContract, overrides: CameraOverrides | None,
                          robot: RobotConfig) -> TrainingContract:
    """``contract`` with the user's camera values in place, each named in its notes."""
    if overrides is None:
        return contract
    camera, notes = overrides.apply(contract.camera)
    if not notes:
        return contract
    contract = replace(contract, camera=camera, notes=tuple(contract.notes) + tuple(notes))
    contract.check(robot)
    return contract


def _per_joint(table: Any, joints: tuple[str, ...], match: Callable[[str, str], bool],
               what: str) -> list[float]:
    if isinstance(table, (int, float)) and not isinstance(table, bool):
        return [float(table)] * len(joints)
    if not isinstance(table, Mapping):
        raise ContractError(f"training config: {what} must be a number or a mapping, found {table!r}")
    values = []
    for joint in joints:
        hits = [float(v) for key, v in table.items() if match(key, joint)]
        if not hits:
            raise ContractError(f"training config: {what} has no entry for {joint} "
                                f"(keys: {sorted(table)})")
        values.append(hits[0])
    return values


def _speed_range(value: Any, base: tuple[float, float], what: str) -> tuple[float, float]:
    if value is None:
        return base
    lo, hi = (nominal(v, what) for v in value)
    return float(lo), float(hi)


def contract_from_legged_gym(data: Mapping[str, Any], robot: RobotConfig,
                             source: str = "legged_gym config") -> TrainingContract:
    """The contract of a legged_gym ``class_to_dict`` config dump (see the module docstring)."""
    base = TrainingContract.from_robot(robot, "legged_gym")
    joints = base.joint_names_policy
    notes = ["torque limits from the robot definition (legged_gym takes them from the URDF)",
             "scan nominal base height from the robot definition"]
    rate = 1.0 / (nominal(lookup(data, "sim.dt"), "sim.dt")
                  * nominal(lookup(data, "control.decimation"), "control.decimation"))
    substring = lambda key, joint: key in joint  # noqa: E731 - legged_gym's own rule
    kp = _per_joint(lookup(data, "control.stiffness"), joints, substring, "control.stiffness")
    kd = _per_joint(lookup(data, "control.damping"), joints, substring, "control.damping")
    scale = nominal(lookup(data, "control.action_scale"), "control.action_scale")
    clip_rad = lookup(data, "normalization.clip_actions", None)
    if clip_rad is None:
        clip = base.action_clip
        notes.append("action clip from the robot definition (no normalization.clip_actions)")
    else:
        clip = nominal(clip_rad, "normalization.clip_actions") / scale
    defaults = _per_joint(lookup(data, "init_state.default_joint_angles"), joints,
                          lambda key, joint: key == joint, "init_state.default_joint_angles")
    speed = lookup(data, "commands.ranges.lin_vel_x", None)
    if speed is None:
        notes.append("forward speed range from the robot definition (no commands.ranges.lin_vel_x)")
    speed_range = _speed_range(speed, base.forward_speed_range_m_s, "commands.ranges.lin_vel_x")
    camera, camera_notes = legged_gym_camera(data, base.camera)
    contract = TrainingContract(
        policy_rate_hz=rate, joint_order_convention="legged_gym", joint_names_policy=joints,
        foot_names_policy=base.foot_names_policy, default_angles_rad=tuple(defaults),
        kp=tuple(kp), kd=tuple(kd), torque_limits_nm=base.torque_limits_nm, action_scale=scale,
        action_clip=clip, forward_speed_range_m_s=speed_range, camera=camera,
        scan_nominal_base_height_m=base.scan_nominal_base_height_m, source=source,
        notes=tuple(notes + camera_notes))
    contract.check(robot)
    return contract


def _regex(key: str, joint: str) -> bool:
    try:
        return re.fullmatch(key, joint) is not None
    except re.error:
        raise ContractError(f"training config: {key!r} is not a valid joint-name pattern") from None


def contract_from_isaac_lab(data: Mapping[str, Any], robot: RobotConfig,
                            source: str = "Isaac Lab env.yaml") -> TrainingContract:
    """The contract of an Isaac Lab ``env.yaml`` (see the module docstring)."""
    base = TrainingContract.from_robot(robot, "isaac_lab")
    joints = base.joint_names_policy
    notes = ["scan nominal base height from the robot definition"]
    rate = 1.0 / (nominal(lookup(data, "sim.dt"), "sim.dt")
                  * nominal(lookup(data, "decimation"), "decimation"))
    defaults = _per_joint(lookup(data, "scene.robot.init_state.joint_pos"), joints, _regex,
                          "scene.robot.init_state.joint_pos")
    kp, kd, torque = list(base.kp), list(base.kd), list(base.torque_limits_nm)
    actuators = lookup(data, "scene.robot.actuators", {}) or {}
    covered: set[str] = set()
    for name, actuator in actuators.items():
        patterns = actuator.get("joint_names_expr", []) if isinstance(actuator, Mapping) else []
        for i, joint in enumerate(joints):
            if not any(_regex(p, joint) for p in patterns):
                continue
            covered.add(joint)
            for values, key in ((kp, "stiffness"), (kd, "damping"), (torque, "effort_limit")):
                table = actuator.get(key)
                if table is None:
                    continue
                values[i] = _per_joint(table, (joint,), _regex, f"actuators.{name}.{key}")[0]
    if set(joints) - covered:
        notes.append(f"gains from the robot definition for {sorted(set(joints) - covered)}")
    scale = nominal(lookup(data, "actions.joint_pos.scale"), "actions.joint_pos.scale")
    clip_table = lookup(data, "actions.joint_pos.clip", None)
    clip = base.action_clip
    if isinstance(clip_table, Mapping) and clip_table:
        bound = next(iter(clip_table.values()))
        clip = max(abs(float(bound[0])), abs(float(bound[1])))
    else:
        notes.append("action clip from the robot definition (no actions.joint_pos.clip)")
    speed = lookup(data, "commands.base_velocity.ranges.lin_vel_x", None)
    speed_range = _speed_range(speed, base.forward_speed_range_m_s,
                               "commands.base_velocity.ranges.lin_vel_x")
    camera, camera_notes = isaac_lab_camera(data, base.camera, rate)
    contract = TrainingContract(
        policy_rate_hz=rate, joint_order_convention="isaac_lab", joint_names_policy=joints,
        foot_names_policy=base.foot_names_policy, default_angles_rad=tuple(defaults),
        kp=tuple(kp), kd=tuple(kd), torque_limits_nm=tuple(torque), action_scale=scale,
        action_clip=clip, forward_speed_range_m_s=speed_range, camera=camera,
        scan_nominal_base_height_m=base.scan_nominal_base_height_m, source=source,
        notes=tuple(notes + camera_notes))
    contract.check(robot)
    return contract

"""Read a training run's configuration into a :class:`~compute.parkour.contract.TrainingContract`.

Two formats, recognised by content:

- **legged_gym** (extreme-parkour and its Go2 ports): the ``class_to_dict`` dump of the env config
  as JSON. Rate from ``sim.dt × control.decimation``; gains from ``control.stiffness/damping``
  (matched to joints by substring, as legged_gym does); ``control.action_scale`` and
  ``normalization.clip_actions`` (a clip on the *scaled* action: the raw clip is
  ``clip_actions / action_scale``); ``init_state.default_joint_angles``;
  ``commands.ranges.lin_vel_x``; the camera from ``depth`` (``position``, ``angle`` in degrees,
  positive down, a ``[lo, hi]`` range meaning the midpoint, ``original`` W×H, ``horizontal_fov``,
  ``near_clip``/``far_clip``, ``update_interval``). Joint order: the legged_gym reindexing.
- **Isaac Lab**: ``params/env.yaml`` of the run. Rate from ``sim.dt × decimation``; default angles
  and gains from ``scene.robot.init_state.joint_pos`` and ``scene.robot.actuators.*`` (joint-name
  regular expressions, as Isaac Lab matches them); ``actions.joint_pos.scale`` (and ``clip``);
  ``commands.base_velocity.ranges.lin_vel_x``; the camera from the scene sensor that has
  ``data_types`` (its ``offset`` pose, ``pattern_cfg`` resolution and aperture, ``max_distance``,
  ``distance_to_camera`` vs ``distance_to_image_plane``). Joint order: the articulation's.

What the file does not say (torque limits come from the URDF, the nominal base height) comes from
the robot definition, and every such fallback is listed in the contract's ``notes``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from compute.parkour.contract import CameraContract, ContractError, TrainingContract
from hal.robot import RobotConfig

__all__ = ["load_train_config", "contract_from_legged_gym", "contract_from_isaac_lab"]


def load_train_config(path: str | Path, robot: RobotConfig) -> TrainingContract:
    """The contract of the training run whose config is at ``path`` (JSON or YAML).

    Raises:
        ContractError: the file does not parse, is neither format, or lacks a needed value.
    """
    path = Path(path)
    if not path.is_file():
        raise ContractError(f"--train-config {path}: no such file")
    text = path.read_text()
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ContractError(f"--train-config {path}: not valid JSON: {exc}") from None
    else:
        data = _load_yaml(text, path)
    if not isinstance(data, Mapping):
        raise ContractError(f"--train-config {path}: expected a mapping at the top level")
    if "control" in data and "init_state" in data:
        return contract_from_legged_gym(data, robot, source=f"legged_gym config {path}")
    if "scene" in data and "decimation" in data:
        return contract_from_isaac_lab(data, robot, source=f"Isaac Lab env.yaml {path}")
    raise ContractError(f"--train-config {path}: neither a legged_gym config dump (control, "
                        f"init_state) nor an Isaac Lab env.yaml (scene, decimation); top-level "
                        f"keys: {sorted(data)[:12]}")


def _load_yaml(text: str, path: Path) -> Any:
    from hal.optional import require

    yaml = require("yaml", "reading Isaac Lab training configs")

    class Loader(yaml.SafeLoader):
        """Isaac Lab dumps tuples and slices with python tags; read them as plain data."""

    def python_tag(loader, _suffix, node):
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        return loader.construct_scalar(node)

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", python_tag)
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ContractError(f"--train-config {path}: not valid YAML: {exc}") from None


def _get(data: Mapping[str, Any], dotted: str, default: Any = ...) -> Any:
    node: Any = data
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            if default is ...:
                raise ContractError(f"training config: {dotted} is missing")
            return default
        node = node[key]
    return node


def _number(value: Any, what: str) -> float:
    """A number, or the midpoint of a [lo, hi] range (a randomised training value)."""
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(
            isinstance(v, (int, float)) for v in value):
        value = (value[0] + value[1]) / 2.0
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ContractError(f"training config: {what} must be a number or [lo, hi], found {value!r}")
    return float(value)


def _per_joint(table: Any, joints: tuple[str, ...], match, what: str) -> list[float]:
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


def contract_from_legged_gym(data: Mapping[str, Any], robot: RobotConfig,
                             source: str = "legged_gym config") -> TrainingContract:
    """The contract of a legged_gym ``class_to_dict`` config dump (see the module docstring)."""
    base = TrainingContract.from_robot(robot, "legged_gym")
    joints = base.joint_names_policy
    notes = ["torque limits from the robot definition (legged_gym takes them from the URDF)",
             "scan nominal base height from the robot definition"]
    rate = 1.0 / (_number(_get(data, "sim.dt"), "sim.dt")
                  * _number(_get(data, "control.decimation"), "control.decimation"))
    substring = lambda key, joint: key in joint  # noqa: E731 - legged_gym's own rule
    kp = _per_joint(_get(data, "control.stiffness"), joints, substring, "control.stiffness")
    kd = _per_joint(_get(data, "control.damping"), joints, substring, "control.damping")
    scale = _number(_get(data, "control.action_scale"), "control.action_scale")
    clip_scaled = _get(data, "normalization.clip_actions", None)
    clip = base.action_clip if clip_scaled is None else _number(clip_scaled, "clip_actions") / scale
    defaults_table = _get(data, "init_state.default_joint_angles")
    defaults = _per_joint(defaults_table, joints, lambda key, joint: key == joint,
                          "init_state.default_joint_angles")
    speed = _get(data, "commands.ranges.lin_vel_x", None)
    speed_range = base.forward_speed_range_m_s if speed is None else (float(speed[0]), float(speed[1]))
    camera = base.camera
    depth = _get(data, "depth", None)
    if isinstance(depth, Mapping):
        position = depth.get("position", camera.position_m)
        if isinstance(position, Mapping):  # {mean: [...], std: ...} in some ports
            position = position.get("mean", camera.position_m)
        position_m = tuple(_number(v, "depth.position") for v in position)
        width, height = depth.get("original", (camera.width, camera.height))
        camera = CameraContract(
            width=int(width), height=int(height),
            horizontal_fov_deg=_number(depth.get("horizontal_fov", camera.horizontal_fov_deg),
                                       "depth.horizontal_fov"),
            position_m=position_m,  # type: ignore[arg-type]
            pitch_deg=_number(depth.get("angle", camera.pitch_deg), "depth.angle"),
            near_m=_number(depth.get("near_clip", camera.near_m), "depth.near_clip"),
            far_m=_number(depth.get("far_clip", camera.far_m), "depth.far_clip"),
            depth_type="z_depth",  # Isaac Gym's IMAGE_DEPTH is along the optical axis
            update_interval_steps=int(depth.get("update_interval",
                                                camera.update_interval_steps)))
    else:
        notes.append("no depth section: camera from the robot definition")
    contract = TrainingContract(
        policy_rate_hz=rate, joint_order_convention="legged_gym", joint_names_policy=joints,
        foot_names_policy=base.foot_names_policy, default_angles_rad=tuple(defaults),
        kp=tuple(kp), kd=tuple(kd), torque_limits_nm=base.torque_limits_nm, action_scale=scale,
        action_clip=clip, forward_speed_range_m_s=speed_range, camera=camera,
        scan_nominal_base_height_m=base.scan_nominal_base_height_m, source=source,
        notes=tuple(notes))
    contract.check(robot)
    return contract


def _regex(key: str, joint: str) -> bool:
    try:
        return re.fullmatch(key, joint) is not None
    except re.error:
        raise ContractError(f"training config: {key!r} is not a valid joint-name pattern") from None


def _find_camera(scene: Mapping[str, Any]) -> Mapping[str, Any] | None:
    cameras = [(name, cfg) for name, cfg in scene.items()
               if isinstance(cfg, Mapping) and "data_types" in cfg and "offset" in cfg]
    cameras.sort(key=lambda item: "depth" not in item[0])
    return cameras[0][1] if cameras else None


def _pitch_down_deg(rot_wxyz: Any, convention: str) -> float:
    w, x, y, z = (float(v) for v in rot_wxyz)
    norm = math.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / norm, x / norm, y / norm, z / norm
    rotation = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    forward = {"world": (1.0, 0.0, 0.0), "ros": (0.0, 0.0, 1.0), "opengl": (0.0, 0.0, -1.0)}
    if convention not in forward:
        raise ContractError(f"training config: camera offset convention {convention!r}; valid "
                            f"are {sorted(forward)}")
    axis = rotation @ np.array(forward[convention])
    return math.degrees(math.asin(max(-1.0, min(1.0, -float(axis[2])))))


def contract_from_isaac_lab(data: Mapping[str, Any], robot: RobotConfig,
                            source: str = "Isaac Lab env.yaml") -> TrainingContract:
    """The contract of an Isaac Lab ``env.yaml`` (see the module docstring)."""
    base = TrainingContract.from_robot(robot, "isaac_lab")
    joints = base.joint_names_policy
    notes = ["scan nominal base height from the robot definition"]
    rate = 1.0 / (_number(_get(data, "sim.dt"), "sim.dt")
                  * _number(_get(data, "decimation"), "decimation"))
    defaults = _per_joint(_get(data, "scene.robot.init_state.joint_pos"), joints, _regex,
                          "scene.robot.init_state.joint_pos")
    kp, kd, torque = list(base.kp), list(base.kd), list(base.torque_limits_nm)
    actuators = _get(data, "scene.robot.actuators", {}) or {}
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
    scale = _number(_get(data, "actions.joint_pos.scale"), "actions.joint_pos.scale")
    clip_table = _get(data, "actions.joint_pos.clip", None)
    clip = base.action_clip
    if isinstance(clip_table, Mapping) and clip_table:
        bound = next(iter(clip_table.values()))
        clip = max(abs(float(bound[0])), abs(float(bound[1])))
    speed = _get(data, "commands.base_velocity.ranges.lin_vel_x", None)
    speed_range = base.forward_speed_range_m_s if speed is None else (float(speed[0]), float(speed[1]))
    camera = base.camera
    sensor = _find_camera(_get(data, "scene"))
    if sensor is not None:
        offset = sensor.get("offset", {})
        pattern = sensor.get("pattern_cfg", {}) or {}
        width = int(pattern.get("width", camera.width))
        height = int(pattern.get("height", camera.height))
        fov = camera.horizontal_fov_deg
        if "focal_length" in pattern and "horizontal_aperture" in pattern:
            fov = math.degrees(2 * math.atan(float(pattern["horizontal_aperture"])
                                             / (2 * float(pattern["focal_length"]))))
        types = [str(t) for t in sensor.get("data_types", [])]
        period_s = float(sensor.get("update_period", 0.0) or 0.0)
        interval = round(period_s * rate) if period_s > 0 else camera.update_interval_steps
        camera = CameraContract(
            width=width, height=height, horizontal_fov_deg=fov,
            position_m=tuple(float(v) for v in offset.get("pos", camera.position_m)),  # type: ignore[arg-type]
            pitch_deg=_pitch_down_deg(offset.get("rot", (1.0, 0.0, 0.0, 0.0)),
                                      str(offset.get("convention", "world"))),
            near_m=camera.near_m, far_m=float(sensor.get("max_distance", camera.far_m)),
            depth_type=("distance_to_camera" if "distance_to_camera" in types else "z_depth"),
            update_interval_steps=max(1, int(interval)))
    else:
        notes.append("no camera sensor in the scene: camera from the robot definition")
    contract = TrainingContract(
        policy_rate_hz=rate, joint_order_convention="isaac_lab", joint_names_policy=joints,
        foot_names_policy=base.foot_names_policy, default_angles_rad=tuple(defaults),
        kp=tuple(kp), kd=tuple(kd), torque_limits_nm=tuple(torque), action_scale=scale,
        action_clip=clip, forward_speed_range_m_s=speed_range, camera=camera,
        scan_nominal_base_height_m=base.scan_nominal_base_height_m, source=source,
        notes=tuple(notes))
    contract.check(robot)
    return contract

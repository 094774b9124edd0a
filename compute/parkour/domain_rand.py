"""Domain randomisation ranges from a training config dump (``--train-config`` at export).

The export stores them in the manifest under ``domain_randomization`` (keys of
:class:`hal.sim.randomization.RandomizationRanges`); the simulator draws each episode from them.
From a legged_gym dump (extreme-parkour and its Go2 ports):

=================================  =========================================================
manifest key                       training config
=================================  =========================================================
friction                           ``domain_rand.friction_range`` (if ``randomize_friction``)
added_mass_kg                      ``domain_rand.added_mass_range`` (``randomize_base_mass``)
com_offset_m                       ``domain_rand.added_com_range`` (``randomize_base_com``)
motor_strength                     ``domain_rand.motor_strength_range`` (``randomize_motor``)
push_interval_s, max_push_vel...   ``domain_rand.push_interval_s``, ``max_push_vel_xy``
                                   (``push_robots``; off: interval 0)
action_delay_steps                 ``domain_rand.action_delay_range`` (the Go2 forks) or
                                   ``action_curr_step`` (min, max) when ``action_delay``,
                                   else (0, 0)
camera_pitch_deg                   ``depth.rotation`` lower/upper pitch (radians, the Go2
                                   forks), else ``depth.angle`` ([lo, hi] degrees, down)
depth_noise_std_m                  ``depth.gaussian_noise_std``
camera_hfov_deg                    ``depth.horizontal_fov`` (a number or [lo, hi])
camera_position_std_m              ``depth.position.std`` when the position is a
                                   ``{mean, std}`` table
start_xy_m / start_yaw_rad         ``env.randomize_start_pos`` (±0.3 m), ``env.randomize_start_yaw``
                                   (± ``env.rand_yaw_range``)
=================================  =========================================================

A range the dump switches off becomes a fixed nominal value; one it does not mention is left out
(the simulator's default stands). An Isaac Lab ``env.yaml`` yields no ranges yet (its ``events``
differ per task): its runs use the defaults.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

from compute.parkour.config_dump import dump_kind, read_config_dump
from compute.parkour.contract import ContractError

__all__ = ["ranges_from_legged_gym", "ranges_from_train_config"]


def _pair(value: Any, what: str) -> list[float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [float(value), float(value)]
    if (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, (int, float)) for v in value)):
        return [float(value[0]), float(value[1])]
    raise ContractError(f"training config: {what} must be a number or [low, high], found {value!r}")


def ranges_from_legged_gym(data: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest's ``domain_randomization`` from a legged_gym config dump."""
    rand = data.get("domain_rand", {}) or {}
    depth = data.get("depth", {}) or {}
    env = data.get("env", {}) or {}
    out: dict[str, Any] = {}

    def ranged(flag: str, key: str, name: str, nominal: float) -> None:
        if key in rand:
            out[name] = _pair(rand[key], f"domain_rand.{key}") if rand.get(flag, True) \
                else [nominal, nominal]

    ranged("randomize_friction", "friction_range", "friction", 1.0)
    ranged("randomize_base_mass", "added_mass_range", "added_mass_kg", 0.0)
    ranged("randomize_base_com", "added_com_range", "com_offset_m", 0.0)
    ranged("randomize_motor", "motor_strength_range", "motor_strength", 1.0)
    if "push_robots" in rand:
        pushing = bool(rand["push_robots"])
        out["push_interval_s"] = float(rand.get("push_interval_s", 8.0)) if pushing else 0.0
        out["max_push_vel_xy_m_s"] = float(rand.get("max_push_vel_xy", 0.0)) if pushing else 0.0
    if "action_delay" in rand:
        # the Go2 forks draw from action_delay_range; extreme-parkour steps action_curr_step
        steps = rand.get("action_delay_range", rand.get("action_curr_step", [0])) \
            if rand["action_delay"] else [0]
        if not steps or not all(isinstance(s, (int, float)) for s in steps):
            raise ContractError(f"training config: domain_rand.action_curr_step must list "
                                f"whole steps, found {steps!r}")
        out["action_delay_steps"] = [int(min(steps)), int(max(steps))]
    rotation = depth.get("rotation")
    if isinstance(rotation, Mapping) and "lower" in rotation and "upper" in rotation:
        # the Go2 forks' attach_camera reads depth.rotation (radians, [roll, pitch, yaw]) and
        # never depth.angle
        try:
            low, high = (math.degrees(float(rotation[k][1])) for k in ("lower", "upper"))
        except (TypeError, ValueError, IndexError):
            raise ContractError(f"training config: depth.rotation lower/upper must be [roll, "
                                f"pitch, yaw] in radians, found {rotation!r}") from None
        out["camera_pitch_deg"] = [low, high]
    elif "angle" in depth:
        out["camera_pitch_deg"] = _pair(depth["angle"], "depth.angle")
    if "gaussian_noise_std" in depth:
        out["depth_noise_std_m"] = float(depth["gaussian_noise_std"])
    if "horizontal_fov" in depth:
        out["camera_hfov_deg"] = _pair(depth["horizontal_fov"], "depth.horizontal_fov")
    position = depth.get("position")
    if isinstance(position, Mapping) and "std" in position:
        std = position["std"]
        if not (isinstance(std, (list, tuple)) and len(std) == 3):
            raise ContractError(f"training config: depth.position.std must be 3 numbers, "
                                f"found {std!r}")
        out["camera_position_std_m"] = [float(v) for v in std]
    if "randomize_start_pos" in env:
        out["start_xy_m"] = [-0.3, 0.3] if env["randomize_start_pos"] else [0.0, 0.0]
    if "randomize_start_yaw" in env:
        yaw = float(env.get("rand_yaw_range", 0.0)) if env["randomize_start_yaw"] else 0.0
        out["start_yaw_rad"] = [-yaw, yaw]
    return out


def ranges_from_train_config(path: str | Path) -> dict[str, Any] | None:
    """Ranges from a training config file (read by :func:`read_config_dump`); None for a
    format without them (Isaac Lab)."""
    data = read_config_dump(path)
    if dump_kind(data, f"--train-config {path}") == "legged_gym":
        ranges = ranges_from_legged_gym(data)
        ranges["source"] = f"legged_gym config {Path(path).name}"
        return ranges
    return None

"""Sideways drift of a symmetric open-loop trot in the simulated Go2 (a model check, not a timing).

A trot from sinusoids around the default pose: the diagonal pairs (FR, RL) and (FL, RR) move in
phase within a pair and half a period apart between pairs; every leg's thigh swings
``thigh_amplitude_rad`` around its default angle and its calf flexes ``calf_lift_rad`` further
while the leg swings forward (the half period in which the thigh angle falls). Hips stay at their
default angles. The amplitudes ramp up linearly over ``ramp_s`` from the standing pose (a sudden
start kicks the trunk sideways, and an open-loop gait has nothing that takes a sideways velocity
back). Targets change at the policy rate (the robot's ``policy_rate_hz``, 50 Hz for the
Go2) and go through the same path as a policy's: :meth:`MujocoWorld.set_command` with the robot's
kp/kd, the PD law at every physics step, the torque clamp, then MuJoCo.

The gait is mirror-symmetric up to a half-period shift, so a mirror-symmetric robot walks it
straight, apart from the start (one pair lifts first). ``mirrored=True`` runs the mirror image
(the other pair first); on a symmetric model its drift is the negative of the plain run's, so
``(plain + mirrored) / 2`` is the drift the model itself adds, and ``(plain - mirrored) / 2`` the
drift of the asymmetric start.

Figures are measured from ``warmup_s`` (after the first strides) to the end, on positions and yaw
averaged over one gait period (the trunk sways and yaws within a stride), in the heading the
robot had at the start of the window: ``forward_m`` along it, ``lateral_m`` across it (left
positive), ``yaw_change_rad`` (left positive); ``curvature`` = |lateral| / forward.

An open-loop trot has no feedback: what a stride does to the heading stays, and some gait
parameters amplify tiny differences (at 2.6 Hz the same model curves 16 cm/m). The defaults are a
trot that the Go2 of this model walks straight; the mirrored run is the model check.
``--symmetric-trunk`` also runs the model without the trunk's published products of inertia
(ixy, iyz, the model's only asymmetry): then the plain and mirrored runs must be exact mirror
images, which shows that the solver, contacts, integrator and joint order add no asymmetry.

``stance`` in the output: how the robot stands after settling (hip deviation from the default
angles, trunk height) and how fast its feet creep under a steady sideways push inside the friction
cone (:func:`stance_and_creep`), a drift source of its own.

Run: ``python -m benchmarks.gait_drift`` (prints JSON). Without ``--symmetric-trunk`` the script
uses only ``hal``'s public simulator API, so ``PYTHONPATH=<another checkout> python
benchmarks/gait_drift.py`` measures that checkout's model with the same gait.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from hal.config import build_parser as build_config_parser
from hal.config import parse_cli, part, setting
from hal.config.sections import DurationSection
from benchmarks.common import PhysicsStepSection

__all__ = ["TrotGait", "DriftResult", "trot_targets", "measure_trot_drift", "stance_and_creep",
           "symmetric_trunk_geometry", "run", "build_parser", "GaitDriftConfig"]


@dataclass(frozen=True)
class TrotGait:
    """An open-loop trot around the default pose."""

    frequency_hz: float = 2.5
    thigh_amplitude_rad: float = 0.25
    calf_lift_rad: float = 0.6
    ramp_s: float = 2.0
    duration_s: float = 10.0
    warmup_s: float = 3.0


@dataclass(frozen=True)
class DriftResult:
    """Where the trot took the robot after the warm-up, in its heading at the end of the warm-up."""

    forward_m: float
    lateral_m: float
    yaw_change_rad: float
    mirrored: bool

    @property
    def curvature(self) -> float:
        """|lateral drift| per metre walked forward."""
        return abs(self.lateral_m) / max(self.forward_m, 1e-9)


def trot_targets(robot: Any, gait: TrotGait, t_s: float, mirrored: bool = False) -> np.ndarray:
    """Joint targets (hardware order) of the trot at time ``t_s``.

    Args:
        robot: a :class:`hal.robot.RobotConfig` with ``{FR,FL,RR,RL}_{hip,thigh,calf}_joint``.
        gait: the trot's parameters.
        t_s: time since the trot started.
        mirrored: start with the (FL, RR) pair instead of (FR, RL).
    """
    names = robot.joint_names_hardware
    target = np.asarray(robot.to_hardware(robot.default_angles), dtype=np.float64).copy()
    first = ("FL", "RR") if mirrored else ("FR", "RL")
    omega = 2.0 * math.pi * gait.frequency_hz
    scale = min(1.0, t_s / gait.ramp_s) if gait.ramp_s > 0 else 1.0
    for leg in ("FR", "FL", "RR", "RL"):
        phase = omega * t_s + (0.0 if leg in first else math.pi)
        # Thigh angle rising = foot moving back (stance); falling (cos < 0) = swing: lift the foot.
        target[names.index(f"{leg}_thigh_joint")] += (
            scale * gait.thigh_amplitude_rad * math.sin(phase))
        target[names.index(f"{leg}_calf_joint")] += (
            scale * gait.calf_lift_rad * min(0.0, math.cos(phase)))
    return target


def _yaw(quat_wxyz: np.ndarray) -> float:
    w, x, y, z = quat_wxyz
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def measure_trot_drift(robot: Any = None, gait: TrotGait | None = None, mirrored: bool = False,
                       **world_config: Any) -> DriftResult:
    """Walk the trot in a flat-scene :class:`MujocoWorld` and measure its drift.

    Args:
        robot: the robot definition; default the shipped Go2.
        gait: the trot; default :class:`TrotGait`.
        mirrored: run the mirror image of the gait.
        **world_config: extra :class:`MujocoWorldConfig` fields (the camera is off).
    """
    from hal.devices.base import JointCommand
    from hal.robot import load_robot
    from hal.sim import MujocoWorld, MujocoWorldConfig

    robot = robot or load_robot("go2")
    gait = gait or TrotGait()
    kp = np.asarray(robot.to_hardware(robot.kp), dtype=np.float64)
    kd = np.asarray(robot.to_hardware(robot.kd), dtype=np.float64)
    period_s = 1.0 / robot.policy_rate_hz
    n_ticks = int(round(gait.duration_s / period_s))
    n_warmup = int(round(gait.warmup_s / period_s))
    n_stride = max(1, int(round(1.0 / (gait.frequency_hz * period_s))))
    if not n_stride <= n_warmup <= n_ticks - n_stride:
        raise ValueError(f"warmup_s ({gait.warmup_s}) must leave a gait period before it and "
                         f"after it within duration_s ({gait.duration_s})")
    config = MujocoWorldConfig(scene="flat", camera_fps=0.0, **world_config)
    pose = np.zeros((n_ticks, 3))  # x, y, unwrapped yaw after each tick
    with MujocoWorld(robot, config) as world:
        for k in range(n_ticks):
            target = trot_targets(robot, gait, k * period_s, mirrored)
            world.set_command(JointCommand(target, kp, kd))
            world.advance(period_s)
            pose[k, :2] = world.base_position_m[:2]
            pose[k, 2] = _yaw(world.base_quaternion_wxyz)
    pose[:, 2] = np.unwrap(pose[:, 2])
    start = pose[n_warmup - n_stride:n_warmup].mean(axis=0)
    end = pose[n_ticks - n_stride:].mean(axis=0)
    dx, dy, yaw_change = end - start
    c, s = math.cos(start[2]), math.sin(start[2])
    return DriftResult(forward_m=float(c * dx + s * dy), lateral_m=float(-s * dx + c * dy),
                       yaw_change_rad=float(yaw_change), mirrored=mirrored)


def stance_and_creep(push_n: float = 40.0, **world_config: Any) -> dict[str, float]:
    """How the Go2 stands, and how fast its feet creep under a steady sideways push on the trunk.

    After the world's settling: the largest hip deviation from the default angles and the trunk
    height; then ``push_n`` sideways on the trunk (inside the friction cone: a quarter of mu N)
    for 2.5 s, and the feet's mean sideways speed over the last 2 s (a foot held by static
    friction does not move).
    """
    from hal.robot import load_robot
    from hal.sim import MujocoWorld, MujocoWorldConfig

    robot = load_robot("go2")
    config = MujocoWorldConfig(scene="flat", camera_fps=0.0, **world_config)
    with MujocoWorld(robot, config) as world:
        default = np.asarray(robot.to_hardware(robot.default_angles), dtype=np.float64)
        hips = [i for i, n in enumerate(robot.joint_names_hardware) if n.endswith("hip_joint")]
        hip_dev = float(np.abs(world.joint_state().position_rad - default)[hips].max())
        height = float(world.base_position_m[2])
        feet = [f"{leg}_foot" for leg in ("FR", "FL", "RR", "RL")]
        world.data.xfrc_applied[world.model.body("trunk").id, 1] = push_n
        world.advance(0.5)
        y0 = np.array([world.data.site(f).xpos[1] for f in feet])
        world.advance(2.0)
        y1 = np.array([world.data.site(f).xpos[1] for f in feet])
    return {"hip_deviation_rad": hip_dev, "base_height_m": height,
            "push_n": push_n, "foot_creep_m_s": float((y1 - y0).mean() / 2.0)}


def symmetric_trunk_geometry() -> Any:
    """The Go2's geometry without the trunk's products of inertia ixy and iyz (y-odd terms)."""
    import dataclasses

    from hal.sim.mjcf import GO2_GEOMETRY

    _, ixz, _ = GO2_GEOMETRY.trunk.products_kg_m2
    trunk = dataclasses.replace(GO2_GEOMETRY.trunk, products_kg_m2=(0.0, ixz, 0.0))
    return dataclasses.replace(GO2_GEOMETRY, trunk=trunk)


def run(gait: TrotGait | None = None, **world_config: Any) -> dict[str, Any]:
    """The plain and the mirrored trot, and the drift the model adds (their mean)."""
    gait = gait or TrotGait()
    plain = measure_trot_drift(gait=gait, **world_config)
    mirror = measure_trot_drift(gait=gait, mirrored=True, **world_config)
    fwd = (plain.forward_m + mirror.forward_m) / 2
    model_lateral = (plain.lateral_m + mirror.lateral_m) / 2
    return {
        "gait": asdict(gait),
        "world_config": {k: v for k, v in world_config.items() if k != "geometry"},
        "symmetric_trunk": world_config.get("geometry") is not None,
        "plain": {**asdict(plain), "curvature": plain.curvature},
        "mirrored": {**asdict(mirror), "curvature": mirror.curvature},
        "model_lateral_m": model_lateral,
        "model_curvature": abs(model_lateral) / max(fwd, 1e-9),
        "model_yaw_change_rad": (plain.yaw_change_rad + mirror.yaw_change_rad) / 2,
    }



@dataclass(frozen=True)
class GaitDriftSection:
    """Which bodies."""

    section: ClassVar[str] = "gait"

    symmetric_trunk: bool = setting(False, help="also run the Go2 without the trunk's ixy, iyz")


@dataclass(frozen=True)
class GaitDriftConfig:
    """``python -m benchmarks.gait_drift``'s run configuration."""

    duration: DurationSection = part(DurationSection, defaults={"duration_s": TrotGait.duration_s})
    physics: PhysicsStepSection = part(PhysicsStepSection)
    gait: GaitDriftSection = part(GaitDriftSection)


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(GaitDriftConfig, prog="python -m benchmarks.gait_drift",
                               description=__doc__.splitlines()[0])


def main(argv: list[str] | None = None) -> int:
    config = parse_cli(GaitDriftConfig, argv, build_parser())
    gait = TrotGait(duration_s=config.duration.duration_s)
    results = [run(gait, physics_dt_s=config.physics.physics_dt_s)]
    if config.gait.symmetric_trunk:
        results.append(run(gait, physics_dt_s=config.physics.physics_dt_s, geometry=symmetric_trunk_geometry()))
    out = {"trot": results if len(results) > 1 else results[0],
           "stance": stance_and_creep(physics_dt_s=config.physics.physics_dt_s)}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

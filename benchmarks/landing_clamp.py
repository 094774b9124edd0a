"""What clamping a landing's targets to the joint limits would take away (the safety section of
the README): the Go2 dropped from a jump's height onto flat ground, its PD targets those of a
trained landing (calves at the end of the action range, 0.538 rad past the calf's upper limit,
the rest at the default pose), once with the targets passed on as training did and once clamped to
the joint limits. Reports the calves' PD torque, the lowest trunk height and the deepest calf
flexion of each, in one run.

    python -m benchmarks.landing_clamp [--drop-m 0.35] [--json out.json]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import json
import logging
import sys
from typing import Any, ClassVar

import numpy as np

from hal.config import build_parser as build_config_parser
from hal.config import parse_cli, part, setting
from hal.config.sections import FilesSection

__all__ = ["drop", "main", "build_parser", "LandingClampConfig"]

log = logging.getLogger(__name__)


def drop(clamp: bool, drop_m: float, duration_s: float = 1.0) -> dict[str, Any]:
    """One drop of the Go2 MJCF (hal.sim.mjcf) with the landing's targets; physics-rate PD.

    Args:
        clamp: Clamp the targets to the joint limits (else pass them on, as training did).
        drop_m: Height of the feet above the ground at release (m).
        duration_s: Simulated time after release.
    """
    import mujoco

    from hal.robot import load_robot
    from hal.sim.mjcf import build_mjcf

    robot = load_robot("go2")
    model = mujoco.MjModel.from_xml_string(build_mjcf(robot, "flat"))
    data = mujoco.MjData(model)
    names = robot.joint_names_policy
    qadr = np.array([model.jnt_qposadr[model.joint(n).id] for n in robot.joint_names_hardware])
    vadr = np.array([model.jnt_dofadr[model.joint(n).id] for n in robot.joint_names_hardware])
    order = [names.index(n) for n in robot.joint_names_hardware]
    default = robot.default_angles[order]
    lower, upper = robot.position_lower[order], robot.position_upper[order]
    calves = np.array(["calf" in n for n in robot.joint_names_hardware])
    target = default.copy()
    target[calves] = default[calves] + robot.action_clip * robot.action_scale
    if clamp:
        target = np.clip(target, lower, upper)
    data.qpos[qadr] = default
    mujoco.mj_forward(model, data)
    feet_z = min(data.geom_xpos[g][2] - model.geom_size[g][0] for g in range(model.ngeom)
                 if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_SPHERE)
    data.qpos[2] += drop_m - feet_z
    kp, kd = float(robot.kp[0]), float(robot.kd[0])
    low_z, deepest_calf, calf_torque = np.inf, np.inf, []
    for _ in range(int(duration_s / model.opt.timestep)):
        q, dq = data.qpos[qadr], data.qvel[vadr]
        data.ctrl[:] = kp * (target - q) - kd * dq  # the motor clips it to ctrlrange
        mujoco.mj_step(model, data)
        low_z = min(low_z, float(data.qpos[2]))
        deepest_calf = min(deepest_calf, float(data.qpos[qadr][calves].min()))
        calf_torque.append(np.abs(data.actuator_force[calves]).mean())
    return {"targets": "clamped to the joint limits" if clamp else "passed on (training)",
            "calf_target_rad": float(target[calves][0]),
            "lowest_trunk_z_m": low_z, "deepest_calf_rad": deepest_calf,
            "mean_calf_torque_nm": float(np.mean(calf_torque)),
            "peak_calf_torque_nm": float(np.max(calf_torque))}



@dataclass(frozen=True)
class LandingSection:
    """The drop."""

    section: ClassVar[str] = "landing"

    drop_m: float = setting(0.35, metavar="M", help="feet above ground (m)")


@dataclass(frozen=True)
class LandingClampConfig:
    """``python -m benchmarks.landing_clamp``'s run configuration."""

    landing: LandingSection = part(LandingSection)
    files: FilesSection = part(FilesSection, only=("json_path",))


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(LandingClampConfig, prog="python -m benchmarks.landing_clamp",
                               description=__doc__.split("\n\n")[0])


def main(argv: list[str] | None = None) -> int:
    config = parse_cli(LandingClampConfig, argv, build_parser())
    results = [drop(False, config.landing.drop_m), drop(True, config.landing.drop_m)]
    for row in results:
        sys.stdout.write(f"{row['targets']:<30} calf target {row['calf_target_rad']:+.3f} rad: "
                         f"lowest trunk {row['lowest_trunk_z_m']:.3f} m, deepest calf "
                         f"{row['deepest_calf_rad']:+.3f} rad, calf torque mean "
                         f"{row['mean_calf_torque_nm']:.1f} / peak "
                         f"{row['peak_calf_torque_nm']:.1f} N·m\n")
    ratio = results[1]["mean_calf_torque_nm"] / results[0]["mean_calf_torque_nm"]
    sys.stdout.write(f"clamped / passed mean calf torque: {ratio:.2f}\n")
    if config.files.json_path:
        with open(config.files.json_path, "w", encoding="utf-8") as f:
            json.dump({"drop_m": config.landing.drop_m, "results": results, "torque_ratio": ratio}, f,
                      indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Print the simulator's MJCF for a robot and scene, or regenerate the committed assets.

Usage::

    python -m hal.sim --robot go2 --scene parkour > go2_parkour.xml
    python -m hal.sim --write-assets      # after changing hal/sim/mjcf.py or go2.toml
    python -m mujoco.viewer --mjcf=hal/sim/assets/go2_parkour.xml   # to look at it
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import ClassVar

from hal.config import build_parser as build_config_parser
from hal.config import parse_cli, part, setting
from hal.config.sections import RobotSection, SceneSection
from hal.robot import RobotDefinitionError, load_robot
from hal.sim.mjcf import ASSET_SCENES, asset_path, build_mjcf
from hal.sim.scenes import SCENES

__all__ = ["main", "build_parser", "MjcfConfig"]


@dataclass(frozen=True)
class MjcfSection:
    """What to write."""

    section: ClassVar[str] = "mjcf"

    write_assets: bool = setting(False, help="regenerate hal/sim/assets/go2_{flat,parkour}.xml")


@dataclass(frozen=True)
class MjcfConfig:
    """``python -m hal.sim``'s run configuration."""

    robot: RobotSection = part(RobotSection)
    scene: SceneSection = part(SceneSection, only=("scene",))
    mjcf: MjcfSection = part(MjcfSection)


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(MjcfConfig, prog="python -m hal.sim",
                               description="Write the simulator's MJCF for a robot (scenes: "
                                           f"{', '.join(SCENES)}).")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    config = parse_cli(MjcfConfig, argv, parser)
    if config.mjcf.write_assets:
        robot = load_robot("go2")
        for scene in ASSET_SCENES:
            path = asset_path("go2", scene)
            path.write_text(build_mjcf(robot, scene))
            print(f"wrote {path}")
        return 0
    try:
        print(build_mjcf(load_robot(config.robot.robot), config.scene.scene), end="")
    except (ValueError, RobotDefinitionError) as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Print the simulator's MJCF for a robot and scene, or regenerate the committed assets.

Usage::

    python -m hal.sim --robot go2 --scene parkour > go2_parkour.xml
    python -m hal.sim --write-assets      # after changing hal/sim/mjcf.py or go2.toml
    python -m mujoco.viewer --mjcf=hal/sim/assets/go2_parkour.xml   # to look at it
"""

from __future__ import annotations

import argparse

from hal.robot import RobotDefinitionError, load_robot
from hal.sim.mjcf import ASSET_SCENES, asset_path, build_mjcf
from hal.sim.scenes import SCENES

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hal.sim",
                                     description="Write the simulator's MJCF for a robot.")
    parser.add_argument("--robot", default="go2", help="shipped robot name or TOML path (default go2)")
    parser.add_argument("--scene", default="flat", choices=SCENES)
    parser.add_argument("--write-assets", action="store_true",
                        help="regenerate hal/sim/assets/go2_{flat,parkour}.xml")
    args = parser.parse_args(argv)
    if args.write_assets:
        robot = load_robot("go2")
        for scene in ASSET_SCENES:
            path = asset_path("go2", scene)
            path.write_text(build_mjcf(robot, scene))
            print(f"wrote {path}")
        return 0
    try:
        print(build_mjcf(load_robot(args.robot), args.scene), end="")
    except (ValueError, RobotDefinitionError) as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

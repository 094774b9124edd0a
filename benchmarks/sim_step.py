"""Simulator step cost per control tick: ``MujocoWorld.advance(0.01)`` (100 Hz), Go2, flat scene.

Cases, measured in one run:

- ``tick_no_frame``: ticks in which no depth frame fell due (physics + PD + sensors);
- ``tick_with_frame``: ticks that also ray-cast a 106x60 depth frame (30 fps of sim time);
- ``tick_camera_off``: the same ticks with the camera disabled (``camera_fps=0``);
- ``tick_render_thread``: every tick with the camera casting on its own thread (what a real-time
  ``krabby-hal-server-sim`` runs): the cast leaves the control thread.

Run: ``python -m benchmarks.sim_step`` (``--full`` for 10x more ticks). Prints JSON (µs).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import json
import time
from typing import Any

from benchmarks.common import machine_description, stats_us
from hal.robot import load_robot
from hal.sim import MujocoWorld, MujocoWorldConfig

from hal.config import build_parser as build_config_parser
from hal.config import parse_cli, part
from hal.config.sections import MeasureSection
from benchmarks.common import PhysicsStepSection

__all__ = ["run", "build_parser", "SimStepBenchConfig"]

TICK_S = 0.01


def _ticks(world: MujocoWorld, n: int) -> tuple[list[int], list[int]]:
    """Durations (ns) of ``n`` ticks, split into (no frame rendered, frame rendered)."""
    plain, framed = [], []
    for _ in range(n):
        seq = world.depth_frame_seq
        start = time.perf_counter_ns()
        world.advance(TICK_S)
        elapsed = time.perf_counter_ns() - start
        (framed if world.depth_frame_seq != seq else plain).append(elapsed)
    return plain, framed


def run(quick: bool = True, physics_dt_s: float = 0.005) -> dict[str, Any]:
    n = 1500 if quick else 15000
    robot = load_robot("go2")
    world = MujocoWorld(robot, MujocoWorldConfig(physics_dt_s=physics_dt_s, camera_fps=30.0))
    _ticks(world, 50)  # warm-up
    plain, framed = _ticks(world, n)
    off = MujocoWorld(robot, MujocoWorldConfig(physics_dt_s=physics_dt_s, camera_fps=0.0))
    _ticks(off, 50)
    camera_off, _ = _ticks(off, n)
    threaded = MujocoWorld(robot, MujocoWorldConfig(physics_dt_s=physics_dt_s, camera_fps=30.0,
                                                    render_thread=True))
    _ticks(threaded, 50)
    threaded_plain, threaded_framed = _ticks(threaded, n)
    threaded.close()
    return {
        "robot": robot.name,
        "scene": "flat",
        "tick_s": TICK_S,
        "physics_dt_s": physics_dt_s,
        "camera": "106x60 @ 30 fps (sim time)",
        "cases": {
            "tick_no_frame": stats_us(plain),
            "tick_with_frame": stats_us(framed),
            "tick_camera_off": stats_us(camera_off),
            "tick_render_thread": stats_us(threaded_plain + threaded_framed),
        },
        "machine": machine_description(),
    }




@dataclass(frozen=True)
class SimStepBenchConfig:
    """``python -m benchmarks.sim_step``'s run configuration."""

    measure: MeasureSection = part(MeasureSection, only=("full",))
    physics: PhysicsStepSection = part(PhysicsStepSection)


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(SimStepBenchConfig, prog="python -m benchmarks.sim_step",
                               description=__doc__.splitlines()[0])


def main(argv: list[str] | None = None) -> int:
    config = parse_cli(SimStepBenchConfig, argv, build_parser())
    print(json.dumps(run(quick=not config.measure.full, physics_dt_s=config.physics.physics_dt_s), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Evaluation throughput: ``krabby-eval`` episodes per minute and their real-time factor on one
core, against the bare ``MujocoWorld.advance`` on the same terrain, measured in one run.

Cases (each repeated ``episodes`` times, one episode at a time in this process):

- ``episode_teacher``: a scan teacher's episode through the whole appliance (HAL server, safety
  layer, inference client, MuJoCo world, height scan; no camera), ``--fast`` lockstep;
- ``episode_student``: a depth student's episode (the camera renders a frame per depth step);
- ``bare_advance``: the same simulated seconds of ``MujocoWorld.advance`` at the policy rate
  (physics, PD, sensors), no appliance: the floor the appliance's overhead sits on.

For each: wall seconds per episode (median, p99 over the repeats), the real-time factor
(simulated seconds from the start of the stand-up to the end / wall seconds, median) and the
episodes per minute on one core. The policies are synthetic (untrained): episodes run their full
length (no goal reached, no fall), which is the most expensive case.

Run: ``python -m benchmarks.eval_throughput`` (``--episodes N``, ``--episode-s S``). Prints JSON.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import contextlib
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import machine_description

from hal.config import build_parser as build_config_parser
from hal.config import parse_cli, part
from hal.config.sections import EpisodeSection

__all__ = ["run", "build_parser", "EvalThroughputConfig"]

STAND_UP_S = 2.6
"""Simulated seconds from the start to the hand-over (stand-up ramp and entry gate)."""


def _engines(directory: Path) -> dict[str, Path]:
    from compute.parkour.synthetic import write_synthetic_checkpoint
    from export.cli import main as export_main
    from hal.robot import load_robot

    robot = load_robot("go2")
    out = {}
    for name, teacher in (("teacher", True), ("student", False)):
        checkpoint = write_synthetic_checkpoint(directory / f"{name}.pt", robot, seed=4,
                                                teacher=teacher)
        if export_main(["--checkpoint", str(checkpoint), "--parity-samples", "2", "--quiet"]) != 0:
            raise RuntimeError(f"krabby-export failed on the synthetic {name}")
        out[name] = directory / f"{name}.onnx"
    return out


def _summary(walls_s: list[float], sim_s: float) -> dict[str, Any]:
    walls = np.asarray(walls_s)
    p50, p99 = np.percentile(walls, [50, 99])
    return {"episodes": len(walls_s), "sim_s_per_episode": round(sim_s, 3),
            "wall_s_p50": round(float(p50), 4), "wall_s_p99": round(float(p99), 4),
            "real_time_factor_p50": round(sim_s / float(p50), 2),
            "episodes_per_minute_per_core": round(60.0 / float(p50), 2)}


def run(episodes: int = 5, episode_s: float = 20.0, terrain: str = "gap",
        difficulty: float = 0.5) -> dict[str, Any]:
    from hal.eval.episode import EpisodeSpec, run_episode
    from hal.robot import load_robot
    from hal.sim import MujocoWorld, MujocoWorldConfig
    from compute.parkour.layout import scan_points_xy

    logging.getLogger().setLevel(logging.ERROR)  # each episode's shutdown warning is noise here
    cases: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        with contextlib.redirect_stdout(sys.stderr):  # the export's summary; stdout is JSON
            engines = _engines(Path(tmp))
        for name, engine in engines.items():
            spec = EpisodeSpec(engine=str(engine), terrain=terrain, difficulty=difficulty,
                               seed=1, episode_s=episode_s)
            run_episode(spec)  # warm-up: imports, first engine session
            walls, sims = [], []
            for k in range(episodes):
                result = run_episode(EpisodeSpec(**{**spec.to_dict(), "seed": k}))
                walls.append(result["wall_s"])
                sims.append(result["sim_s"] + STAND_UP_S)
            cases[f"episode_{name}"] = _summary(walls, float(np.median(sims)))
    robot = load_robot("go2")
    points = scan_points_xy()
    scan = np.empty(len(points))
    walls = []
    sim_s = episode_s + STAND_UP_S
    for _ in range(episodes):
        start = time.perf_counter_ns()
        world = MujocoWorld(robot, MujocoWorldConfig(scene=f"{terrain}:{difficulty:g}",
                                                     camera_fps=0, seed=1))
        for _ in range(int(round(sim_s * 50))):
            world.advance(0.02)
            world.height_scan(points, scan)
        walls.append((time.perf_counter_ns() - start) / 1e9)
    cases["bare_advance"] = _summary(walls, sim_s)
    teacher = cases["episode_teacher"]["wall_s_p50"]
    return {
        "terrain": f"{terrain}:{difficulty:g}", "episode_s": episode_s,
        "cases": cases,
        "ratios": {"teacher_episode_over_bare_advance": round(
            teacher / cases["bare_advance"]["wall_s_p50"], 2),
            "student_episode_over_teacher_episode": round(
                cases["episode_student"]["wall_s_p50"] / teacher, 2)},
        "machine": machine_description(),
    }




@dataclass(frozen=True)
class EvalThroughputConfig:
    """``python -m benchmarks.eval_throughput``'s run configuration."""

    episode: EpisodeSection = part(EpisodeSection, only=("episodes", "episode_s"),
                                    defaults={"episodes": 5})


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(EvalThroughputConfig, prog="python -m benchmarks.eval_throughput",
                               description=__doc__.splitlines()[0])


def main(argv: list[str] | None = None) -> int:
    config = parse_cli(EvalThroughputConfig, argv, build_parser())
    print(json.dumps(run(episodes=config.episode.episodes, episode_s=config.episode.episode_s), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``krabby-eval``: score a policy on training's terrains through the simulated appliance.

Every episode runs the HAL server, the safety layer, the inference client and the MuJoCo world
of ``krabby-hal-server-sim --fast`` (in lockstep: a pure function of engine, terrain,
difficulty and seed), on one terrain at one difficulty, with the seed's randomisation. Episodes
run in parallel worker processes (or as Ray tasks with ``--ray``); ``eval.json`` holds one cell
per terrain × difficulty (see :mod:`hal.eval.summary`).

Examples::

    krabby-eval --engine model.onnx --terrains gap,step,hurdle --difficulties 0.2,0.5,0.8 \\
        --episodes 10 --report eval.json --plot eval.png
    krabby-eval --engine old.onnx --engine new.onnx --terrains gap --episodes 20
    krabby-eval --engine model.onnx --ray ray://head:10001     # on a trusted, isolated network
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from hal.config import build_parser as build_config_parser
from hal.config import config_to_dict, parse_cli, part, setting
from hal.config.sections import (
    ENGINE,
    CommandSection,
    EpisodeSection,
    FilesSection,
    OutputSection,
    RobotSection,
    SceneSection,
)
from hal.eval.episode import EpisodeSpec
from hal.eval.summary import differences, overall_success_rate, summarise_cells

__all__ = ["main", "build_parser", "build_specs", "evaluate", "EvalConfig", "EvalSection",
           "EvalPolicySection"]

log = logging.getLogger(__name__)


class _Usage(Exception):
    pass


@dataclass(frozen=True)
class EvalPolicySection:
    """The engines scored: one, or two compared on the same seeds."""

    section: ClassVar[str] = "policy"

    engines: list[str] = setting(default_factory=list, like=ENGINE, repeat=True)


@dataclass(frozen=True)
class EvalSection:
    """krabby-eval's own settings: the grid of cells and where the episodes run."""

    section: ClassVar[str] = "eval"

    terrains: str = setting("gap,hurdle,step,stones", metavar="T1,T2",
                            help="comma-separated terrain types")
    difficulties: str = setting("0.2,0.5,0.8", metavar="D1,D2",
                                help="comma-separated difficulties in [0, 1]")
    workers: int | None = setting(None, metavar="N",
                                  help="worker processes (default: one per CPU)")
    ray: str | None = setting(None, nargs="?", const="", metavar="ADDRESS",
                              help="run the episodes as Ray tasks on the cluster at ADDRESS (none: "
                                   "a local Ray instance); pip install 'krabby[ray]'. Keep a Ray "
                                   "cluster on a trusted, isolated network")
    video_worst: bool = setting(False, help="re-run the worst episode of each cell with a video "
                                            "beside the report (krabby[video], EGL or OSMesa)")


@dataclass(frozen=True)
class EvalConfig:
    """krabby-eval's run configuration (the report's ``config``)."""

    policy: EvalPolicySection = part(EvalPolicySection, required=("engines",))
    robot: RobotSection = part(RobotSection)
    scene: SceneSection = part(SceneSection, only=("seed",))
    episode: EpisodeSection = part(EpisodeSection)
    command: CommandSection = part(CommandSection, only=("speed_m_s",),
                                   defaults={"speed_m_s": 1.0})
    eval: EvalSection = part(EvalSection)
    output: OutputSection = part(OutputSection,
                                 defaults={"report": "eval.json", "log_level": "WARNING"})
    files: FilesSection = part(FilesSection, only=("plot",))


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(EvalConfig, prog="krabby-eval",
                               description=__doc__.split("\n\n")[0],
                               epilog="Give --engine twice to compare two policies on the "
                                      "same seeds. The episodes of a cell use seeds SEED .. "
                                      "SEED+episodes-1.")


def _floats(text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise _Usage(f"--{what} {text!r}: give comma-separated numbers in [0, 1]") from None
    bad = [v for v in values if not (math.isfinite(v) and 0.0 <= v <= 1.0)]
    if not values or bad:
        raise _Usage(f"--{what} {text!r}: every difficulty must be in [0, 1]")
    return values


def build_specs(config: EvalConfig, engine: str) -> list[EpisodeSpec]:
    """The episodes of one engine: terrains × difficulties × seeds."""
    from hal.sim.terrains import TERRAIN_TYPES

    terrains = [t.strip() for t in config.eval.terrains.split(",") if t.strip()]
    unknown = [t for t in terrains if t not in TERRAIN_TYPES]
    if not terrains or unknown:
        raise _Usage(f"--terrains {config.eval.terrains!r}: unknown {unknown}; valid: "
                     f"{', '.join(TERRAIN_TYPES)}")
    return [EpisodeSpec(engine=engine, terrain=t, difficulty=d, seed=config.scene.seed + k,
                        episode_s=config.episode.episode_s, randomize=config.episode.randomize is not False,
                        speed_m_s=config.command.speed_m_s, robot=config.robot.robot)
            for t in terrains for d in _floats(config.eval.difficulties, "difficulties")
            for k in range(config.episode.episodes)]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _machine() -> dict[str, Any]:
    return {"node": platform.node(), "machine": platform.machine(),
            "processor": platform.processor(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "system": platform.platform()}


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("krabby")
    except Exception:  # noqa: BLE001 - not installed (a checkout on PYTHONPATH)
        return "unknown"


class _Progress:
    """A one-line progress bar with an ETA on stderr."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.start = time.perf_counter_ns()

    def __call__(self, done: int, total: int, result: dict[str, Any]) -> None:
        elapsed = (time.perf_counter_ns() - self.start) / 1e9
        eta = elapsed / done * (total - done)
        width = 30
        bar = "#" * int(width * done / total) + "." * (width - int(width * done / total))
        sys.stderr.write(f"\r[{bar}] {done}/{total} episodes, {elapsed:.0f} s, ETA {eta:.0f} s "
                         f"(last: {result['terrain']}:{result['difficulty']:g} seed "
                         f"{result['seed']} {'ok' if result['success'] else 'fail'})   ")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def evaluate(config: EvalConfig) -> dict[str, Any]:
    """Run every engine's episodes; returns the ``eval.json`` content."""
    from hal.eval.runners import default_workers, run_local, run_ray

    engines = [Path(e) for e in config.policy.engines]
    if len(engines) > 2:
        raise _Usage(f"--engine given {len(engines)} times: compare at most two")
    for engine in engines:
        if not engine.is_file():
            raise _Usage(f"--engine {engine}: no such file")
    specs = {str(e): build_specs(config, str(e)) for e in engines}
    everything = [s for group in specs.values() for s in group]
    workers = config.eval.workers or default_workers()
    progress = _Progress(len(everything))
    start = time.perf_counter_ns()
    if config.eval.ray is not None:
        results = run_ray(everything, config.eval.ray or None, num_cpus=workers, progress=progress)
    else:
        results = run_local(everything, workers, progress)
    wall_s = (time.perf_counter_ns() - start) / 1e9
    report: dict[str, Any] = {
        "krabby_version": _version(), "machine": _machine(),
        "settings": {"terrains": config.eval.terrains, "difficulties": config.eval.difficulties,
                     "episodes": config.episode.episodes, "seed": config.scene.seed,
                     "episode_s": config.episode.episode_s, "speed_m_s": config.command.speed_m_s,
                     "randomize": config.episode.randomize is not False, "robot": config.robot.robot,
                     "runner": "ray" if config.eval.ray is not None else "local",
                     "workers": workers},
        "config": config_to_dict(config),
        "wall_s": round(wall_s, 3),
        "sim_s": round(sum(r["sim_s"] for r in results), 3),
        "engines": []}
    for engine in engines:
        mine = [r for r in results if r["engine"] == str(engine)]
        cells = summarise_cells(mine)
        report["engines"].append({"engine": str(engine), "sha256": _sha256(engine),
                                  "overall_success_rate": overall_success_rate(cells),
                                  "cells": cells, "episodes": mine})
    first = report["engines"][0]
    # the first (or only) engine's figures at the top level too
    report.update({"engine_sha256": first["sha256"], "cells": first["cells"],
                   "overall_success_rate": first["overall_success_rate"]})
    if len(engines) == 2:
        report["differences"] = differences(first["cells"], report["engines"][1]["cells"])
    return report


def _video_worst(report: dict[str, Any], config: EvalConfig, directory: Path) -> None:
    """Re-run each cell's worst episode (least progress, then most edge violations) with video."""
    from dataclasses import replace

    from hal.eval.episode import run_episode

    for entry in report["engines"]:
        for cell in entry["cells"]:
            episodes = [e for e in entry["episodes"] if e["terrain"] == cell["terrain"]
                        and e["difficulty"] == cell["difficulty"]]
            worst = min(episodes,
                        key=lambda e: (e["success"], e["progress"], -e["edge_violations"]))
            spec = build_specs(config, entry["engine"])[0]
            path = directory / (f"worst_{Path(entry['engine']).stem}_{cell['terrain']}_"
                                f"{cell['difficulty']:g}_seed{worst['seed']}.mp4")
            again = run_episode(replace(spec, terrain=cell["terrain"],
                                        difficulty=cell["difficulty"], seed=worst["seed"],
                                        video=str(path)))
            cell["worst_video"] = again["video"]


def format_table(report: dict[str, Any]) -> str:
    lines = []
    for entry in report["engines"]:
        lines.append(f"{entry['engine']} (sha256 {entry['sha256'][:12]}): overall success "
                     f"{entry['overall_success_rate']:.0%}")
        lines.append(f"  {'terrain':<12}{'d':>5}{'n':>4}{'success':>9}{'95% CI':>14}"
                     f"{'progress':>10}{'x':>7}{'edges/ep':>10}{'falls':>7}  trips")
        for c in entry["cells"]:
            lo, hi = c["success_rate_ci95"]
            lines.append(f"  {c['terrain']:<12}{c['difficulty']:>5g}{c['episodes']:>4}"
                         f"{c['success_rate']:>9.0%}{f'{lo:.0%}-{hi:.0%}':>14}"
                         f"{c['mean_progress']:>10.0%}{c['mean_x_displacement']:>7.0%}"
                         f"{c['edge_violations_per_episode']:>10.2f}{c['falls']:>7}  "
                         f"{c['safety_trips'] or '-'}")
    for d in report.get("differences", []):
        lines.append(f"  difference {d['terrain']}:{d['difficulty']:g}: success "
                     f"{d['success_rate']:+.0%}, progress {d['mean_progress']:+.0%}")
    lines.append(f"{sum(len(e['episodes']) for e in report['engines'])} episodes, "
                 f"{report['sim_s']:.0f} simulated s in {report['wall_s']:.1f} s wall")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    config = parse_cli(EvalConfig, argv, parser)
    config.output.configure_logging()
    if config.eval.ray is not None:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        if config.eval.workers is not None and config.eval.workers < 1:
            raise _Usage(f"--workers {config.eval.workers}: must be at least 1")
        report = evaluate(config)
        path = Path(config.output.report)
        if config.eval.video_worst:
            _video_worst(report, config, path.parent)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
        if config.files.plot:
            from hal.eval.plot import plot_eval

            plot_eval(report, config.files.plot)
    except _Usage as exc:
        print(f"krabby-eval: {exc}", file=sys.stderr)
        return 2
    print(format_table(report), flush=True)
    print(f"report: {path}" + (f", plot: {config.files.plot}" if config.files.plot else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

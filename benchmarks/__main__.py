"""``python -m benchmarks`` (``krabby-bench``): every latency benchmark side by side in one run.

Cases, each against its baseline measured in the same run:

- ``engine_step`` — actor and depth step per backend (TensorRT when present / ONNX Runtime /
  torch eager / TorchScript), ratios to torch eager;
- ``transport`` — observation out and command back: inproc zero-copy slots vs inproc serialised
  vs tcp vs the naive pickle/JSON messages, for a training-size and a ZED-VGA-size depth frame;
- ``e2e`` — the appliance in the simulator: obs_to_command and loop jitter at 100 and 500 Hz, with
  and without the depth thread and the garbage-collector control, and the naive loop (torch eager,
  JSON/pickle over ZMQ, ``sleep(period)`` after the work) — the headline ratio;
- ``sim_step`` — the simulator's own cost per tick (to subtract from the e2e figures);
- ``recorder`` — the flight recorder's cost per tick, on vs off.
- ``live`` — the live view's (``--live``) cost per tick: off, on without a client, on with one.
- ``eval_throughput`` — krabby-eval episodes per minute and real-time factor against the bare
  ``MujocoWorld.advance`` (:mod:`benchmarks.eval_throughput`).

Writes ``results.json`` and PNG plots into ``--out`` and prints a short table. ``--quick`` keeps
the whole run under about two minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import logging
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

from benchmarks.common import machine_description, write_json

from hal.config import build_parser as build_config_parser
from hal.config import parse_cli, part, setting
from hal.config.sections import FilesSection

__all__ = ["main", "CASES", "build_parser", "BenchConfig"]

CASES = ("engine_step", "transport", "e2e", "sim_step", "recorder", "live", "eval_throughput")
log = logging.getLogger(__name__)


def _prepare_policy(directory: Path) -> Path:
    """A synthetic depth student, exported (ONNX + manifest) like on the robot."""
    from compute.parkour.synthetic import main as make_checkpoint
    from export.cli import main as export_main

    directory.mkdir(parents=True, exist_ok=True)
    checkpoint = directory / "model.pt"
    if make_checkpoint(["--output", str(checkpoint), "--robot", "go2", "--seed", "0"]) != 0:
        raise RuntimeError("could not write the synthetic checkpoint")
    if export_main(["--checkpoint", str(checkpoint), "--robot", "go2", "--parity-samples", "4"]) != 0:
        raise RuntimeError("krabby-export failed on the synthetic checkpoint")
    return directory


def _run_case(name: str, out_dir: Path, quick: bool, policy_dir: Path) -> dict[str, Any]:
    if name == "engine_step":
        from benchmarks import engine_step

        return engine_step.run(out_dir, quick=quick)
    if name == "transport":
        from benchmarks import transport

        return transport.run(quick=quick)
    if name == "e2e":
        from benchmarks import e2e

        return e2e.run(policy_dir, quick=quick)
    if name == "sim_step":
        from benchmarks import sim_step

        return sim_step.run(quick=quick)
    if name == "recorder":
        from benchmarks import recorder_cost

        return recorder_cost.run(quick=quick)
    if name == "live":
        from benchmarks import live_cost

        return live_cost.run(quick=quick)
    if name == "eval_throughput":
        from benchmarks import eval_throughput

        return eval_throughput.run(episodes=2 if quick else 5, episode_s=10.0 if quick else 20.0)
    raise ValueError(f"unknown case {name!r}; valid: {CASES}")


def _row(label: str, stats: dict[str, Any]) -> str:
    return f"  {label:<44}{stats.get('p50', float('nan')):>10.1f}{stats.get('p99', float('nan')):>10.1f}"


def summary_table(results: dict[str, Any]) -> str:
    lines = [f"  {'case':<44}{'p50 µs':>10}{'p99 µs':>10}"]
    for graph, block in results.get("engine_step", {}).get("graphs", {}).items():
        for backend, stats in block["cases"].items():
            lines.append(_row(f"engine {graph} step, {backend}", stats))
    for label, block in results.get("transport", {}).items():
        for name, stats in block["cases"].items():
            lines.append(_row(f"transport {label}, {name}", stats))
    for name, case in results.get("e2e", {}).get("cases", {}).items():
        lines.append(_row(f"e2e {name} obs_to_command", case["obs_to_command"]))
        jitter = case.get("loop_jitter") or case.get("period_error")
        lines.append(_row(f"e2e {name} {'loop_jitter' if 'loop_jitter' in case else 'period_error'}",
                          jitter))
    sweep = results.get("e2e", {}).get("rate_sweep")
    if sweep:
        misses = ", ".join(f"{rate} Hz: {row['deadline_misses']}/{row['cycles']}"
                           for rate, row in sweep["rates"].items())
        lines.append(f"deadline misses by rate ({sweep['seconds_per_rate']:g} s each): {misses}; "
                     f"highest without a miss: {sweep['highest_rate_without_misses_hz']} Hz")
    for name, case in results.get("eval_throughput", {}).get("cases", {}).items():
        lines.append(f"  eval {name}: {case['real_time_factor_p50']}x real time, "
                     f"{case['episodes_per_minute_per_core']} episodes/min/core")
    headline = results.get("e2e", {}).get("headline")
    if headline:
        lines.append("headline ratios (same run):")
        lines += [f"  {k}: {v}" for k, v in headline.items()]
    return "\n".join(lines)



@dataclass(frozen=True)
class BenchSuiteSection:
    """Which cases, how long."""

    section: ClassVar[str] = "bench"

    quick: bool = setting(False, help="short runs (CI-sized, ~2 minutes)")
    cases: list[str] = setting(default_factory=lambda: list(CASES), nargs="+", choices=CASES,
                               help="the cases to run")
    plots: bool = setting(True, negate="--no-plots", help="no PNG plots")


@dataclass(frozen=True)
class BenchConfig:
    """``python -m benchmarks``'s run configuration."""

    bench: BenchSuiteSection = part(BenchSuiteSection)
    files: FilesSection = part(FilesSection, only=("out",), defaults={"out": "bench-results"})


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(BenchConfig, prog="python -m benchmarks",
                               description=__doc__.split("\n")[0])


def main(argv: list[str] | None = None) -> int:
    config = parse_cli(BenchConfig, argv, build_parser())
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    out_dir = Path(config.files.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    policy_dir = _prepare_policy(out_dir / "policy")
    results: dict[str, Any] = {"quick": config.bench.quick, "machine": machine_description()}
    series: dict[str, dict[str, list[float]]] = {}
    for name in config.bench.cases:
        t0 = time.monotonic()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        result = _run_case(name, out_dir, config.bench.quick, policy_dir)
        if name == "e2e":
            for case_name, case in result["cases"].items():
                series[case_name] = case.pop("_series", {})
        results[name] = result
        results.setdefault("seconds", {})[name] = round(time.monotonic() - t0, 1)
    results["seconds"]["total"] = round(time.monotonic() - started, 1)
    write_json(out_dir / "results.json", results)
    written = []
    if config.bench.plots and series:
        from benchmarks.plots import write_plots

        written = write_plots(results, series, out_dir)
    print(summary_table(results))
    print(f"wrote {out_dir / 'results.json'}" + "".join(f", {p.name}" for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())

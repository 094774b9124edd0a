"""A/B of two commits in one run: the appliance's obs_to_command and actor step, base vs head.

``python -m benchmarks.ab --base <rev> [--head <rev>]`` extracts the commits (``git archive``;
without ``--head`` the working tree is the head) and runs :func:`benchmarks.e2e.run_krabby` (the
100 Hz appliance in the simulator, depth thread and GC control on) from each tree in turn, in a
fresh process per run, alternating the order every round (A B, B A, ...) so that load drifting on
a shared machine falls on both sides.
Both sides open the same exported policy. It reports, per side, the median over rounds of each
run's p50 and p99, the p50/p99 of all obs_to_command samples pooled, and head / base ratios.

A change to the hot path is judged here, not by timing it alone: what counts is what the loop
sees, and only a comparison within one run on the same machine separates it from the noise.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchmarks.common import machine_description, write_json

from hal.config import build_parser as build_config_parser
from hal.config import parse_cli, part, setting
from hal.config.sections import FilesSection, MeasureSection

__all__ = ["main", "run_ab", "build_parser", "AbConfig"]

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parent.parent

# Runs in the child with the tree first on sys.path; refuses to measure the wrong tree.
_CHILD = """
import json, sys
from pathlib import Path
tree, policy, rate, seconds, out = sys.argv[1:6]
sys.path.insert(0, tree)
import benchmarks.e2e as e2e
if not Path(e2e.__file__).resolve().is_relative_to(Path(tree).resolve()):
    sys.exit(f"benchmarks.e2e came from {e2e.__file__}, not from {tree}")
case = e2e.run_krabby(Path(policy), float(rate), float(seconds), tag="ab")
series = case.pop("_series")
Path(out).write_text(json.dumps({"obs_to_command": case["obs_to_command"],
                                 "actor_step": case["actor_step"],
                                 "deadline_misses": case["deadline_misses"],
                                 "cycles": case["cycles"],
                                 "obs_to_command_us": series["obs_to_command_us"]}))
"""


def _extract(rev: str, into: Path) -> str:
    """``git archive rev`` unpacked into ``into``; returns the full commit hash."""
    commit = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=REPO,
                            capture_output=True, text=True, timeout=30)
    if commit.returncode != 0:
        raise SystemExit(f"{rev!r} is not a commit of {REPO}: {commit.stderr.strip()}")
    into.mkdir(parents=True)
    archive = subprocess.Popen(["git", "archive", commit.stdout.strip()], cwd=REPO,
                               stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout, check=True, timeout=120)
    archive.stdout.close()
    if archive.wait(timeout=30) != 0:
        raise SystemExit(f"git archive {rev} failed")
    return commit.stdout.strip()


def _run_side(tree: Path, policy_dir: Path, rate_hz: float, seconds: float,
              out: Path) -> dict[str, Any]:
    """One appliance run from ``tree`` in a fresh process (killed if it overruns)."""
    cmd = [sys.executable, "-c", _CHILD, str(tree), str(policy_dir / "model.onnx"), str(rate_hz),
           str(seconds), str(out)]
    try:
        proc = subprocess.run(cmd, cwd=tree, capture_output=True, text=True,
                              timeout=seconds + 120)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"the run from {tree} did not finish within {seconds + 120:.0f} s") from None
    if proc.returncode != 0:
        raise SystemExit(f"the run from {tree} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(out.read_text())


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    pooled = np.concatenate([np.asarray(r["obs_to_command_us"]) for r in runs])
    out: dict[str, Any] = {}
    for metric in ("obs_to_command", "actor_step"):
        out[metric] = {q: round(statistics.median(r[metric][q] for r in runs), 2)
                       for q in ("p50", "p99")}
    p50, p99 = np.percentile(pooled, [50, 99])
    out["obs_to_command_pooled"] = {"count": int(pooled.size), "p50": round(float(p50), 2),
                                    "p99": round(float(p99), 2)}
    out["deadline_misses"] = sum(r["deadline_misses"] for r in runs)
    out["cycles"] = sum(r["cycles"] for r in runs)
    out["per_round"] = [{m: {q: r[m][q] for q in ("p50", "p99")}
                         for m in ("obs_to_command", "actor_step")} for r in runs]
    return out


def run_ab(base: str, head: str | None, policy_dir: Path, rounds: int, seconds: float,
           rate_hz: float, work_dir: Path) -> dict[str, Any]:
    """Alternate base and head runs ``rounds`` times; returns both summaries and the ratios.

    ``head`` None measures the working tree.
    """
    commit = _extract(base, work_dir / "base")
    head_commit = _extract(head, work_dir / "head") if head else "working tree"
    trees = {"base": work_dir / "base", "head": work_dir / "head" if head else REPO}
    runs: dict[str, list[dict[str, Any]]] = {"base": [], "head": []}
    for k in range(rounds):
        for side in (("base", "head") if k % 2 == 0 else ("head", "base")):
            log.warning("round %d/%d: %s", k + 1, rounds, side)
            runs[side].append(_run_side(trees[side], policy_dir, rate_hz, seconds,
                                        work_dir / f"{side}_{k}.json"))
    summary = {side: _summary(side_runs) for side, side_runs in runs.items()}
    ratios = {f"{metric}_{q}_head_over_base": round(summary["head"][metric][q]
                                                    / summary["base"][metric][q], 3)
              for metric in ("obs_to_command", "actor_step", "obs_to_command_pooled")
              for q in ("p50", "p99")}
    return {"base_commit": commit, "head_commit": head_commit, "rounds": rounds,
            "seconds_per_run": seconds, "rate_hz": rate_hz, **summary, "ratios": ratios}



@dataclass(frozen=True)
class AbSection:
    """The two commits compared."""

    section: ClassVar[str] = "ab"

    base: str | None = setting(None, help="the commit to compare the working tree with")
    head: str | None = setting(None, help="the commit measured against it (default: the working "
                                          "tree)")


@dataclass(frozen=True)
class AbConfig:
    """``python -m benchmarks.ab``'s run configuration."""

    ab: AbSection = part(AbSection, required=("base",))
    measure: MeasureSection = part(MeasureSection, only=("rounds", "seconds", "rate_hz"),
                                   defaults={"seconds": 20.0})
    files: FilesSection = part(FilesSection, only=("out",), defaults={"out": "bench-ab"})


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(AbConfig, prog="python -m benchmarks.ab",
                               description=__doc__.split("\n")[0])


def main(argv: list[str] | None = None) -> int:
    config = parse_cli(AbConfig, argv, build_parser())
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    out_dir = Path(config.files.out)
    started = time.monotonic()
    from benchmarks.__main__ import _prepare_policy

    policy_dir = _prepare_policy(out_dir / "policy")
    with tempfile.TemporaryDirectory(prefix="krabby-ab-") as work:
        measure = config.measure
        result = run_ab(config.ab.base, config.ab.head, policy_dir, measure.rounds, measure.seconds,
                        measure.rate_hz, Path(work))
    result["machine"] = machine_description()
    result["seconds_total"] = round(time.monotonic() - started, 1)
    write_json(out_dir / "ab.json", result)
    for metric in ("obs_to_command", "actor_step", "obs_to_command_pooled"):
        b, h = result["base"][metric], result["head"][metric]
        print(f"{metric:<24} base p50 {b['p50']:>8.1f} p99 {b['p99']:>8.1f} | head p50 "
              f"{h['p50']:>8.1f} p99 {h['p99']:>8.1f} | head/base p50 "
              f"{result['ratios'][f'{metric}_p50_head_over_base']:.3f} p99 "
              f"{result['ratios'][f'{metric}_p99_head_over_base']:.3f}  (µs)")
    print(f"wrote {out_dir / 'ab.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

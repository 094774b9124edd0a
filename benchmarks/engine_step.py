"""Engine step cost: one actor step and one depth step per backend available, measured in one run.

Backends (each on the engines' preallocated buffers, one step = ``engine.run()``):

- ``onnxruntime`` — ONNX Runtime, CPU, one intra-op thread (the runtime's default);
- ``torch_eager`` — the torch reference, eager (the baseline every ratio divides by);
- ``torchscript`` — the same module traced with ``torch.jit.trace``;
- ``torch_eager_cuda`` — torch eager on the GPU, when torch sees CUDA;
- ``tensorrt`` — the plan krabby-export builds here (its default precision), when TensorRT and a
  GPU exist.

The policy is a synthetic (untrained, seeded) depth student for the Go2 with the real network sizes
(actor: obs 753 + latent 32 → 12 actions; depth: 58×87 image + proprio + GRU state, 9 M parameters),
exported by krabby-export and opened through its manifest, as on the robot. Torch runs with
one thread like ONNX Runtime. The backends are measured in interleaved rounds so a slow spell of a
shared machine hits all of them alike; the garbage collector is paused while timing (its stalls are
the control loop's business, not the engine's).

Run: ``python -m benchmarks.engine_step [--out DIR] [--full]``; writes ``engine_step.json``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import gc
import json
import logging
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmarks.common import machine_description, stats_us, write_json
from compute.parkour.graphs import ACTOR_GRAPH, DEPTH_GRAPH, GRAPH_TENSOR_NAMES, load_policy_manifest
from engines.base import Engine
from engines.cuda_memory import cuda_available
from hal.optional import available, require
from hal.robot import load_robot

from hal.config import build_parser as build_config_parser
from hal.config import parse_cli, part
from hal.config.sections import FilesSection, MeasureSection

__all__ = ["run", "main", "build_parser", "EngineStepBenchConfig"]

log = logging.getLogger(__name__)

ROUNDS = 5
BASELINE = "torch_eager"


def _export_policy(directory: Path, robot: Any, seed: int = 0) -> dict[str, Any]:
    """Synthetic checkpoint + its exported artefacts, as the robot would get them.

    With the ``export`` package (krabby-export) the checkpoint goes through the real exporter:
    ONNX graphs, TensorRT plans when TensorRT and a GPU are here, and the manifest. Without it
    the two graphs are exported directly with the same tensor names (no plans).
    """
    torch = require("torch", "the engine benchmark")
    from compute.parkour.checkpoint import load_checkpoint
    from compute.parkour.synthetic import write_synthetic_checkpoint

    checkpoint = write_synthetic_checkpoint(directory / "model.pt", robot, seed=seed)
    paths: dict[str, Any] = {"checkpoint": checkpoint, ACTOR_GRAPH: directory / "model.onnx",
                             DEPTH_GRAPH: directory / "model.depth.onnx", "exporter": "krabby-export"}
    try:
        from export.exporter import ExportOptions, export_checkpoint
    except ImportError:
        export_checkpoint = None
    if export_checkpoint is not None:
        result = export_checkpoint(checkpoint, ExportOptions(robot=robot.name, parity_samples=1))
        paths["manifest"] = result.manifest_path
        if result.engine_built:
            paths["actor_plan"] = directory / "model.plan"
            paths["depth_plan"] = directory / "model.depth.plan"
        return paths
    paths["exporter"] = "torch.onnx.export (export package unavailable)"
    policy = load_checkpoint(checkpoint, robot)
    arch = policy.arch
    actor_names, depth_names = GRAPH_TENSOR_NAMES[ACTOR_GRAPH], GRAPH_TENSOR_NAMES[DEPTH_GRAPH]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(policy.actor_step, (torch.zeros(1, arch.obs_dim),
                                              torch.zeros(1, arch.depth_latent_dim)),
                          str(paths[ACTOR_GRAPH]), input_names=list(actor_names[0]),
                          output_names=list(actor_names[1]), dynamo=False)
        torch.onnx.export(policy.depth_step, (torch.zeros(1, arch.depth_height, arch.depth_width),
                                              torch.zeros(1, arch.num_prop),
                                              torch.zeros(1, 1, arch.depth_hidden_dim)),
                          str(paths[DEPTH_GRAPH]), input_names=list(depth_names[0]),
                          output_names=list(depth_names[1]), dynamo=False)
    return paths


def _engines(graph: str, paths: dict[str, Any],
             robot: Any) -> tuple[dict[str, Engine], dict[str, str]]:
    """Every backend available here for one graph; skipped ones with the reason."""
    from compute.parkour.checkpoint import load_checkpoint
    from compute.parkour.graphs import open_policy_graph, torch_engine_from_policy
    from engines.torch_engine import TorchConfig

    torch = require("torch", "the engine benchmark")
    policy = load_checkpoint(paths["checkpoint"], robot)
    engines: dict[str, Engine] = {
        "onnxruntime": open_policy_graph(paths[graph], robot, graph=graph),
        "torch_eager": torch_engine_from_policy(policy, graph, TorchConfig(num_threads=1)),
        "torchscript": torch_engine_from_policy(policy, graph, TorchConfig(jit_trace=True,
                                                                           num_threads=1)),
    }
    skipped: dict[str, str] = {}
    if torch.cuda.is_available():
        engines["torch_eager_cuda"] = torch_engine_from_policy(policy, graph,
                                                               TorchConfig(device="cuda"))
    else:
        skipped["torch_eager_cuda"] = "torch sees no CUDA device"
    plan = paths.get(f"{graph}_plan")
    if plan is not None:
        engines["tensorrt"] = open_policy_graph(plan, robot, graph=graph)
    elif not available("tensorrt"):
        skipped["tensorrt"] = "TensorRT not installed"
    elif not cuda_available():
        skipped["tensorrt"] = "no CUDA device"
    else:
        skipped["tensorrt"] = f"no plan was built ({paths['exporter']})"
    return engines, skipped


def _fill_inputs(engine: Engine, rng: np.random.Generator) -> None:
    for name, buf in engine.inputs.items():
        if name == "depth":
            buf[...] = rng.uniform(-0.5, 0.5, buf.shape)
        elif name == "hidden_in":
            buf[...] = np.tanh(rng.standard_normal(buf.shape))
        else:
            buf[...] = rng.standard_normal(buf.shape)


def _time_steps(step: Callable[[], None], n: int) -> list[int]:
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        start = clock()
        step()
        samples.append(clock() - start)
    return samples


def _measure(engines: dict[str, Engine], n: int, warmup: int) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(0)
    for engine in engines.values():
        _fill_inputs(engine, rng)
        for _ in range(warmup):
            engine.run()
    samples: dict[str, list[int]] = {name: [] for name in engines}
    per_round = max(1, n // ROUNDS)
    gc.collect()
    gc.disable()
    try:
        for _ in range(ROUNDS):
            for name, engine in engines.items():
                samples[name] += _time_steps(engine.run, per_round)
    finally:
        gc.enable()
    return {name: stats_us(s) for name, s in samples.items()}


def _speedups(cases: dict[str, dict[str, float]]) -> dict[str, float]:
    base = cases[BASELINE]
    out = {}
    for name, stats in cases.items():
        if name == BASELINE:
            continue
        for key in ("p50", "p99"):
            out[f"{name}_speedup_vs_{BASELINE}_{key}"] = round(base[key] / stats[key], 3)
    return out


def run(out_dir: str | Path, quick: bool = True) -> dict[str, Any]:
    """Measure the actor and depth steps on every backend available; write ``engine_step.json``.

    Args:
        out_dir: Where the JSON (and, under it, nothing else) is written.
        quick: A short run (seconds) instead of the full one.

    Returns:
        The result dict written to ``out_dir/engine_step.json``.
    """
    torch = require("torch", "the engine benchmark")
    robot = load_robot("go2")
    steps = {"actor": (300, 50) if quick else (5000, 200), "depth": (60, 10) if quick else (1000, 50)}
    threads_before = torch.get_num_threads()
    results: dict[str, Any] = {"robot": robot.name, "policy": "synthetic depth student (seed 0)",
                               "unit": "microseconds per engine.run()", "graphs": {}}
    try:
        with tempfile.TemporaryDirectory(prefix="krabby-engine-bench-") as tmp:
            paths = _export_policy(Path(tmp), robot)
            results["exporter"] = paths["exporter"]
            if "manifest" in paths:
                manifest = load_policy_manifest(paths["manifest"])
                results["tensorrt_precision"] = manifest.precision if "actor_plan" in paths else None
            for graph in ("actor", "depth"):
                engines, skipped = _engines(graph, paths, robot)
                try:
                    n, warmup = steps[graph]
                    cases = _measure(engines, n, warmup)
                finally:
                    for engine in engines.values():
                        engine.close()
                results["graphs"][graph] = {
                    "inputs": {s.name: list(s.shape) for s in engines["onnxruntime"].input_specs},
                    "cases": cases, "skipped": skipped, "ratios": _speedups(cases)}
    finally:
        torch.set_num_threads(threads_before)
    results["settings"] = {"quick": quick, "rounds": ROUNDS, "gc_paused_while_timing": True,
                           "onnxruntime": "CPU, intra_op=1, inter_op=1, sequential, all opts",
                           "torch": "CPU, 1 thread, inference_mode"}
    results["machine"] = machine_description()
    write_json(Path(out_dir) / "engine_step.json", results)
    return results




@dataclass(frozen=True)
class EngineStepBenchConfig:
    """``python -m benchmarks.engine_step``'s run configuration."""

    files: FilesSection = part(FilesSection, only=("out",), defaults={"out": "bench-results"})
    measure: MeasureSection = part(MeasureSection, only=("full",))


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(EngineStepBenchConfig, prog="python -m benchmarks.engine_step",
                               description=__doc__.split("\n")[0])


def main(argv: list[str] | None = None) -> int:
    config = parse_cli(EngineStepBenchConfig, argv, build_parser())
    result = run(config.files.out, quick=not config.measure.full)
    summary = {}
    for graph, g in result["graphs"].items():
        summary[graph] = {name: {"p50_us": c["p50"], "p99_us": c["p99"]}
                          for name, c in g["cases"].items()}
        summary[graph].update(ratios=g["ratios"], skipped=g["skipped"])
    print(json.dumps(summary, indent=2))
    print(f"wrote {Path(config.files.out) / 'engine_step.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

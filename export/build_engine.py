"""``krabby-build-engine``: TensorRT plans from the exported ONNX files and their manifest, on the robot.

Needs TensorRT (JetPack's) and onnx only: no torch, no checkpoint. Builds one plan per graph of
the manifest beside ``model.onnx`` (``model.plan``, ``model.depth.plan``), checks each against ONNX
Runtime on the fp32 ONNX when ONNX Runtime is installed, and updates the manifest (file hashes,
full TensorRT version, GPU name, compute capability, SM count, L4T release, power mode, GPU clock,
the build settings and the parity report). Everything is staged and moved into place only when
every check passed, the manifest last; the timing cache beside the engines changes only then.

For a strongly typed build (TensorRT >= 10.12) the plan is built from a float16 rewrite of the graph,
kept as ``model.fp16.onnx`` / ``model.depth.fp16.onnx`` (listed in the manifest as ``onnx_fp16``), so
other tools reproduce the same engine::

    trtexec --onnx=model.fp16.onnx --stronglyTyped --saveEngine=model.plan \\
            --timingCacheFile=krabby.timing.cache --builderOptimizationLevel=3 --memPoolSize=workspace:1024M
    polygraphy run model.fp16.onnx --trt --strongly-typed --onnxrt --atol 2e-2 --rtol 2e-2
    # TensorRT < 10.12 (JetPack 6: 10.3): trtexec --onnx=model.onnx --fp16 --saveEngine=model.plan

A plan built that way (on this machine) is registered with the same command, which then checks
it and records it instead of building::

    krabby-build-engine model.onnx --register model.plan [--register-depth model.depth.plan]

Exit status: 0 done, 1 a build or check failed (or TensorRT/GPU missing), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from compute.parkour.graphs import ACTOR_GRAPH, DEPTH_GRAPH
from export.settings import ProgressSection, TensorRTBuildSection
from hal.config import build_parser as build_config_parser
from hal.config import parse_cli, part, setting
from hal.optional import MissingDependencyError, available

__all__ = ["BuildEngineError", "BuildEngineOptions", "BuildEngineResult", "build_engines", "main",
           "build_parser", "BuildEngineConfig", "BuildEngineSection"]

log = logging.getLogger(__name__)

PLAN_SUFFIX = {ACTOR_GRAPH: ".plan", DEPTH_GRAPH: ".depth.plan"}
FP16_SUFFIX = {ACTOR_GRAPH: ".fp16.onnx", DEPTH_GRAPH: ".depth.fp16.onnx"}
ProgressFn = Callable[[str], None]


class BuildEngineError(RuntimeError):
    """A one-line error for the user; ``exit_code`` 2 for bad input, 1 for a failed build/check."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class BuildEngineOptions:
    """Settings of one build (the CLI flags); ``register`` maps a graph to a plan built elsewhere."""

    precision: str = "fp16"
    optimization_level: int = 3
    workspace_mib: int = 1024
    parity_samples: int = 16
    seed: int = 0
    parity: bool = True
    register: dict[str, Path] = field(default_factory=dict)


@dataclass
class BuildEngineResult:
    manifest_path: Path
    files: list[Path]
    parity: dict[str, Any] | None
    tensorrt: dict[str, Any]


def _graph_tensors(spec: Any) -> Any:
    from export.onnx_export import GraphTensors

    return GraphTensors(tuple((t.name, tuple(t.shape)) for t in spec.inputs),
                        tuple((t.name, tuple(t.shape)) for t in spec.outputs))


def _parity(manifest: Any, directory: Path, plans: dict[str, Path], options: BuildEngineOptions,
            precision: str) -> Any:
    """TensorRT plans against ONNX Runtime on the fp32 ONNX (the reference torch checked)."""
    from engines.onnxruntime_engine import OnnxRuntimeEngine
    from engines.tensorrt_engine import TensorRTConfig, TensorRTEngine
    from export.parity import (ParityReport, actor_cases, check_parity, depth_cases, depth_rollout_parity,
                               tolerance_for)
    from export.runners import engine_runner
    from hal.robot import RobotDefinitionError, load_robot

    tolerance = tolerance_for("tensorrt", precision)
    report = ParityReport("tensorrt", precision)
    rng = np.random.default_rng(options.seed)
    for graph, plan in plans.items():
        spec = manifest.graph(graph)
        tensors = _graph_tensors(spec)
        reference = OnnxRuntimeEngine(directory / spec.files["onnx"])
        candidate = TensorRTEngine(plan, TensorRTConfig(check_platform=False, use_cuda_graph=False))
        try:
            ref, cand = engine_runner(reference), engine_runner(candidate)
            if graph == ACTOR_GRAPH:
                try:
                    robot = load_robot(manifest.robot.get("name", ""))
                    cases = actor_cases(tensors, robot, options.parity_samples, rng)
                except (RobotDefinitionError, ValueError, KeyError):
                    cases = [{n: rng.normal(0, 1, s).astype(np.float32) for n, s in tensors.inputs}
                             for _ in range(options.parity_samples)]
                results = check_parity(ref, cand, cases, tensors.output_names, tolerance)
            else:
                results = check_parity(ref, cand, depth_cases(tensors, options.parity_samples, rng),
                                       tensors.output_names, tolerance)
                results.update(depth_rollout_parity(ref, cand, tensors, tolerance, rng))
        finally:
            candidate.close()
            reference.close()
        report.graphs[graph] = results
    return report


def build_engines(onnx_path: str | Path, options: BuildEngineOptions | None = None,
                  progress: ProgressFn | None = None) -> BuildEngineResult:
    """Build (or register) the plans of the export ``onnx_path`` belongs to; see the module doc.

    Raises:
        BuildEngineError: with a one-line message and an exit code; nothing is changed on failure.
    """
    from engines.base import EngineMismatchError
    from compute.parkour.graphs import load_policy_manifest
    from engines.manifest import ManifestError, manifest_path_for
    from export.tensorrt_build import (PRECISIONS, TIMING_CACHE_NAME, TensorRTBuildError, TensorRTBuildOptions,
                                       choose_build_strategy, tensorrt_environment)

    options = options or BuildEngineOptions()
    say = progress or (lambda line: None)
    if options.precision not in PRECISIONS:
        raise BuildEngineError(f"--precision {options.precision!r}: use one of {', '.join(PRECISIONS)}", 2)
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise BuildEngineError(f"{onnx_path} does not exist; pass the model.onnx krabby-export wrote", 2)
    manifest_path = manifest_path_for(onnx_path)
    try:
        manifest = load_policy_manifest(manifest_path)
        raw = json.loads(manifest_path.read_text())
    except (ManifestError, OSError, ValueError) as exc:
        raise BuildEngineError(f"cannot read the manifest {manifest_path}: {exc}", 2) from None
    directory, prefix = manifest_path.parent, manifest_path.stem
    unknown = sorted(set(options.register) - set(manifest.graphs))
    if unknown:
        raise BuildEngineError(f"--register for graph(s) {unknown} the manifest does not have "
                               f"({sorted(manifest.graphs)})", 2)
    for graph, spec in manifest.graphs.items():
        if "onnx" not in spec.files:
            raise BuildEngineError(f"{manifest_path}: graph {graph!r} lists no ONNX file", 2)
        try:
            manifest.verify_file(directory / spec.files["onnx"])
        except (EngineMismatchError, OSError) as exc:
            raise BuildEngineError(str(exc), 2) from None
    for graph, plan in options.register.items():
        if not Path(plan).is_file():
            raise BuildEngineError(f"--register {plan}: no such file", 2)

    env = tensorrt_environment()
    if not env.usable:
        raise BuildEngineError(f"cannot build TensorRT engines here: {env.reason}")
    strategy = choose_build_strategy(env.version, options.precision)
    build_options = TensorRTBuildOptions(options.precision, options.optimization_level, options.workspace_mib,
                                         directory / TIMING_CACHE_NAME)
    try:
        staging = Path(tempfile.mkdtemp(prefix=".krabby-build-", dir=directory))
    except OSError as exc:
        raise BuildEngineError(f"{directory} is not writable: {exc.strerror or exc}", 2) from None
    try:
        return _build(manifest, raw, manifest_path, staging, prefix, env, strategy, build_options, options, say)
    except TensorRTBuildError as exc:
        raise BuildEngineError(str(exc)) from None
    except MissingDependencyError as exc:
        raise BuildEngineError(str(exc)) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _build(manifest: Any, raw: dict[str, Any], manifest_path: Path, staging: Path, prefix: str, env: Any,
           strategy: Any, build_options: Any, options: BuildEngineOptions, say: ProgressFn) -> BuildEngineResult:
    from export.manifest_writer import file_record, write_manifest
    from export.tensorrt_build import build_engine, write_timing_cache
    from engines.manifest import ManifestError
    from hal.jetson.platform_info import platform_summary

    directory = manifest_path.parent
    staged: dict[str, Path] = {}
    plans: dict[str, Path] = {}
    builds: dict[str, dict[str, Any]] = {}
    cache_data = None
    for graph, spec in manifest.graphs.items():
        fp32 = directory / spec.files["onnx"]
        source = fp32
        if strategy.fp16_onnx:
            from export.onnx_export import convert_to_fp16

            source = staging / f"{prefix}{FP16_SUFFIX[graph]}"
            say(f"writing the float16 graph {source.name}")
            convert_to_fp16(fp32, source)
            staged[source.name] = source
        plan = staging / f"{prefix}{PLAN_SUFFIX[graph]}"
        if graph in options.register:
            shutil.copyfile(options.register[graph], plan)
            builds[graph] = {"precision": options.precision, "registered_from": Path(options.register[graph]).name,
                             **strategy.to_dict()}
            say(f"registering {Path(options.register[graph]).name} as {plan.name}")
        else:
            say(f"building {plan.name} from {source.name} ({options.precision}, TensorRT {env.version})")
            start = time.monotonic_ns()
            result = build_engine(source, plan, build_options, strategy, cache_data)
            builds[graph], cache_data = result.record, result.timing_cache
            say(f"built {plan.name} in {(time.monotonic_ns() - start) / 1e9:.1f} s")
        builds[graph]["source_onnx"] = source.name
        staged[plan.name] = plan
        plans[graph] = plan

    report = None
    if options.parity and available("onnxruntime"):
        say("parity: TensorRT vs ONNX Runtime on the fp32 graphs")
        report = _parity(manifest, directory, plans, options, options.precision)
        if not report.passed:
            raise BuildEngineError(f"parity check failed (tensorrt, {options.precision}): "
                                   + "; ".join(report.failures()))
    elif options.parity:
        log.warning("ONNX Runtime is not installed: the plans are not checked against the ONNX graphs")

    for graph in manifest.graphs:
        files = raw["graphs"][graph].setdefault("files", {})
        files["tensorrt"] = plans[graph].name
        if strategy.fp16_onnx:
            files["onnx_fp16"] = f"{prefix}{FP16_SUFFIX[graph]}"
        else:
            files.pop("onnx_fp16", None)
    for name, path in staged.items():
        raw["files"][name] = file_record(path)
    record = {**env.platform_record(), **platform_summary(), **builds[ACTOR_GRAPH], "graphs": builds,
              "built_by": "krabby-build-engine"}
    raw["tensorrt"] = record
    raw["precision"] = options.precision
    raw.setdefault("versions", {})["tensorrt"] = env.version
    parity = raw.setdefault("parity", {})
    if report is not None:
        parity["tensorrt"] = {**report.to_dict(), "reference": "onnxruntime (fp32 ONNX)"}
    else:
        parity["tensorrt"] = None
    try:
        write_manifest(raw, staging / manifest_path.name)
    except ManifestError as exc:
        raise BuildEngineError(f"internal error: the updated manifest does not validate: {exc}") from None

    final = []
    for name, path in staged.items():
        os.replace(path, directory / name)
        final.append(directory / name)
    if cache_data is not None:
        write_timing_cache(build_options.timing_cache, cache_data)
    os.replace(staging / manifest_path.name, manifest_path)
    return BuildEngineResult(manifest_path, final, parity.get("tensorrt"), record)


@dataclass(frozen=True)
class BuildEngineSection:
    """krabby-build-engine's own settings: which graphs, and whether to build or register."""

    section: ClassVar[str] = "build_engine"

    onnx: str = setting(positional=True, metavar="ONNX",
                        help="the model.onnx krabby-export wrote (its model.json must be beside it)")
    no_parity: bool = setting(False, help="skip the check against ONNX Runtime")
    register: str | None = setting(None, metavar="PLAN",
                                   help="record this actor plan (built here, e.g. by trtexec) "
                                        "instead of building one")
    register_depth: str | None = setting(None, metavar="PLAN",
                                         help="the same for the depth graph")


@dataclass(frozen=True)
class BuildEngineConfig:
    """krabby-build-engine's run configuration."""

    build_engine: BuildEngineSection = part(BuildEngineSection)
    # krabby-build-engine's own default, kept: fewer parity samples than krabby-export's
    tensorrt: TensorRTBuildSection = part(TensorRTBuildSection, defaults={"parity_samples": 16})
    progress: ProgressSection = part(ProgressSection)


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(BuildEngineConfig, prog="krabby-build-engine",
                               description=__doc__.split("\n\n")[0],
                               epilog=__doc__.split("\n\n", 1)[1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    config = parse_cli(BuildEngineConfig, argv, parser)
    logging.basicConfig(level=logging.DEBUG if config.progress.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    trt, own = config.tensorrt, config.build_engine
    register = {g: Path(p) for g, p in ((ACTOR_GRAPH, own.register),
                                        (DEPTH_GRAPH, own.register_depth)) if p}
    start = time.monotonic_ns()

    def say(line: str) -> None:
        if not config.progress.quiet:
            print(f"[{(time.monotonic_ns() - start) / 1e9:6.1f} s] {line}", file=sys.stderr, flush=True)

    try:
        if not 0 <= trt.optimization_level <= 5 or trt.workspace_mib < 16 or trt.parity_samples < 1:
            raise BuildEngineError("--optimization-level must be 0..5, --workspace-mib >= 16, "
                                   "--parity-samples >= 1", 2)
        options = BuildEngineOptions(trt.precision, trt.optimization_level, trt.workspace_mib,
                                     trt.parity_samples, parity=not own.no_parity, register=register)
        result = build_engines(config.build_engine.onnx, options, say)
    except BuildEngineError as exc:
        print(f"krabby-build-engine: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - one line, no traceback (unless --debug)
        if config.progress.debug:
            raise
        print(f"krabby-build-engine: error: unexpected {type(exc).__name__}: {exc} (run with --debug)",
              file=sys.stderr)
        return 1
    trt = result.tensorrt
    print(f"updated {result.manifest_path}: TensorRT {trt['version']} on {trt['device_name']} "
          f"(compute {trt['compute_capability']}, {trt['sm_count']} SMs)")
    for path in result.files:
        print(f"      {path}")
    if result.parity is None:
        print("parity: not checked (ONNX Runtime missing or --no-parity)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

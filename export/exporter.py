"""Checkpoint → ONNX (+ TensorRT) → parity → manifest, written all-or-nothing.

:func:`export_checkpoint` is what ``krabby-export`` runs. Every artefact is first written into a
hidden staging directory next to the outputs under its final name; only when the graphs pass
``onnx.checker``, the parity checks and the manifest validates are they renamed into place (the
manifest last). On any failure the staging directory is removed, so a failed export never leaves
half-written files, and a previous export in the same place stays intact.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from compute.parkour.graphs import ACTOR_GRAPH, DEPTH_GRAPH
from hal.optional import MissingDependencyError
from hal.robot import RobotConfig, RobotDefinitionError, load_robot

from export.tensorrt_build import (
    PRECISIONS,
    TIMING_CACHE_NAME,
    TensorRTBuildError,
    TensorRTBuildOptions,
    choose_build_strategy,
    jetson_build_hint,
    tensorrt_environment,
    write_timing_cache,
)

__all__ = ["ExportError", "ExportOptions", "ExportResult", "resolve_output", "export_checkpoint"]

log = logging.getLogger(__name__)

ProgressFn = Callable[[str], None]
_SUFFIXES = {(ACTOR_GRAPH, "onnx"): ".onnx", (DEPTH_GRAPH, "onnx"): ".depth.onnx",
             (ACTOR_GRAPH, "tensorrt"): ".plan", (DEPTH_GRAPH, "tensorrt"): ".depth.plan"}


class ExportError(RuntimeError):
    """An export failed; the message is one line for the user, ``exit_code`` the CLI's status.

    Exit codes: 2 for bad input (paths, checkpoint, robot, options), 1 for a failed check or
    build (parity, TensorRT, ``--require-engine`` without TensorRT).
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class ExportOptions:
    """Settings of one export (the CLI flags).

    Attributes:
        output: a directory (files named after the checkpoint) or a path prefix
            (``out/run7`` → ``out/run7.onnx``); None writes next to the checkpoint.
        robot: ``go2``, ``a1`` or a robot TOML path.
        precision: TensorRT engine precision, ``fp16`` or ``fp32``.
        require_engine: fail when TensorRT engines cannot be built here.
        parity_samples: random samples per graph in the parity checks (structured ones are added).
        optimization_level: TensorRT builder optimisation level (0–5).
        workspace_mib: TensorRT workspace limit.
        seed: seed of the parity inputs.
        train_config: the run's training config (legged_gym JSON dump or Isaac Lab env.yaml):
            the training contract comes from it (see :mod:`compute.parkour.train_config`).
        joint_order: the joint-order convention when no training config says it
            (``legged_gym``, ``isaac_lab`` or ``robot``; default ``legged_gym``).
        camera_pitch_deg / camera_hfov_deg / camera_position: user values that replace the
            training camera's pitch (degrees, positive down), horizontal FOV (degrees) and mount
            (``"X,Y,Z"`` metres) in the contract; each is named in its notes.
    """

    output: str | Path | None = None
    robot: str | Path = "go2"
    precision: str = "fp16"
    require_engine: bool = False
    parity_samples: int = 32
    optimization_level: int = 3
    workspace_mib: int = 1024
    seed: int = 0
    train_config: str | Path | None = None
    joint_order: str | None = None
    camera_pitch_deg: float | None = None
    camera_hfov_deg: float | None = None
    camera_position: str | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ExportError(f"--precision {self.precision!r}: use one of {', '.join(PRECISIONS)}")
        if self.parity_samples < 1:
            raise ExportError(f"--parity-samples {self.parity_samples}: must be at least 1")
        if not 0 <= self.optimization_level <= 5:
            raise ExportError(f"--optimization-level {self.optimization_level}: use 0..5")
        if self.workspace_mib < 16:
            raise ExportError(f"--workspace-mib {self.workspace_mib}: must be at least 16")


@dataclass
class ExportResult:
    """What an export wrote."""

    manifest_path: Path
    files: list[Path]
    engine_built: bool
    parity: dict[str, Any]
    hint: str | None = None
    removed: list[Path] = field(default_factory=list)


def resolve_output(checkpoint: Path, output: str | Path | None) -> tuple[Path, str]:
    """(directory, file prefix) for the artefacts.

    ``None`` → the checkpoint's directory and name; an existing directory, or a path ending in a
    separator → that directory and the checkpoint's name; anything else → a prefix. Dots in a
    derived name become ``_`` (``model.json`` must belong to ``model.onnx`` and
    ``model.depth.onnx``); a given prefix must not contain dots.

    Raises:
        ExportError: the prefix has a dot, or its directory does not exist.
    """
    derived = checkpoint.name[: -len(checkpoint.suffix)] if checkpoint.suffix else checkpoint.name
    derived = derived.replace(".", "_") or "model"
    if output is None:
        return checkpoint.resolve().parent, derived
    text = str(output)
    path = Path(output)
    if path.is_dir() or text.endswith(("/", os.sep)):
        return path.resolve(), derived
    if "." in path.name:
        raise ExportError(f"--output {text}: a prefix must not contain '.' (the files get their "
                          f"own suffixes: {path.name.split('.')[0]}.onnx, ...); give a directory "
                          "or a prefix like out/run7")
    if not path.parent.is_dir():
        raise ExportError(f"--output {text}: directory {path.parent} does not exist")
    return path.parent.resolve(), path.name


@contextmanager
def _stage(progress: ProgressFn | None, what: str,
           heartbeat_s: float | None = None) -> Iterator[None]:
    """Report a step's start and duration; for long steps, also a line every ``heartbeat_s``."""
    if progress is None:
        yield
        return
    progress(f"{what} ...")
    start_ns = time.monotonic_ns()
    stop = threading.Event()
    beat = None
    if heartbeat_s:
        def run() -> None:
            while not stop.wait(heartbeat_s):
                progress(f"  still {what.lower()} ({(time.monotonic_ns() - start_ns) / 1e9:.0f} s)")

        beat = threading.Thread(target=run, name="export-progress", daemon=True)
        beat.start()
    try:
        yield
    finally:
        stop.set()
        if beat is not None:
            beat.join(timeout=2.0)
    progress(f"{what}: done in {(time.monotonic_ns() - start_ns) / 1e9:.1f} s")


def _check_writable(directory: Path) -> Path:
    """Create the staging directory (which proves the output directory is writable)."""
    if not directory.is_dir():
        raise ExportError(f"output directory {directory} does not exist")
    try:
        return Path(tempfile.mkdtemp(prefix=".krabby-export-", dir=directory))
    except OSError as exc:
        raise ExportError(f"output directory {directory} is not writable: "
                          f"{exc.strerror or exc}") from None


def _parity(policy: Any, tensors: dict[str, Any], staged: dict[str, Path], backend: str,
            precision: str, options: ExportOptions, progress: ProgressFn | None) -> Any:
    """Parity of the staged ``backend`` files with the torch reference."""
    from export.parity import (ParityReport, actor_cases, check_parity, depth_cases,
                               depth_rollout_parity, tolerance_for)
    from export.runners import engine_runner, open_backend, torch_runner

    tolerance = tolerance_for(backend, precision)
    report = ParityReport(backend, precision)
    rng = np.random.default_rng(options.seed)
    for graph, path in staged.items():
        module = policy.actor_step if graph == ACTOR_GRAPH else policy.depth_step
        reference = torch_runner(module, tensors[graph])
        engine = open_backend(backend, path)
        try:
            for name, spec in tensors[graph].inputs:
                if tuple(engine.inputs[name].shape) != tuple(spec):
                    raise ExportError(f"{path.name}: {backend} input {name!r} has shape "
                                      f"{list(engine.inputs[name].shape)}, expected {list(spec)}",
                                      exit_code=1)
            candidate = engine_runner(engine)
            if graph == ACTOR_GRAPH:
                cases = actor_cases(tensors[graph], policy.robot, options.parity_samples, rng)
            else:
                cases = depth_cases(tensors[graph], options.parity_samples, rng)
            with _stage(progress, f"parity {graph} graph: torch vs {backend} ({len(cases)} inputs"
                                  + (", 50-step GRU rollout)" if graph == DEPTH_GRAPH else ")")):
                results = check_parity(reference, candidate, cases, tensors[graph].output_names,
                                       tolerance)
                if graph == DEPTH_GRAPH:
                    results.update(depth_rollout_parity(reference, candidate, tensors[graph],
                                                        tolerance, rng))
        finally:
            engine.close()
        report.graphs[graph] = results
    return report


def _require_parity(report: Any) -> None:
    if not report.passed:
        raise ExportError(f"parity check failed ({report.backend}, {report.precision}): "
                          + "; ".join(report.failures()), exit_code=1)


def export_checkpoint(checkpoint: str | Path, options: ExportOptions | None = None,
                      progress: ProgressFn | None = None) -> ExportResult:
    """Export a checkpoint for a robot: ONNX graphs, TensorRT engines when possible, manifest.

    Args:
        checkpoint: the upstream checkpoint (teacher or depth student).
        options: output place, robot, precision, parity samples, TensorRT settings.
        progress: called with a line of text at the start and end of each step.

    Raises:
        ExportError: with a one-line message and an exit code; nothing is left behind.
    """
    options = options or ExportOptions()
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        what = "is a directory" if checkpoint.is_dir() else "does not exist"
        raise ExportError(f"--checkpoint {checkpoint} {what}; expected a checkpoint file (.pt)")
    try:
        hardware = load_robot(options.robot)
    except RobotDefinitionError as exc:
        raise ExportError(str(exc)) from None
    contract = _training_contract(hardware, options)
    if progress is not None:
        for note in contract.notes:
            progress(f"training contract: {note}")
    robot = contract.apply(hardware)
    directory, prefix = resolve_output(checkpoint, options.output)
    if str(options.output or "").endswith(("/", os.sep)):
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExportError(f"cannot create output directory {directory}: "
                              f"{exc.strerror or exc}") from None
    staging = _check_writable(directory)
    try:
        return _export(checkpoint, robot, contract, options, directory, prefix, staging, progress)
    except MissingDependencyError as exc:
        raise ExportError(str(exc)) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _training_contract(robot: RobotConfig, options: ExportOptions) -> Any:
    """The contract from ``--train-config`` when given, else from the robot definition."""
    from compute.parkour.contract import ContractError, TrainingContract
    from compute.parkour.train_camera import CameraOverrides, parse_position
    from compute.parkour.train_config import load_train_config, with_camera_overrides

    try:
        overrides = CameraOverrides(
            pitch_deg=options.camera_pitch_deg, horizontal_fov_deg=options.camera_hfov_deg,
            position_m=(None if options.camera_position is None
                        else parse_position(options.camera_position)))
        if options.train_config is not None:
            contract = load_train_config(options.train_config, robot, overrides)
            if options.joint_order and options.joint_order != contract.joint_order_convention:
                raise ExportError(f"--joint-order {options.joint_order} contradicts the training "
                                  f"config ({contract.joint_order_convention}); drop one")
            return contract
        return with_camera_overrides(TrainingContract.from_robot(robot, options.joint_order),
                                     overrides, robot)
    except ContractError as exc:
        raise ExportError(str(exc)) from None


def _export(checkpoint: Path, robot: RobotConfig, contract: Any, options: ExportOptions,
            directory: Path, prefix: str, staging: Path,
            progress: ProgressFn | None) -> ExportResult:
    from compute.parkour.checkpoint import CheckpointError, load_checkpoint
    from export.manifest_writer import build_manifest, collect_versions, write_manifest
    from export.onnx_export import OPSET, check_onnx, convert_to_fp16, export_graph, graph_tensors

    with _stage(progress, f"loading {checkpoint.name} for robot {robot.name}"):
        try:
            policy = load_checkpoint(checkpoint, robot)
        except CheckpointError as exc:
            raise ExportError(str(exc)) from None
    if policy.synthetic and progress is not None:
        progress("note: this is a SYNTHETIC checkpoint (untrained weights for plumbing tests)")
    graphs = [ACTOR_GRAPH, DEPTH_GRAPH] if policy.is_student else [ACTOR_GRAPH]
    tensors = {g: graph_tensors(policy.arch, g, policy.is_student) for g in graphs}
    staged: dict[str, dict[str, Path]] = {"onnx": {}, "tensorrt": {}}

    for graph in graphs:
        path = staging / f"{prefix}{_SUFFIXES[(graph, 'onnx')]}"
        module = policy.actor_step if graph == ACTOR_GRAPH else policy.depth_step
        with _stage(progress, f"exporting the {graph} graph to {path.name} (opset {OPSET})"):
            try:
                export_graph(module, tensors[graph], path)
                check_onnx(path, tensors[graph])
            except (RuntimeError, ValueError) as exc:
                raise ExportError(f"ONNX export of the {graph} graph failed: "
                                  f"{str(exc).splitlines()[0]}", exit_code=1) from None
        staged["onnx"][graph] = path

    ort_report = _parity(policy, tensors, staged["onnx"], "onnxruntime", "fp32", options, progress)
    _require_parity(ort_report)

    trt_env = tensorrt_environment()
    trt_record = None
    trt_report = None
    hint = None
    if trt_env.usable:
        strategy = choose_build_strategy(trt_env.version, options.precision)
        build_options = TensorRTBuildOptions(options.precision, options.optimization_level,
                                             options.workspace_mib, directory / TIMING_CACHE_NAME)
        from export.tensorrt_build import build_engine

        builds = {}
        cache_data = None  # the updated timing cache, written only once everything passed
        for graph in graphs:
            source = staged["onnx"][graph]
            if strategy.fp16_onnx:
                source = staging / f".{prefix}.{graph}.fp16-source.onnx"
                convert_to_fp16(staged["onnx"][graph], source)
            plan = staging / f"{prefix}{_SUFFIXES[(graph, 'tensorrt')]}"
            with _stage(progress, f"building the {graph} TensorRT engine {plan.name} "
                                  f"({options.precision}, TensorRT {trt_env.version})",
                        heartbeat_s=15.0):
                try:
                    result = build_engine(source, plan, build_options, strategy, cache_data)
                except TensorRTBuildError as exc:
                    raise ExportError(str(exc), exit_code=1) from None
            builds[graph], cache_data = result.record, result.timing_cache
            if source != staged["onnx"][graph]:
                source.unlink(missing_ok=True)
            staged["tensorrt"][graph] = plan
        trt_report = _parity(policy, tensors, staged["tensorrt"], "tensorrt", options.precision,
                             options, progress)
        _require_parity(trt_report)
        trt_record = {**trt_env.platform_record(), **builds[ACTOR_GRAPH], "graphs": builds}
    elif options.require_engine:
        raise ExportError(f"--require-engine: cannot build TensorRT engines here: {trt_env.reason}",
                          exit_code=1)
    else:
        hint = jetson_build_hint(checkpoint, str(options.robot), options.precision, trt_env.reason)

    files: dict[str, Path] = {}
    graph_entries: dict[str, dict[str, Any]] = {}
    for graph in graphs:
        entry = tensors[graph].to_manifest()
        entry["files"] = {}
        for fmt in ("onnx", "tensorrt"):
            if graph in staged[fmt]:
                entry["files"][fmt] = staged[fmt][graph].name
                files[staged[fmt][graph].name] = staged[fmt][graph]
        graph_entries[graph] = entry
    parity = {"reference": "torch (checkpoint)", "random_samples": options.parity_samples,
              "rollout_steps": 50 if policy.is_student else 0, "seed": options.seed,
              "onnxruntime": ort_report.to_dict(),
              "tensorrt": trt_report.to_dict() if trt_report is not None else None}
    manifest = build_manifest(
        robot=robot, policy=policy, contract=contract.to_dict(), graphs=graph_entries, files=files,
        precision=options.precision if trt_record is not None else "fp32",
        tensorrt=trt_record, parity=parity,
        versions=collect_versions(trt_env.version if trt_env.usable else None),
        export_settings={"opset": OPSET, "onnx_precision": "fp32",
                         "requested_precision": options.precision,
                         "constant_folding": True, "batch": 1})
    if options.train_config is not None:  # the simulator draws its episodes from these
        from compute.parkour.domain_rand import ranges_from_train_config

        ranges = ranges_from_train_config(options.train_config)
        if ranges is not None:
            manifest["domain_randomization"] = ranges
    manifest_name = f"{prefix}.json"
    from engines.manifest import ManifestError

    try:
        write_manifest(manifest, staging / manifest_name)
    except ManifestError as exc:
        raise ExportError(f"internal error: the manifest does not validate: {exc}",
                          exit_code=1) from None

    # Everything checked: move into place, the manifest last; the timing cache changes only now.
    if trt_record is not None and cache_data is not None:
        write_timing_cache(directory / TIMING_CACHE_NAME, cache_data)
    final: list[Path] = []
    for name, path in files.items():
        os.replace(path, directory / name)
        final.append(directory / name)
    removed = []
    for suffix in _SUFFIXES.values():
        stale = directory / f"{prefix}{suffix}"
        if stale.name not in files and stale.is_file():
            stale.unlink()
            removed.append(stale)
            log.info("removed %s from an earlier export (not part of this one)", stale)
    os.replace(staging / manifest_name, directory / manifest_name)
    return ExportResult(manifest_path=directory / manifest_name, files=final,
                        engine_built=trt_record is not None, parity=parity, hint=hint,
                        removed=removed)

"""``open_engine``: pick the backend from the file, open it through its manifest, refuse mismatches.

=============  ==================  ==========================================
file           backend             notes
=============  ==================  ==========================================
``*.plan``     TensorRT            platform checked against the manifest first
``*.onnx``     ONNX Runtime        CPU by default
``*.pt``       torch (reference)   needs the robot; ``graph`` picks actor/depth
=============  ==================  ==========================================

When a manifest exists beside the file (``model.json`` for ``model.onnx``, ``model.depth.onnx``,
``model.plan``, ...), the engine is opened through it: the file's sha256 must match, the robot
given must match the one it was exported for, and the engine's tensors must match the manifest's,
or the engine is refused with a message listing every difference.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from engines.base import Engine, EngineError, EngineMismatchError, TensorSpec, compare_specs
from engines.manifest import Manifest, load_manifest, manifest_path_for

__all__ = ["open_engine", "graph_for_path", "robot_tensor_shapes", "SUFFIXES"]

logger = logging.getLogger(__name__)

#: File suffix -> backend.
SUFFIXES = {".plan": "tensorrt", ".engine": "tensorrt", ".onnx": "onnxruntime", ".pt": "torch",
            ".pth": "torch"}
_GRAPHS = ("actor", "depth")


def graph_for_path(path: str | Path, manifest: Manifest | None = None) -> str:
    """``"depth"`` for ``*.depth.*`` files (or as the manifest says), else ``"actor"``."""
    if manifest is not None:
        graph = manifest.graph_for_file(path)
        if graph is not None:
            return graph
    return "depth" if ".depth." in Path(path).name else "actor"


def robot_tensor_shapes(robot: Any, graph: str) -> dict[str, tuple[int, ...]]:
    """Shapes a robot implies for a graph's tensors (DESIGN §2), by tensor name.

    ``depth_latent`` is listed for the actor; a teacher graph without it is not refused for that.
    """
    lay, cam = robot.layout, robot.depth_camera
    if graph == "actor":
        return {"obs": (1, robot.obs_dim), "depth_latent": (1, lay.depth_latent_dim),
                "actions": (1, robot.action_dim)}
    return {"depth": (1, cam.policy_height, cam.policy_width), "proprio": (1, robot.proprio_dim),
            "latent_yaw": (1, lay.depth_latent_dim + 2)}


def _shape_problems(engine: Engine, expected: Mapping[str, Sequence[int]], source: str,
                    optional: Sequence[str] = ()) -> list[str]:
    specs = {s.name: s for s in (*engine.input_specs, *engine.output_specs)}
    problems = []
    for name, shape in expected.items():
        shape = tuple(int(d) for d in shape)
        if name not in specs:
            if name not in optional:
                problems.append(f"{source}: tensor {name!r} {list(shape)} expected but the engine "
                                f"has only {sorted(specs)}")
            continue
        have = specs[name].shape
        if len(have) != len(shape) or any(e >= 0 and e != h for e, h in zip(shape, have)):
            problems.append(f"{source}: tensor {name!r} has shape {list(have)}, expected "
                            f"{list(shape)}")
    return problems


def _resolve_manifest(path: Path, manifest: Manifest | str | Path | None) -> Manifest | None:
    if isinstance(manifest, Manifest):
        return manifest
    if manifest == "auto":
        candidate = manifest_path_for(path)
        return load_manifest(candidate) if candidate.is_file() else None
    if manifest is None:
        return None
    return load_manifest(manifest)


def _check_config(config: Any, kind: str) -> None:
    if config is None:
        return
    expected = {"tensorrt": "TensorRTConfig", "onnxruntime": "OnnxRuntimeConfig",
                "torch": "TorchConfig"}[kind]
    if type(config).__name__ != expected:
        raise TypeError(f"config {type(config).__name__} does not fit a {kind} engine; pass a "
                        f"{expected}")


def open_engine(path: str | Path, *, robot: Any = None, graph: str | None = None,
                expected_shapes: Mapping[str, Sequence[int]] | None = None,
                manifest: Manifest | str | Path | None = "auto", config: Any = None,
                verify_sha256: bool = True) -> Engine:
    """Open a policy graph with the backend its file calls for, checked against its manifest.

    Args:
        path: ``*.plan`` (TensorRT), ``*.onnx`` (ONNX Runtime) or ``*.pt`` (torch checkpoint).
        robot: The :class:`hal.robot.RobotConfig` the policy must fit (required for ``*.pt``).
            Checked against the manifest's robot and against the engine's tensor sizes.
        graph: ``"actor"`` or ``"depth"``; default from the manifest or the file name
            (``*.depth.*`` is the depth graph).
        expected_shapes: Tensor name -> shape the caller requires (``-1`` for any size).
        manifest: ``"auto"`` (use ``model.json`` beside the file if present), a path, a loaded
            :class:`Manifest`, or None to ignore manifests.
        config: :class:`~engines.onnxruntime_engine.OnnxRuntimeConfig`,
            :class:`~engines.tensorrt_engine.TensorRTConfig` or
            :class:`~engines.torch_engine.TorchConfig` for the chosen backend.
        verify_sha256: Check the file's digest against the manifest.

    Raises:
        EngineError: unknown suffix, missing file, or the backend failed to open it.
        EngineMismatchError: manifest, robot, expected shapes or build platform disagree; the
            message lists each difference.
        engines.manifest.ManifestError: a manifest was given or found but is malformed.
    """
    path = Path(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise EngineError(f"{path}: unknown model file type {path.suffix!r}; valid: "
                          f"{', '.join(sorted(SUFFIXES))}")
    if not path.is_file():
        raise EngineError(f"{path} does not exist")
    _check_config(config, kind)
    found = _resolve_manifest(path, manifest)
    graph = graph or graph_for_path(path, found)
    if graph not in _GRAPHS:
        raise EngineError(f"graph {graph!r} is not one of {_GRAPHS}")

    shapes: dict[str, tuple[int, ...]] = {}
    expected_specs: tuple[TensorSpec, ...] = ()
    expected_outputs: tuple[TensorSpec, ...] = ()
    if found is not None:
        if robot is not None:
            found.check_robot(robot)
        spec = found.graph(graph)
        expected_specs, expected_outputs = spec.inputs, spec.outputs
        shapes = {s.name: s.shape for s in (*spec.inputs, *spec.outputs) if s.is_static}
        if verify_sha256:
            if path.name in found.files:
                found.verify_file(path)
            elif kind != "torch":
                raise EngineMismatchError(f"{path.name} is not listed in {found.path} (files: "
                                          f"{sorted(found.files)}); re-export with krabby-export")
        logger.info("opening %s (%s graph) through %s", path.name, graph, found.path.name)

    engine = _open_backend(kind, path, graph, robot, config, shapes, found)
    try:
        problems: list[str] = []
        if found is not None:
            problems += compare_specs(engine.input_specs, expected_specs, "input")
            problems += compare_specs(engine.output_specs, expected_outputs, "output")
            if problems:
                problems = [f"{found.path.name}: {p}" for p in problems]
        if robot is not None:
            problems += _shape_problems(engine, robot_tensor_shapes(robot, graph),
                                        f"robot {robot.name!r}", optional=("depth_latent",))
        if expected_shapes:
            problems += _shape_problems(engine, expected_shapes, "expected_shapes")
        if problems:
            raise EngineMismatchError(f"{path.name} ({engine.backend}, {graph} graph) refused: "
                                      + "; ".join(problems))
    except BaseException:
        engine.close()
        raise
    return engine


def _open_backend(kind: str, path: Path, graph: str, robot: Any, config: Any,
                  shapes: Mapping[str, Sequence[int]], found: Manifest | None) -> Engine:
    if kind == "onnxruntime":
        from engines.onnxruntime_engine import OnnxRuntimeEngine

        return OnnxRuntimeEngine(path, config, shapes=shapes, strict_shapes=False)
    if kind == "tensorrt":
        from engines.tensorrt_engine import TensorRTEngine

        return TensorRTEngine(path, config, shapes=shapes,
                              built=found.tensorrt if found is not None else None,
                              strict_shapes=False)
    if robot is None:
        raise EngineError(f"{path}: opening a checkpoint needs the robot it was trained for "
                          "(open_engine(..., robot=load_robot('go2')))")
    from engines.torch_engine import TorchEngine

    return TorchEngine.from_checkpoint(path, robot, graph, config)

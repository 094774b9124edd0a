"""``open_engine``: pick the backend from the file, open it through its manifest, refuse mismatches.

=============  ==================  ==========================================
file           backend             notes
=============  ==================  ==========================================
``*.plan``     TensorRT            platform checked against the manifest first
``*.onnx``     ONNX Runtime        CPU by default
other          a caller's loader   ``loaders={".pt": ...}``: e.g. a torch checkpoint, whose
                                   modules only the code that defines them can build
=============  ==================  ==========================================

When a manifest exists beside the file (``model.json`` for ``model.onnx``, ``model.depth.onnx``,
``model.plan``, ...), the engine is opened through it: the file's sha256 must match, the robot
given must match the one it was exported for, and the engine's tensors must match the manifest's
graph, or the engine is refused with a message listing every difference. What a graph *means*
(its names, the shapes a robot implies) is the policy's business, not this module's.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection, Mapping, Sequence

from engines.base import Engine, EngineError, EngineMismatchError, TensorSpec, compare_specs
from engines.manifest import Manifest, load_manifest, manifest_path_for

if TYPE_CHECKING:
    from engines.onnxruntime_engine import OnnxRuntimeConfig
    from engines.tensorrt_engine import TensorRTConfig

__all__ = ["open_engine", "resolve_manifest", "shape_problems", "Loader", "SUFFIXES"]

log = logging.getLogger(__name__)

#: File suffix -> backend.
SUFFIXES = {".plan": "tensorrt", ".engine": "tensorrt", ".onnx": "onnxruntime"}

#: ``loader(path, graph, config) -> Engine`` for a file type no backend here opens by itself.
Loader = Callable[[Path, "str | None", Any], Engine]


def shape_problems(engine: Engine, expected: Mapping[str, Sequence[int]], source: str,
                   optional: Sequence[str] = ()) -> list[str]:
    """How ``engine``'s tensors differ from ``expected`` (name -> shape, ``-1`` for any size).

    A tensor named in ``optional`` may be absent; every other expected tensor must exist.
    """
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


def resolve_manifest(path: str | Path, manifest: Manifest | str | Path | None, *,
                     graphs: Collection[str] | None = None) -> Manifest | None:
    """The manifest to open ``path`` through: ``"auto"`` finds ``model.json`` beside it (or none);
    a path is loaded (refusing a graph not in ``graphs``, see :func:`load_manifest`); a
    :class:`Manifest` is itself; None is none."""
    if isinstance(manifest, Manifest):
        return manifest
    if manifest == "auto":
        candidate = manifest_path_for(Path(path))
        return load_manifest(candidate, graphs=graphs) if candidate.is_file() else None
    if manifest is None:
        return None
    return load_manifest(manifest, graphs=graphs)


def _check_config(config: Any, kind: str) -> None:
    if config is None or kind == "loader":
        return
    # Imported only when a config is given: its backend is about to be loaded anyway.
    if kind == "onnxruntime":
        from engines.onnxruntime_engine import OnnxRuntimeConfig as expected
    else:
        from engines.tensorrt_engine import TensorRTConfig as expected
    if not isinstance(config, expected):
        raise TypeError(f"config {type(config).__name__} does not fit a {kind} engine; pass a "
                        f"{expected.__name__}")


def open_engine(path: str | Path, *, robot: Any = None, graph: str | None = None,
                expected_shapes: Mapping[str, Sequence[int]] | None = None,
                manifest: Manifest | str | Path | None = "auto",
                config: OnnxRuntimeConfig | TensorRTConfig | Any | None = None,
                verify_sha256: bool = True,
                loaders: Mapping[str, Loader] | None = None) -> Engine:
    """Open a model file with the backend its suffix calls for, checked against its manifest.

    Args:
        path: ``*.plan`` (TensorRT), ``*.onnx`` (ONNX Runtime), or a suffix in ``loaders``.
        robot: The robot the model must have been exported for (anything with ``summary()``,
            ``name`` and ``source``, e.g. a :class:`hal.robot.RobotConfig`); checked against the
            manifest's robot. None skips that check.
        graph: Which of the manifest's graphs the file holds; default: the graph whose files list
            it. Without a manifest it only names the engine in messages.
        expected_shapes: Tensor name -> shape the caller requires (``-1`` for any size).
        manifest: ``"auto"`` (use ``model.json`` beside the file if present), a path, a loaded
            :class:`Manifest`, or None to ignore manifests.
        config: :class:`~engines.onnxruntime_engine.OnnxRuntimeConfig` or
            :class:`~engines.tensorrt_engine.TensorRTConfig` for the chosen backend; handed as it
            is to a loader.
        verify_sha256: Check the file's digest against the manifest (a file opened by a loader
            may be absent from it: checkpoints are not exported files).
        loaders: Suffix (lower case, with the dot) -> ``loader(path, graph, config)`` for files no
            backend here opens by itself.

    Raises:
        EngineError: unknown suffix, missing file, or the backend failed to open it.
        EngineMismatchError: manifest, robot, expected shapes or build platform disagree; the
            message lists each difference.
        engines.manifest.ManifestError: a manifest was given or found but is malformed.
    """
    path = Path(path)
    loaders = dict(loaders or {})
    suffix = path.suffix.lower()
    kind = SUFFIXES.get(suffix) or ("loader" if suffix in loaders else None)
    if kind is None:
        raise EngineError(f"{path}: unknown model file type {path.suffix!r}; valid: "
                          f"{', '.join(sorted((*SUFFIXES, *loaders)))}")
    if not path.is_file():
        raise EngineError(f"{path} does not exist")
    _check_config(config, kind)
    found = resolve_manifest(path, manifest)

    shapes: dict[str, tuple[int, ...]] = {}
    expected_specs: tuple[TensorSpec, ...] = ()
    expected_outputs: tuple[TensorSpec, ...] = ()
    if found is not None:
        if robot is not None:
            found.check_robot(robot)
        listed = path.name in found.files
        graph = graph or found.graph_for_file(path)
        spec = found.graph(graph) if graph is not None else None
        if not listed and kind != "loader" and (verify_sha256 or spec is None):
            raise EngineMismatchError(f"{path.name} is not listed in {found.path} (files: "
                                      f"{sorted(found.files)}); re-export with krabby-export")
        if spec is None:
            raise EngineMismatchError(f"{found.path} does not say which graph {path.name} holds; "
                                      f"pass graph= (one of {sorted(found.graphs)})")
        expected_specs, expected_outputs = spec.inputs, spec.outputs
        shapes = {s.name: s.shape for s in (*spec.inputs, *spec.outputs) if s.is_static}
        if verify_sha256 and listed:
            found.verify_file(path)
        log.info("opening %s (%s graph) through %s", path.name, graph, found.path.name)

    engine = (loaders[suffix](path, graph, config) if kind == "loader"
              else _open_backend(kind, path, config, shapes, found))
    try:
        problems: list[str] = []
        if found is not None:
            problems += compare_specs(engine.input_specs, expected_specs, "input")
            problems += compare_specs(engine.output_specs, expected_outputs, "output")
            if problems:
                problems = [f"{found.path.name}: {p}" for p in problems]
        if expected_shapes:
            problems += shape_problems(engine, expected_shapes, "expected_shapes")
        if problems:
            what = f"{graph} graph" if graph else "no manifest"
            raise EngineMismatchError(f"{path.name} ({engine.backend}, {what}) refused: "
                                      + "; ".join(problems))
    except BaseException:
        engine.close()
        raise
    return engine


def _open_backend(kind: str, path: Path, config: Any, shapes: Mapping[str, Sequence[int]],
                  found: Manifest | None) -> Engine:
    if kind == "onnxruntime":
        from engines.onnxruntime_engine import OnnxRuntimeEngine

        return OnnxRuntimeEngine(path, config, shapes=shapes, strict_shapes=False)
    from engines.tensorrt_engine import TensorRTEngine

    return TensorRTEngine(path, config, shapes=shapes,
                          built=found.tensorrt if found is not None else None, strict_shapes=False)

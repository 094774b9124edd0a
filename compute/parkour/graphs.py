"""The parkour policy's two graphs (docs/architecture.md#the-policy-graphs-and-the-manifest) as
engines: their tensors, and opening one for a robot.

``engines`` maps a file to an engine with tensor specs and knows nothing of this policy; what makes
a file *the actor* or *the depth encoder of this robot* lives here:

- :data:`GRAPH_TENSOR_NAMES` — the graphs' input and output names, in argument order (each a
  constant here: :data:`ACTOR_GRAPH`, :data:`OBS`, ...);
- :func:`load_policy_manifest` — a manifest whose graphs must be these;
- :func:`robot_tensor_shapes` — the shapes a robot implies for them;
- :func:`graph_for_path` — ``*.depth.*`` files hold the depth graph (or as the manifest says);
- :func:`torch_engine_from_policy` / :func:`torch_engine_from_checkpoint` — the torch reference
  over a loaded policy or a training checkpoint;
- :func:`open_policy_graph` — any of ``*.plan`` / ``*.onnx`` (through :func:`engines.open_engine`
  and its manifest) or ``*.pt`` (the torch reference), checked against the robot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from compute.parkour.layout import ObservationLayout
from engines.base import Engine, EngineError, EngineMismatchError, TensorSpec
from engines.manifest import Manifest, load_manifest
from engines.opener import open_engine, resolve_manifest, shape_problems
from hal.robot import RobotConfig

__all__ = [
    "ACTOR_GRAPH", "DEPTH_GRAPH", "GRAPHS", "OBS", "DEPTH_LATENT", "ACTIONS", "DEPTH_IMAGE", "PROPRIO",
    "HIDDEN_IN", "LATENT_YAW", "HIDDEN_OUT", "GRAPH_TENSOR_NAMES", "load_policy_manifest",
    "CHECKPOINT_SUFFIXES", "graph_for_path", "robot_tensor_shapes",
    "checkpoint_input_specs", "torch_engine_from_policy", "torch_engine_from_checkpoint",
    "open_policy_graph",
]

# The graphs' and tensors' names, declared here once: krabby-export writes them into the ONNX
# files and the manifest, engines read them from the manifest, and a test fails on a literal copy
# in export/ or engines/ (tests/test_source_rules.py).
#: The actor graph (``model.onnx``): observation (and depth latent) → actions.
ACTOR_GRAPH = "actor"
#: The depth graph (``model.depth.onnx``): depth image, proprioception, GRU state → latent and yaw.
DEPTH_GRAPH = "depth"
#: The actor's tensors.
OBS, DEPTH_LATENT, ACTIONS = "obs", "depth_latent", "actions"
#: The depth graph's tensors.
DEPTH_IMAGE, PROPRIO, HIDDEN_IN, LATENT_YAW, HIDDEN_OUT = (
    "depth", "proprio", "hidden_in", "latent_yaw", "hidden_out")
#: Input and output names of the two exported graphs
#: (docs/architecture.md#the-policy-graphs-and-the-manifest), in argument order.
GRAPH_TENSOR_NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    ACTOR_GRAPH: ((OBS, DEPTH_LATENT), (ACTIONS,)),
    DEPTH_GRAPH: ((DEPTH_IMAGE, PROPRIO, HIDDEN_IN), (LATENT_YAW, HIDDEN_OUT)),
}
#: The graph names, in the order krabby-export writes them.
GRAPHS: tuple[str, ...] = tuple(GRAPH_TENSOR_NAMES)
#: Training checkpoints, run by the torch reference.
CHECKPOINT_SUFFIXES = (".pt", ".pth")


def load_policy_manifest(path: str | Path) -> Manifest:
    """Read ``model.json`` and refuse a graph that is not one of this policy's (:data:`GRAPHS`).

    Raises:
        engines.manifest.ManifestError: as :func:`engines.manifest.load_manifest`, or a graph
            named neither ``"actor"`` nor ``"depth"``.
    """
    return load_manifest(path, graphs=GRAPHS)


def _check_graph(graph: str) -> None:
    if graph not in GRAPH_TENSOR_NAMES:
        raise EngineError(f"graph {graph!r} is not one of {sorted(GRAPH_TENSOR_NAMES)}")


def graph_for_path(path: str | Path, manifest: Manifest | None = None) -> str:
    """``"depth"`` for ``*.depth.*`` files (or as the manifest says), else ``"actor"``."""
    if manifest is not None:
        graph = manifest.graph_for_file(path)
        if graph is not None:
            return graph
    return DEPTH_GRAPH if ".depth." in Path(path).name else ACTOR_GRAPH


def robot_tensor_shapes(robot: RobotConfig, graph: str) -> dict[str, tuple[int, ...]]:
    """Shapes a robot implies for a graph's tensors
    (docs/architecture.md#the-policy-graphs-and-the-manifest), by tensor name.

    ``depth_latent`` is listed for the actor; a teacher graph without it is not refused for that.
    """
    _check_graph(graph)
    lay, cam = ObservationLayout.from_robot(robot), robot.depth_camera
    if graph == ACTOR_GRAPH:
        return {OBS: (1, lay.obs_dim), DEPTH_LATENT: (1, lay.depth_latent_dim),
                ACTIONS: (1, robot.action_dim)}
    return {DEPTH_IMAGE: (1, cam.policy_height, cam.policy_width), PROPRIO: (1, lay.proprio_dim),
            LATENT_YAW: (1, lay.latent_yaw_dim)}


def checkpoint_input_specs(policy: Any, graph: str) -> list[TensorSpec]:
    """Input specs of a loaded policy's actor or depth step
    (docs/architecture.md#the-policy-graphs-and-the-manifest).

    Sizes come from the policy's architecture (``policy.arch``, derived from the robot); a
    teacher's actor step takes only ``obs``.
    """
    _check_graph(graph)
    f32 = np.float32
    arch = policy.arch
    if graph == ACTOR_GRAPH:
        specs = [TensorSpec(OBS, (1, arch.obs_dim), f32)]
        if policy.is_student:
            specs.append(TensorSpec(DEPTH_LATENT, (1, arch.depth_latent_dim), f32))
        return specs
    return [TensorSpec(DEPTH_IMAGE, (1, arch.depth_height, arch.depth_width), f32),
            TensorSpec(PROPRIO, (1, arch.num_prop), f32),
            TensorSpec(HIDDEN_IN, (1, 1, arch.depth_hidden_dim), f32)]


def torch_engine_from_policy(policy: Any, graph: str = ACTOR_GRAPH, config: Any = None) -> Engine:
    """The actor or depth step of a loaded :class:`compute.parkour.checkpoint.LoadedPolicy`.

    Args:
        policy: The loaded checkpoint.
        graph: ``"actor"`` or ``"depth"``.
        config: A :class:`engines.torch_engine.TorchConfig`.

    Raises:
        EngineError: unknown graph, or a depth graph asked of a checkpoint without one.
    """
    from engines.torch_engine import TorchEngine

    _check_graph(graph)
    module = getattr(policy, f"{graph}_step", None)
    if module is None:
        raise EngineError(f"{policy.path}: a {policy.kind} checkpoint has no {graph} step "
                          "(only a depth student has a depth encoder)")
    return TorchEngine(module, checkpoint_input_specs(policy, graph), GRAPH_TENSOR_NAMES[graph][1],
                       config, source=str(policy.path))


def torch_engine_from_checkpoint(path: str | Path, robot: RobotConfig, graph: str = ACTOR_GRAPH,
                                 config: Any = None) -> Engine:
    """The actor or depth step of a training checkpoint, run by the torch reference.

    Raises:
        EngineError: unknown graph, an unreadable checkpoint, or a depth graph asked of a teacher.
    """
    from compute.parkour import checkpoint  # torch-only path; never on ONNX/TensorRT

    _check_graph(graph)
    try:
        policy = checkpoint.load_checkpoint(path, robot)
    except checkpoint.CheckpointError as exc:
        raise EngineError(str(exc)) from None
    return torch_engine_from_policy(policy, graph, config)


def open_policy_graph(path: str | Path, robot: RobotConfig, *, graph: str | None = None,
                      expected_shapes: Mapping[str, Sequence[int]] | None = None,
                      manifest: Manifest | str | Path | None = "auto", config: Any = None,
                      verify_sha256: bool = True) -> Engine:
    """Open the actor or depth graph of a policy for ``robot``, refusing one that does not fit.

    Args:
        path: ``*.plan`` / ``*.onnx`` (opened through :func:`engines.open_engine` and the manifest
            beside it) or ``*.pt`` (a training checkpoint, run by the torch reference).
        robot: The robot the policy must fit: checked against the manifest and the tensor sizes.
        graph: ``"actor"`` or ``"depth"``; default from the manifest or the file name
            (``*.depth.*`` is the depth graph).
        expected_shapes / manifest / config / verify_sha256: As for :func:`engines.open_engine`.

    Raises:
        EngineError: unknown graph or file type, missing file, or the backend failed to open it.
        EngineMismatchError: manifest, robot or expected shapes disagree; the message lists each
            difference.
        engines.manifest.ManifestError: a manifest was given or found but is malformed.
    """
    path = Path(path)
    found = resolve_manifest(path, manifest, graphs=GRAPHS) if path.is_file() else None
    graph = graph or graph_for_path(path, found)
    _check_graph(graph)

    def load_checkpoint(file: Path, graph_name: str | None, torch_config: Any) -> Engine:
        return torch_engine_from_checkpoint(file, robot, graph_name or graph, torch_config)

    engine = open_engine(path, robot=robot, graph=graph, expected_shapes=expected_shapes,
                         manifest=found, config=config, verify_sha256=verify_sha256,
                         loaders={suffix: load_checkpoint for suffix in CHECKPOINT_SUFFIXES})
    problems = shape_problems(engine, robot_tensor_shapes(robot, graph), f"robot {robot.name!r}",
                              optional=(DEPTH_LATENT,))
    if problems:
        engine.close()
        raise EngineMismatchError(f"{path.name} ({engine.backend}, {graph} graph) refused: "
                                  + "; ".join(problems))
    return engine

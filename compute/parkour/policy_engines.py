"""Open the actor and depth engines of one policy and check them against the robot and the flags.

A policy is either an exported engine (``model.onnx`` / ``model.plan`` with ``model.json`` beside it,
the depth graph in the file the manifest names) or, for bring-up, a checkpoint run by the torch
reference. Every mismatch (robot, dimensions, joint order, a missing depth graph) is an error raised
before any motor is touched, with a message that says what differs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compute.parkour.layout import ObservationLayout
from hal.robot import RobotConfig

if TYPE_CHECKING:  # annotations only: the functions import what they use where they run
    from compute.parkour.contract import TrainingContract
    from engines.base import Engine
    from engines.manifest import Manifest

__all__ = ["PolicyEngines", "PolicyConfigError", "open_policy_engines", "contract_for",
           "contract_for_engine"]

log = logging.getLogger(__name__)


class PolicyConfigError(ValueError):
    """The policy files or the flags describing them do not fit the robot."""


@dataclass
class PolicyEngines:
    """An opened policy: actor engine, depth engine (None for a teacher), where they came from,
    its training contract and the robot configuration that runs it (the hardware robot with the
    contract's joint order, defaults, gains, camera and policy rate)."""

    actor: Engine
    depth: Engine | None
    source: str  # "engine" or "torch-reference"
    path: Path
    contract: TrainingContract | None = None
    robot: RobotConfig | None = None

    @property
    def backend(self) -> str:
        return self.actor.backend

    def close(self) -> None:
        for engine in (self.actor, self.depth):
            if engine is not None:
                engine.close()


def _depth_path_for(actor_path: Path, manifest: Manifest | None) -> Path | None:
    """The depth graph next to an actor engine: as the manifest lists it, else ``*.depth.<ext>``."""
    if manifest is not None:
        for name in manifest.files:
            if Path(name).suffix == actor_path.suffix and manifest.graph_for_file(name) == "depth":
                return actor_path.with_name(Path(name).name)
    candidate = actor_path.with_name(actor_path.name.replace(actor_path.suffix,
                                                             ".depth" + actor_path.suffix))
    return candidate if candidate.is_file() else None


def _engine_config(path: Path, device: str) -> Any:
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from engines.onnxruntime_engine import OnnxRuntimeConfig

        return OnnxRuntimeConfig(device="auto" if device == "cuda" else "cpu")
    if suffix in (".pt", ".pth"):
        from engines.torch_engine import TorchConfig

        return TorchConfig(device=device, num_threads=1)
    return None


def open_policy_engines(robot: RobotConfig, engine: str | Path | None = None,
                        checkpoint: str | Path | None = None, device: str = "cpu",
                        action_dim: int | None = None, obs_dim: int | None = None,
                        allow_no_manifest: bool = False) -> PolicyEngines:
    """Open a policy for ``robot``.

    Args:
        robot: The robot the policy must fit.
        engine: ``model.onnx`` or ``model.plan`` (its manifest beside it). Takes precedence.
        checkpoint: An upstream checkpoint, run by the torch reference when no engine is given.
        device: ``cpu`` or ``cuda`` (ONNX Runtime's CUDA provider / torch on CUDA when present).
        action_dim: The action size the operator expects (checked); None skips the check.
        obs_dim: The observation size the operator expects (checked); None skips the check.
        allow_no_manifest: Run an engine that has no manifest beside it (``--no-manifest``):
            only its tensor shapes are then checked, not its file digest, robot, joint order or
            training contract. Without it such an engine is refused.

    Raises:
        PolicyConfigError: nothing to open, dims that disagree with the robot, a student actor
            without its depth graph.
        engines.EngineError: an engine file is refused (its message says what differs).
    """
    from compute.parkour.graphs import open_policy_graph
    from engines.manifest import manifest_path_for

    if device not in ("cpu", "cuda"):
        raise PolicyConfigError(f"--device {device!r}: use 'cpu' or 'cuda'")
    problems = []
    if action_dim is not None and action_dim != robot.action_dim:
        problems.append(f"--action-dim {action_dim} but robot {robot.name!r} has "
                        f"{robot.action_dim} joints")
    layout = ObservationLayout.from_robot(robot)
    if obs_dim is not None and obs_dim != layout.obs_dim:
        problems.append(f"--obs-dim {obs_dim} but robot {robot.name!r} needs a {layout.obs_dim} "
                        f"observation (proprio {layout.proprio_dim})")
    if problems:
        raise PolicyConfigError("; ".join(problems) + ". Pass --robot for the robot the policy was "
                                "trained for, or fix the flags.")
    if engine is None and checkpoint is None:
        raise PolicyConfigError("no policy: pass --engine model.onnx|model.plan (from krabby-export) "
                                "or --checkpoint model.pt (torch reference, for bring-up)")
    path = Path(engine if engine is not None else checkpoint)
    if engine is not None and not manifest_path_for(path).is_file():
        if not allow_no_manifest:
            raise PolicyConfigError(
                f"{path} has no manifest ({manifest_path_for(path).name} beside it): without it "
                "the robot, joint order, file digest and training contract cannot be checked. "
                "Export with krabby-export, or pass --no-manifest to run it with shape checks only")
        log.warning("running %s WITHOUT a manifest (--no-manifest): its file digest, robot, joint "
                    "order and training contract are NOT checked; only tensor shapes are", path)
    manifest = _manifest_beside(engine)
    contract = contract_for(robot, manifest)
    from compute.parkour.contract import ContractError

    try:
        robot = contract.apply(robot)
    except ContractError as exc:
        raise PolicyConfigError(f"{manifest.path if manifest else path}: {exc}") from None
    expected = {}
    if action_dim is not None:
        expected["actions"] = (1, action_dim)
    if obs_dim is not None:
        expected["obs"] = (1, obs_dim)
    config = _engine_config(path, device)
    actor = open_policy_graph(path, robot, graph="actor", expected_shapes=expected, config=config)
    try:
        depth = None
        if "depth_latent" in actor.inputs:
            if engine is not None:
                depth_path = _depth_path_for(path, manifest)
                if depth_path is None or not depth_path.is_file():
                    raise PolicyConfigError(
                        f"{path.name} is a depth student (it takes depth_latent) but its depth graph "
                        f"({depth_path or path.stem + '.depth' + path.suffix}) is missing; export "
                        "both with krabby-export")
            else:
                depth_path = path
            depth = open_policy_graph(depth_path, robot, graph="depth",
                                      config=_engine_config(depth_path, device))
    except BaseException:
        actor.close()
        raise
    source = "engine" if engine is not None else "torch-reference"
    if source == "torch-reference":
        log.warning("running the torch reference from %s (bring-up only: export it with "
                    "krabby-export for the real-time engine)", path)
    return PolicyEngines(actor=actor, depth=depth, source=source, path=path, contract=contract,
                         robot=robot)


def contract_for(robot: RobotConfig, manifest: Manifest | None) -> TrainingContract:
    """The manifest's training contract; a manifest from before contracts (or a checkpoint run by
    the torch reference) gets the robot definition's, with a warning."""
    from compute.parkour.contract import ContractError, TrainingContract

    raw = manifest.extra.get("training_contract") if manifest is not None else None
    try:
        if raw is None:
            if manifest is not None:
                log.warning("%s has no training contract (exported by an older krabby): using "
                            "robot %s's definition; re-export to record it", manifest.path,
                            robot.name)
            return TrainingContract.from_robot(robot)
        return TrainingContract.from_dict(raw)
    except ContractError as exc:
        where = manifest.path if manifest is not None else robot.source
        raise PolicyConfigError(f"{where}: {exc}") from None


def contract_for_engine(robot: RobotConfig, engine: str | Path | None) -> TrainingContract:
    """The training contract of ``engine``'s manifest (the robot definition's without one)."""
    return contract_for(robot, _manifest_beside(engine))


def _manifest_beside(engine: str | Path | None) -> Manifest | None:
    """The manifest next to an engine file, or None (no engine, or no manifest there)."""
    from compute.parkour.graphs import load_policy_manifest
    from engines.manifest import manifest_path_for

    if engine is None:
        return None
    manifest_file = manifest_path_for(Path(engine))
    return load_policy_manifest(manifest_file) if manifest_file.is_file() else None

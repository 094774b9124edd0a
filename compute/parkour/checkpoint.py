"""Load an upstream parkour checkpoint into the deploy graphs, refusing anything that does not fit.

A checkpoint is the dict the upstream runner saves with ``torch.save``
(docs/architecture.md#the-checkpoint)::

    model_state_dict        ActorCriticRMA: actor.*, critic.*, std
    estimator_state_dict    estimator.{0,2,4}.*
    optimizer_state_dict, iter, infos           (ignored here)
    depth_encoder_state_dict, depth_actor_state_dict    (depth student only)

:func:`load_checkpoint` reads it with ``torch.load(weights_only=True)`` (no pickled code runs),
checks every tensor the deploy graphs need against the shapes the robot definition implies and
raises :class:`CheckpointError` naming the section, key, expected and found shape otherwise. The
upstream training packages are not needed. Also a small CLI::

    python -m compute.parkour.checkpoint model.pt --robot go2
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping

from hal.config import build_parser as build_config_parser
from hal.config import parse_cli, part, setting
from hal.config.sections import RobotSection
from hal.optional import require
from hal.robot import RobotConfig, RobotDefinitionError, load_robot

from compute.parkour.deploy import ActorStep, DepthStep, TeacherActorStep
from compute.parkour.layout import ObservationLayout
from compute.parkour.networks import Actor, Estimator, PolicyArchitecture, RecurrentDepthEncoder

torch = require("torch", "loading parkour checkpoints")

__all__ = ["CheckpointError", "LoadedPolicy", "load_checkpoint", "read_checkpoint", "main",
           "build_parser", "CheckCheckpointConfig"]

log = logging.getLogger(__name__)

MODEL = "model_state_dict"
ESTIMATOR = "estimator_state_dict"
DEPTH_ENCODER = "depth_encoder_state_dict"
DEPTH_ACTOR = "depth_actor_state_dict"
_MAX_PROBLEMS = 4


class CheckpointError(ValueError):
    """The file is not a parkour checkpoint, or its tensors do not fit the robot definition."""


@dataclass
class LoadedPolicy:
    """A checkpoint turned into the deploy graphs (eval mode, float32, CPU).

    Attributes:
        actor_step: :class:`ActorStep` (student) or :class:`TeacherActorStep` (teacher).
        depth_step: :class:`DepthStep` for a student, None for a teacher.
        is_student: True when the checkpoint has a depth encoder and depth actor.
        arch: the sizes of every layer.
        robot: the robot definition the tensors were checked against.
        path: the checkpoint file.
        sha256: hex digest of the checkpoint file.
        iteration: the training iteration (``iter``), None if absent.
        synthetic: True for an untrained checkpoint made by ``krabby-make-checkpoint``.
    """

    actor_step: Any
    depth_step: Any | None
    is_student: bool
    arch: PolicyArchitecture
    robot: RobotConfig
    path: Path
    sha256: str
    iteration: int | None = None
    synthetic: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``"student"`` or ``"teacher"``."""
        return "student" if self.is_student else "teacher"

    def initial_hidden(self) -> Any:
        """A zero GRU state [1, 1, hidden] for the first depth step."""
        return torch.zeros(1, 1, self.arch.depth_hidden_dim)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load`` a file safely (weights only, onto the CPU) and check it is a dict.

    Raises:
        CheckpointError: the path is not a readable file, or the file is not a torch checkpoint
            holding a dict.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise CheckpointError(f"{path}: {what}; expected a checkpoint file (model_*.pt)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure here means "not a checkpoint"
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a checkpoint (torch.load with weights_only=True "
                              f"failed: {first_line})") from None
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{path}: not a checkpoint: it holds a {type(data).__name__}, "
                              f"expected a dict with {MODEL!r} and {ESTIMATOR!r}")
    return dict(data)


def _shape(t: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in t.shape)


def _checkpoint_dims(data: Mapping[str, Any], student: bool) -> str:
    """What the checkpoint was trained for, read off its tensors (for error hints)."""
    est = data.get(ESTIMATOR)
    actor = data.get(DEPTH_ACTOR) if student else data.get(MODEL)
    prefix = "" if student else "actor."
    parts = []
    if isinstance(est, Mapping) and hasattr(est.get("estimator.0.weight"), "shape"):
        parts.append(f"proprio {est['estimator.0.weight'].shape[1]}")
    if isinstance(actor, Mapping):
        last = sorted((k for k in actor if k.startswith(f"{prefix}actor_backbone.")
                       and k.endswith(".weight")), key=lambda k: int(k.split(".")[-2]))
        if last and hasattr(actor[last[-1]], "shape"):
            parts.append(f"{actor[last[-1]].shape[0]} actions")
    return ", ".join(parts)


def _check_section(problems: list[str], data: Mapping[str, Any], section: str,
                   expected: Mapping[str, Any], prefix: str = "",
                   ignore_prefixes: tuple[str, ...] = ()) -> dict[str, Any]:
    """Compare one state dict with the expected tensors; return the tensors (prefix stripped)."""
    sd = data.get(section)
    if sd is None:
        problems.append(f"missing {section!r}")
        return {}
    if not isinstance(sd, Mapping):
        problems.append(f"{section!r} is a {type(sd).__name__}, expected a state dict")
        return {}
    out: dict[str, Any] = {}
    for name, ref in expected.items():
        key = prefix + name
        if key not in sd:
            problems.append(f"{section}[{key!r}] is missing (expected shape {list(_shape(ref))})")
            continue
        value = sd[key]
        if not isinstance(value, torch.Tensor):
            problems.append(f"{section}[{key!r}] is a {type(value).__name__}, expected a tensor")
        elif not value.is_floating_point():
            problems.append(f"{section}[{key!r}] has dtype {value.dtype}, expected floating point")
        elif _shape(value) != _shape(ref):
            problems.append(f"{section}[{key!r}] has shape {list(_shape(value))}, expected "
                            f"{list(_shape(ref))}")
        elif not bool(torch.isfinite(value).all()):
            problems.append(f"{section}[{key!r}] contains NaN or infinite values")
        else:
            out[name] = value.detach().to(torch.float32)
    known = {prefix + name for name in expected}
    unexpected = [k for k in sd if k not in known
                  and not any(str(k).startswith(p) for p in ignore_prefixes)]
    if unexpected:
        problems.append(f"{section} has unexpected key(s) {unexpected[:5]} (a different network "
                        "architecture?)")
    return out


def load_checkpoint(path: str | Path, robot: RobotConfig) -> LoadedPolicy:
    """Load a teacher or depth-student checkpoint into the deploy graphs for ``robot``.

    The student's deploy actor uses ``depth_actor_state_dict``; the teacher's uses the ``actor.*``
    part of ``model_state_dict``. ``critic.*``, ``std``, ``optimizer_state_dict``, ``iter`` and
    ``infos`` are not needed and never cause a refusal.

    Raises:
        CheckpointError: not a file, not a checkpoint, a missing section or key, a tensor of the
            wrong shape or dtype, or non-finite weights. The message names each (up to four).
    """
    path = Path(path)
    data = read_checkpoint(path)
    arch = PolicyArchitecture.from_robot(robot)
    if MODEL not in data and ESTIMATOR not in data:
        raise CheckpointError(f"{path}: not a parkour checkpoint: no {MODEL!r} or {ESTIMATOR!r} "
                              f"(top-level keys: {sorted(map(str, data))[:8]})")
    has_encoder, has_depth_actor = DEPTH_ENCODER in data, DEPTH_ACTOR in data
    if has_encoder != has_depth_actor:
        missing = DEPTH_ACTOR if has_encoder else DEPTH_ENCODER
        raise CheckpointError(f"{path}: depth student checkpoint is missing {missing!r} "
                              f"(a student needs both {DEPTH_ENCODER!r} and {DEPTH_ACTOR!r})")
    student = has_encoder

    with torch.device("meta"):
        actor, estimator = Actor(arch), Estimator(arch)
        encoder = RecurrentDepthEncoder(arch) if student else None
    problems: list[str] = []
    if student:
        if not isinstance(data.get(MODEL, {}), Mapping):
            problems.append(f"{MODEL!r} is a {type(data[MODEL]).__name__}, expected a state dict")
        actor_sd = _check_section(problems, data, DEPTH_ACTOR, actor.state_dict())
        encoder_sd = _check_section(problems, data, DEPTH_ENCODER, encoder.state_dict())
    else:
        actor_sd = _check_section(problems, data, MODEL, actor.state_dict(), prefix="actor.",
                                  ignore_prefixes=("critic.", "std"))
        encoder_sd = {}
    estimator_sd = _check_section(problems, data, ESTIMATOR, estimator.state_dict())
    if problems:
        extra = len(problems) - _MAX_PROBLEMS
        more = f" (and {extra} more)" if extra > 0 else ""
        trained_for = _checkpoint_dims(data, student)
        hint = ""
        if trained_for and any("expected shape" in p or "has shape" in p for p in problems):
            hint = (f"; the checkpoint looks trained for {trained_for}, robot {robot.name!r} has "
                    f"proprio {ObservationLayout.from_robot(robot).proprio_dim}, {robot.n_joints} actions")
        raise CheckpointError(f"{path}: {'depth student' if student else 'teacher'} checkpoint "
                              f"does not fit robot {robot.name!r}: "
                              f"{'; '.join(problems[:_MAX_PROBLEMS])}{more}{hint}")

    actor.load_state_dict(actor_sd, strict=True, assign=True)
    estimator.load_state_dict(estimator_sd, strict=True, assign=True)
    depth_step = None
    if student:
        encoder.load_state_dict(encoder_sd, strict=True, assign=True)
        actor_step = ActorStep(actor, estimator).eval()
        depth_step = DepthStep(encoder).eval()
    else:
        actor_step = TeacherActorStep(actor, estimator).eval()
    for module in (actor_step, depth_step):
        if module is not None:
            module.requires_grad_(False)

    infos = data.get("infos")
    iteration = data.get("iter")
    synthetic = isinstance(infos, Mapping) and bool(infos.get("krabby_synthetic", False))
    policy = LoadedPolicy(
        actor_step=actor_step,
        depth_step=depth_step,
        is_student=student,
        arch=arch,
        robot=robot,
        path=path,
        sha256=_sha256(path),
        iteration=int(iteration) if isinstance(iteration, int) else None,
        synthetic=synthetic,
        extra={"infos": dict(infos) if isinstance(infos, Mapping) else None},
    )
    log.info("loaded %s checkpoint %s (iteration %s%s) for robot %s", policy.kind, path,
             policy.iteration, ", SYNTHETIC untrained weights" if synthetic else "", robot.name)
    return policy


@dataclass(frozen=True)
class CheckCheckpointSection:
    """The checkpoint to check."""

    section: ClassVar[str] = "check"

    checkpoint: str = setting(positional=True, metavar="CHECKPOINT",
                              help="path to the checkpoint (.pt)")


@dataclass(frozen=True)
class CheckCheckpointConfig:
    """``python -m compute.parkour.checkpoint``'s run configuration."""

    check: CheckCheckpointSection = part(CheckCheckpointSection)
    robot: RobotSection = part(RobotSection)


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(CheckCheckpointConfig, prog="python -m compute.parkour.checkpoint",
                               description="Check a parkour checkpoint against a robot.")


def main(argv: list[str] | None = None) -> int:
    """Check a checkpoint against a robot definition and print what it holds."""
    config = parse_cli(CheckCheckpointConfig, argv, build_parser())
    try:
        robot = load_robot(config.robot.robot)
        policy = load_checkpoint(config.check.checkpoint, robot)
    except (CheckpointError, RobotDefinitionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    a = policy.arch
    print(f"{policy.path}: {policy.kind} checkpoint, iteration {policy.iteration}, "
          f"robot {robot.name}, obs {a.obs_dim}, actions {a.num_actions}, proprio {a.num_prop}"
          + (" (SYNTHETIC: untrained weights for plumbing tests)" if policy.synthetic else ""))
    print(f"sha256 {policy.sha256}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

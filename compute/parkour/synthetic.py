"""Seeded synthetic checkpoints in the upstream layout, for plumbing tests.

**An untrained checkpoint, not a walking policy.** The weights are random (PyTorch's default
initialisation from a fixed seed), with the actor's last layer scaled down so the actions stay
small (joint targets within about a hundredth of a radian of the default pose). It exercises the
whole path (loading, export, engines, the control loop) with the exact tensor names and shapes a
trained checkpoint has; a robot running it will stand roughly still or twitch, never walk.

The file is marked ``infos["krabby_synthetic"] = True``; :func:`load_checkpoint` reports it and
the export manifest records it.

CLI (``krabby-make-checkpoint``)::

    krabby-make-checkpoint --output model.pt --robot go2 --seed 0            # depth student
    krabby-make-checkpoint --output teacher.pt --robot go2 --seed 0 --teacher
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from hal.config import build_parser as build_config_parser
from hal.config import parse_cli, part, setting
from hal.config.sections import FilesSection, RobotSection, SceneSection
from hal.optional import require
from hal.robot import RobotConfig, RobotDefinitionError, load_robot

from compute.parkour.networks import (
    ActorCritic,
    Estimator,
    PolicyArchitecture,
    RecurrentDepthEncoder,
)

torch = require("torch", "making synthetic checkpoints")

__all__ = ["FINAL_LAYER_SCALE", "make_synthetic_checkpoint", "write_synthetic_checkpoint", "main",
           "build_parser", "MakeCheckpointConfig"]

FINAL_LAYER_SCALE = 0.1
"""Factor on the actor's last layer: raw actions stay around 0.01 (targets near the default)."""


def _shrink_last_layer(actor_state: dict[str, Any], prefix: str) -> None:
    weights = sorted((k for k in actor_state if k.startswith(f"{prefix}actor_backbone.")
                      and k.endswith(".weight")), key=lambda k: int(k.split(".")[-2]))
    last = weights[-1]
    actor_state[last] = actor_state[last] * FINAL_LAYER_SCALE
    actor_state[last[: -len("weight")] + "bias"].zero_()


def make_synthetic_checkpoint(robot: RobotConfig, seed: int = 0,
                              teacher: bool = False) -> dict[str, Any]:
    """Build the checkpoint dict (upstream layout) with seeded random weights.

    Args:
        robot: sizes of every input and output layer come from it (an 18-joint robot gets a
            73-wide proprio).
        seed: the same seed gives bit-identical tensors.
        teacher: a scan teacher (no depth encoder); otherwise a depth student whose
            ``depth_actor_state_dict`` differs from the teacher actor in ``model_state_dict``.

    Returns:
        The dict ``torch.save`` writes: ``model_state_dict``, ``estimator_state_dict``,
        ``optimizer_state_dict``, ``iter``, ``infos`` (+ depth sections for a student).
    """
    arch = PolicyArchitecture.from_robot(robot)
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        actor_critic = ActorCritic(arch)
        estimator = Estimator(arch)
        model_sd = {k: v.detach().clone() for k, v in actor_critic.state_dict().items()}
        _shrink_last_layer(model_sd, "actor.")
        data: dict[str, Any] = {
            "model_state_dict": model_sd,
            "estimator_state_dict": {k: v.detach().clone()
                                     for k, v in estimator.state_dict().items()},
            # The upstream runner saves Adam's state; an empty one keeps the layout honest.
            "optimizer_state_dict": {"state": {}, "param_groups": [
                {"lr": 2e-4, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0,
                 "params": list(range(len(model_sd)))}]},
            "iter": 0,
            "infos": {"krabby_synthetic": True, "seed": int(seed), "robot": robot.name,
                      "note": "untrained random weights for plumbing tests; not a walking policy"},
        }
        if not teacher:
            depth_actor = ActorCritic(arch).actor
            depth_actor_sd = {k: v.detach().clone() for k, v in depth_actor.state_dict().items()}
            _shrink_last_layer(depth_actor_sd, "")
            encoder = RecurrentDepthEncoder(arch)
            data["depth_actor_state_dict"] = depth_actor_sd
            data["depth_encoder_state_dict"] = {k: v.detach().clone()
                                                for k, v in encoder.state_dict().items()}
    finally:
        torch.random.set_rng_state(generator_state)
    return data


def write_synthetic_checkpoint(path: str | Path, robot: RobotConfig, seed: int = 0,
                               teacher: bool = False) -> Path:
    """Write :func:`make_synthetic_checkpoint` to ``path`` atomically (temp file, then rename)."""
    path = Path(path)
    data = make_synthetic_checkpoint(robot, seed=seed, teacher=teacher)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(data, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@dataclass(frozen=True)
class SyntheticSection:
    """What kind of synthetic checkpoint."""

    section: ClassVar[str] = "synthetic"

    teacher: bool = setting(False, help="a scan teacher (no depth encoder) instead of a depth "
                                        "student")


@dataclass(frozen=True)
class MakeCheckpointConfig:
    """krabby-make-checkpoint's run configuration (--output: the checkpoint file, e.g. model.pt)."""

    files: FilesSection = part(FilesSection, only=("output",), required=("output",))
    robot: RobotSection = part(RobotSection)
    scene: SceneSection = part(SceneSection, only=("seed",))
    synthetic: SyntheticSection = part(SyntheticSection)


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(
        MakeCheckpointConfig, prog="krabby-make-checkpoint",
        description="Write a synthetic parkour checkpoint (--output FILE, e.g. model.pt) in the "
                    "upstream layout. Its weights are random (seeded): it is for testing the export "
                    "and runtime plumbing and is NOT a walking policy.")


def main(argv: list[str] | None = None) -> int:
    """``krabby-make-checkpoint``: write an untrained checkpoint for plumbing tests."""
    parser = build_parser()
    config = parse_cli(MakeCheckpointConfig, argv, parser)
    output = Path(config.files.output)
    try:
        robot = load_robot(config.robot.robot)
    except RobotDefinitionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if output.is_dir():
        print(f"error: --output {output} is a directory; give a file name such as "
              f"{output / 'model.pt'}", file=sys.stderr)
        return 2
    if not output.parent.is_dir():
        print(f"error: --output {output}: directory {output.parent} does not exist",
              file=sys.stderr)
        return 2
    try:
        write_synthetic_checkpoint(output, robot, seed=config.scene.seed,
                                   teacher=config.synthetic.teacher)
    except OSError as exc:
        print(f"error: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    kind = "teacher" if config.synthetic.teacher else "depth student"
    print(f"wrote {output}: synthetic {kind} checkpoint for robot {robot.name} (seed {config.scene.seed}). "
          "Untrained random weights for plumbing tests - not a walking policy.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

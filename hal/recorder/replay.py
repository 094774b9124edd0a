"""``krabby-replay``: run a recorded log's inputs through an engine and compare with what happened.

The replay feeds the recorded hardware observations back through the same
:class:`~compute.parkour.observation.ObservationBuilder` and the engine under test, with the
recorded depth timing:

1. the depth engine runs on every recorded depth step's inputs (the preprocessed frame and the
   masked proprio, exactly as the policy saw them), in order, with the GRU hidden state carried
   from zero (a log that starts at the client's start) or from the recorded state (a flight dump,
   or after a gap left by dropped records);
2. each actor step takes the hardware observation of the tick it answered (``obs_seq``), builds
   the policy observation with the latent+yaw of the replayed depth step whose frame seq equals
   the step's recorded ``depth_seq_used`` (zeros before the first), runs the actor and
   post-processes the action, which becomes the next step's "last action".

It reports, per joint, the largest difference between replayed and recorded raw actions, and the
largest differences of the policy observation and the depth latent. On the engine that ran, they
are equal up to float noise; a changed engine, observation builder or depth pipeline shows up.

Examples::

    krabby-replay run.mcap --engine model.onnx
    krabby-replay flight/flight-20250101-120000-policy-to-damping.mcap --engine model.onnx --plot f.png
    krabby-replay crashed.mcap --engine model.onnx --partial     # a log whose writer died

Exit status: 0 within ``--tolerance``, 1 beyond it, 2 for a bad log or engine (one-line error).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from hal.config import build_parser as build_config_parser
from hal.config import parse_cli, part, setting
from hal.config.sections import FilesSection, OutputSection, PolicyFilesSection, RobotSection
from hal.recorder.reader import LogFormatError, RecordedLog, read_log

if TYPE_CHECKING:
    from engines.base import Engine
    from hal.robot import RobotConfig

__all__ = ["ReplayResult", "replay_log", "main", "build_parser", "ReplayConfig", "ReplaySection"]

log = logging.getLogger(__name__)


@dataclass
class ReplayResult:
    """Replayed vs recorded, over every actor step that could be replayed."""

    tolerance: float
    joint_names: tuple[str, ...]  # policy order
    obs_seq: np.ndarray  # (N,) tick seq each replayed step answered
    action_abs_diff: np.ndarray  # (N, n_joints) |replayed - recorded| raw action
    observation_abs_diff: np.ndarray  # (N,) max over the observation
    latent_abs_diff: np.ndarray  # (N,) max over the latent+yaw the actor used
    depth_latent_abs_diff: np.ndarray  # (D,) max over each depth step's latent_yaw output
    hidden_abs_diff: np.ndarray  # (D,) carried hidden state vs the recorded one (NaN at a reseed)
    depth_steps: int = 0
    reseeds: int = 0
    latent_fallbacks: int = 0
    skipped: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def steps(self) -> int:
        return len(self.obs_seq)

    @staticmethod
    def _max(values: np.ndarray) -> float:
        return float(np.nanmax(values)) if values.size and not np.all(np.isnan(values)) else 0.0

    @property
    def action_max_abs_per_joint(self) -> np.ndarray:
        if not self.steps:
            return np.zeros(len(self.joint_names))
        return np.nanmax(self.action_abs_diff, axis=0)

    @property
    def action_max_abs(self) -> float:
        return self._max(self.action_abs_diff)

    @property
    def observation_max_abs(self) -> float:
        return self._max(self.observation_abs_diff)

    @property
    def latent_max_abs(self) -> float:
        return max(self._max(self.latent_abs_diff), self._max(self.depth_latent_abs_diff))

    @property
    def first_divergence(self) -> int | None:
        """The tick seq of the first step whose action or observation exceeds the tolerance."""
        if not self.steps:
            return None
        worst = np.maximum(self.action_abs_diff.max(axis=1), self.observation_abs_diff)
        beyond = np.flatnonzero(worst > self.tolerance)
        return int(self.obs_seq[beyond[0]]) if beyond.size else None

    @property
    def passed(self) -> bool:
        worst = max(self.action_max_abs, self.observation_max_abs, self.latent_max_abs)
        return self.steps > 0 and worst <= self.tolerance

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures."""
        worst = int(np.nanargmax(self.action_abs_diff.max(axis=1))) if self.steps else -1
        return {
            "passed": self.passed, "tolerance": self.tolerance, "actor_steps": self.steps,
            "depth_steps": self.depth_steps, "reseeds": self.reseeds,
            "latent_fallbacks": self.latent_fallbacks, "skipped_steps": self.skipped,
            "action_max_abs": self.action_max_abs,
            "action_max_abs_per_joint": dict(zip(self.joint_names,
                                                 map(float, self.action_max_abs_per_joint))),
            "action_worst_obs_seq": int(self.obs_seq[worst]) if worst >= 0 else None,
            "first_divergence_obs_seq": self.first_divergence,
            "observation_max_abs": self.observation_max_abs,
            "latent_max_abs": self.latent_max_abs,
            "hidden_max_abs": self._max(self.hidden_abs_diff),
            "notes": list(self.notes),
        }


def _abs_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| with equal non-finite values (NaN and NaN, inf and inf) counting as no difference."""
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    with np.errstate(invalid="ignore"):
        diff = np.abs(a64 - b64)
    same = (a64 == b64) | (np.isnan(a64) & np.isnan(b64))
    diff[same] = 0.0
    diff[np.isnan(diff)] = np.inf
    return diff


class _TickObservation:
    """A recorded tick as the hardware observation the client read (float32, hardware order)."""

    __slots__ = ("joint_position_rad", "joint_velocity_rad_s", "imu_quaternion_wxyz",
                 "imu_angular_velocity_rad_s", "foot_force_n")


class _TickSource:
    """Recorded ticks by seq, converted once to the float32 the observation slots hold."""

    def __init__(self, log_: RecordedLog) -> None:
        ticks = log_.ticks
        self._rows = {int(s): i for i, s in enumerate(ticks.column("seq"))}
        f32 = {name: ticks.field(name).astype(np.float32) for name in (
            "joints.position_rad", "joints.velocity_rad_s", "imu.quaternion_wxyz",
            "imu.angular_velocity_rad_s", "contacts.force_n")}
        # Without a contact sensor the HAL leaves the slot's foot forces at zero.
        f32["contacts.force_n"][ticks.column("contacts.present") == 0] = 0.0
        self._f32 = f32

    def get(self, seq: int) -> _TickObservation | None:
        row = self._rows.get(seq)
        if row is None:
            return None
        obs = _TickObservation()
        obs.joint_position_rad = self._f32["joints.position_rad"][row]
        obs.joint_velocity_rad_s = self._f32["joints.velocity_rad_s"][row]
        obs.imu_quaternion_wxyz = self._f32["imu.quaternion_wxyz"][row]
        obs.imu_angular_velocity_rad_s = self._f32["imu.angular_velocity_rad_s"][row]
        obs.foot_force_n = self._f32["contacts.force_n"][row]
        return obs


def _seed_builder(builder: Any, processor: Any, recorded_obs: np.ndarray) -> None:
    """Put the builder and the action processor in the state that produced ``recorded_obs``.

    Used where the log does not start at the client's start (a flight dump, a gap of dropped
    records): the history rows, the last action and the contact filter all appear in the
    recorded observation.
    """
    builder.resume_from(recorded_obs)
    np.copyto(processor.last_raw_action, recorded_obs[slice(*builder.layout.last_action)])


def _column_or(table: Any, name: str, default: int) -> np.ndarray:
    """An int column, or ``default`` for every row of a log recorded before it existed."""
    if name in table.layout.int_fields:
        return table.column(name)
    return np.full(len(table), default, np.int64)


def replay_log(log_: RecordedLog, robot: RobotConfig, actor: Engine, depth: Engine | None,
               tolerance: float = 1e-5) -> ReplayResult:
    """Replay ``log_`` through ``actor`` (and ``depth``) engines; see the module docstring.

    Args:
        log_: A log from :func:`~hal.recorder.reader.read_log`.
        robot: The robot definition the log was recorded with.
        actor: Actor engine (inputs ``obs``, optional ``depth_latent``; output ``actions``).
        depth: Depth engine, required when the actor takes ``depth_latent``.
        tolerance: The largest difference still counted as reproduced.

    Raises:
        ValueError: the log and the engines or robot do not fit together.
    """
    from compute.parkour.observation import PolicyCommand
    from compute.parkour.layout import ObservationLayout
    from compute.parkour.policy import ParkourPolicy

    run = log_.run
    recorded_joints = tuple(run.get("joint_names_hardware", ()))
    if recorded_joints and recorded_joints != tuple(robot.joint_names_hardware):
        raise ValueError(f"the log was recorded on joints {list(recorded_joints)} but robot "
                         f"{robot.name!r} has {list(robot.joint_names_hardware)}; pass --robot")
    student = "depth_latent" in actor.inputs
    actor_table, depth_table = log_.actor, log_.depth
    if not len(actor_table):
        raise ValueError("the log has no actor steps (recorded without the in-process inference "
                         "client?): nothing to replay")
    recorded_student = bool(actor_table.column("has_latent").any())
    if student != recorded_student:
        raise ValueError(f"the engine is a {'depth student' if student else 'teacher'} but the "
                         f"log was recorded with a {'student' if recorded_student else 'teacher'}")
    if student and depth is None:
        raise ValueError("the actor takes depth_latent but no depth engine was given")
    obs_dim = actor_table.layout.float_fields["observation"].shape[0]
    expected_dim = ObservationLayout.from_robot(robot).obs_dim
    if obs_dim != expected_dim:
        raise ValueError(f"the log's observations have {obs_dim} values; robot {robot.name!r} "
                         f"builds {expected_dim}")
    from_start = run.get("starts") == "client_start"
    notes: list[str] = []
    policy = ParkourPolicy(robot, actor, depth)

    # 1. Depth steps, in order, hidden state carried within an episode.
    replayed_latent: dict[int, np.ndarray] = {}
    n_depth = len(depth_table) if student else 0
    depth_diff = np.zeros(n_depth)
    hidden_diff = np.full(n_depth, np.nan)
    reseeds = 0
    if n_depth:
        hidden_in = depth.inputs["hidden_in"]
        steps = depth_table.column("step")
        frames = depth_table.column("frame_seq")
        episodes = _column_or(depth_table, "episode", 0)
        images = depth_table.field("depth")
        proprio = depth_table.field("proprio")
        recorded_hidden = depth_table.field("hidden_in")
        recorded_latent = depth_table.field("latent_yaw")
        for r in range(n_depth):
            new_episode = r > 0 and episodes[r] != episodes[r - 1]
            if (r == 0 and from_start and steps[0] == 0) or new_episode:
                policy.reset_depth()
                hidden_diff[r] = float(np.abs(recorded_hidden[r]).max())
            elif r == 0 or steps[r] != steps[r - 1] + 1:
                np.copyto(hidden_in.reshape(-1), recorded_hidden[r])
                reseeds += 1
            else:
                hidden_diff[r] = _abs_diff(hidden_in.reshape(-1), recorded_hidden[r]).max()
            np.copyto(policy.depth_image, images[r].reshape(policy.depth_image.shape))
            out = policy.depth_step(proprio[r]).copy()
            replayed_latent[int(frames[r])] = out
            depth_diff[r] = _abs_diff(out, recorded_latent[r]).max()

    # 2. Actor steps through the same policy step as the client, episode by episode.
    command_info = run.get("command", {})
    command = PolicyCommand(float(command_info.get("forward_speed_m_s", 0.0)),
                            str(command_info.get("mode", "parkour")))
    ticks = _TickSource(log_)
    a_steps, a_seq = actor_table.column("step"), actor_table.column("obs_seq")
    a_used = actor_table.column("depth_seq_used")
    a_engaged = _column_or(actor_table, "engaged", 1)
    a_episode = _column_or(actor_table, "episode", 0)
    a_obs, a_latent = actor_table.field("observation"), actor_table.field("depth_latent")
    a_action = actor_table.field("raw_action")
    kept, action_diff, obs_diff, latent_diff = [], [], [], []
    fallbacks = skipped = 0
    need_seed = not (from_start and a_steps[0] == 0)
    for r in range(len(actor_table)):
        if r and a_steps[r] != a_steps[r - 1] + 1:
            need_seed = True  # records were dropped: the builder's history no longer matches
        hw = ticks.get(int(a_seq[r]))
        if hw is None:
            skipped += 1
            need_seed = True
            continue
        if r == 0 or a_episode[r] != a_episode[r - 1]:
            policy.reset(hw, reset_depth=False)
        if need_seed:
            _seed_builder(policy.builder, policy.actions, a_obs[r])
            reseeds += 1
            need_seed = False
        used = int(a_used[r])
        if not student or used == 0:
            latent = None
        elif used in replayed_latent:
            latent = replayed_latent[used]
        else:
            latent = a_latent[r]
            fallbacks += 1
        policy.actor_step(hw, command, bool(a_engaged[r]), latent, recorded=a_obs[r])
        kept.append(int(a_seq[r]))
        action_diff.append(_abs_diff(policy.last_raw_action, a_action[r]))
        obs_diff.append(_abs_diff(policy.observation, a_obs[r]).max())
        used_latent = latent if latent is not None else np.zeros(policy.layout.latent_yaw_dim, np.float32)
        latent_diff.append(_abs_diff(used_latent, a_latent[r]).max() if student else 0.0)
    if fallbacks:
        notes.append(f"{fallbacks} actor steps used a depth latent whose depth step is not in the "
                     "log (recorded latent used)")
    if skipped:
        notes.append(f"{skipped} actor steps answer ticks missing from the log (skipped)")
    if log_.damage is not None:
        notes.append(f"partial log: {log_.damage}")
    n = robot.n_joints
    return ReplayResult(
        tolerance=tolerance, joint_names=tuple(robot.joint_names_policy),
        obs_seq=np.asarray(kept, np.int64),
        action_abs_diff=np.asarray(action_diff, np.float64).reshape(-1, n),
        observation_abs_diff=np.asarray(obs_diff, np.float64),
        latent_abs_diff=np.asarray(latent_diff, np.float64),
        depth_latent_abs_diff=depth_diff, hidden_abs_diff=hidden_diff, depth_steps=n_depth,
        reseeds=reseeds, latent_fallbacks=fallbacks, skipped=skipped, notes=notes)


# -- CLI ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReplaySection:
    """krabby-replay's own settings: the log and how closely it must be reproduced."""

    section: ClassVar[str] = "replay"

    log: str = setting(positional=True, metavar="LOG",
                       help="a krabby flight log (.mcap) from --record or a flight dump")
    tolerance: float = setting(1e-5, metavar="ABS",
                               help="largest |difference| counted as reproduced")
    partial: bool = setting(False, help="use what precedes damage in a truncated or corrupted log")


@dataclass(frozen=True)
class ReplayConfig:
    """krabby-replay's run configuration."""

    replay: ReplaySection = part(ReplaySection)
    policy: PolicyFilesSection = part(PolicyFilesSection, only=("engine", "checkpoint", "device"))
    # None: the robot named in the log
    robot: RobotSection = part(RobotSection, defaults={"robot": None})
    files: FilesSection = part(FilesSection, only=("plot", "json_path"))
    output: OutputSection = part(OutputSection, only=("log_level",),
                                 defaults={"log_level": "WARNING"})


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(ReplayConfig, prog="krabby-replay",
                               description=__doc__.split("\n\n")[0],
                               epilog="--robot defaults to the robot named in the log. "
                                      "Exit status: 0 reproduced, 1 differs, 2 error.")


def _print_result(log_: RecordedLog, result: ReplayResult, engine_name: str) -> None:
    run = log_.run
    print(f"log {log_.path}: {run.get('log', '?')} log of robot {run.get('robot')}, "
          f"{len(log_.ticks)} ticks, {len(log_.actor)} actor steps, {len(log_.depth)} depth steps"
          f"{', recorded with ' + str(run['policy'].get('path')) if run.get('policy') else ''}")
    print(f"replayed {result.steps} actor steps and {result.depth_steps} depth steps with "
          f"{engine_name} ({result.reseeds} state reseeds)")
    print("max |replayed - recorded| raw action per joint (policy order):")
    for name, value in zip(result.joint_names, result.action_max_abs_per_joint):
        print(f"  {name:<16}{value:.3g}")
    print(f"max |Δ action|      {result.action_max_abs:.3g}")
    print(f"max |Δ observation| {result.observation_max_abs:.3g}")
    print(f"max |Δ depth latent| {result.latent_max_abs:.3g}")
    first = result.first_divergence
    if first is not None:
        beyond = int(np.count_nonzero(np.maximum(result.action_abs_diff.max(axis=1),
                                                 result.observation_abs_diff) > result.tolerance))
        print(f"first step beyond tolerance answers tick {first} ({beyond} of {result.steps} "
              f"steps beyond)")
    for note in result.notes:
        print(f"note: {note}")
    verdict = "OK: reproduced" if result.passed else "DIFFERS: not reproduced"
    print(f"{verdict} within tolerance {result.tolerance:g}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    config = parse_cli(ReplayConfig, argv, parser)
    config.output.configure_logging("%(levelname)s %(name)s: %(message)s")
    try:
        return _run(config)
    except LogFormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _run(config: ReplayConfig) -> int:
    from compute.parkour.policy_engines import PolicyConfigError, open_policy_engines
    from engines import EngineError
    from engines.manifest import ManifestError
    from hal.robot import RobotDefinitionError, load_robot

    if not config.replay.tolerance >= 0:
        print(f"error: --tolerance {config.replay.tolerance}: must be >= 0", file=sys.stderr)
        return 2
    if config.policy.engine is None and config.policy.checkpoint is None and config.files.plot is None:
        print("error: nothing to do: pass --engine model.onnx (or --checkpoint) to replay, "
              "and/or --plot out.png", file=sys.stderr)
        return 2
    log_ = read_log(config.replay.log, allow_partial=config.replay.partial)
    if log_.damage is not None:
        print(f"warning: {log_.damage}; using the {len(log_.ticks)} ticks before it",
              file=sys.stderr)
    elif log_.unclosed:
        print(f"note: {config.replay.log} was not closed by its writer (killed?): replaying its "
              f"{len(log_.ticks)} ticks up to its last flush", file=sys.stderr)
    result = None
    if config.policy.engine is not None or config.policy.checkpoint is not None:
        source = log_.run.get("robot_source")
        robot_name = config.robot.robot or (source if source and Path(source).is_file()
                                    else log_.run.get("robot"))
        if robot_name is None:
            print("error: the log names no robot; pass --robot", file=sys.stderr)
            return 2
        try:
            robot = load_robot(robot_name)
            policy = open_policy_engines(robot, engine=config.policy.engine, checkpoint=config.policy.checkpoint,
                                         device=config.policy.device)
        except (RobotDefinitionError, PolicyConfigError, EngineError, ManifestError,
                FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        try:
            result = replay_log(log_, robot, policy.actor, policy.depth, config.replay.tolerance)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        finally:
            policy.close()
        _print_result(log_, result, str(policy.path))
        if config.files.json_path:
            Path(config.files.json_path).write_text(json.dumps(result.summary(), indent=2) + "\n")
    if config.files.plot:
        from hal.recorder.plot import plot_summary

        print(f"plot: {plot_summary(log_, result, Path(config.files.plot))}")
    if result is not None and not result.passed:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``ParkourPolicy``: the one implementation of the parkour policy's steps, over engines.

Single-threaded and transport-free: the inference client's actor and depth threads, ``krabby-replay``
and the tests all call it. Per policy step (the trained rate,
docs/architecture.md#the-observation-and-the-actions)::

    policy.reset(hw_obs)                         # a new episode (every hand-over, see below)
    targets = policy.actor_step(hw_obs, command, engaged, latent_yaw, height_scan_m)
    policy.preprocess_depth(frame, intrinsics)   # every depth interval (depth thread)
    latent_yaw = policy.depth_step(proprio)

What it reproduces from training (legged_gym / extreme-parkour):

- **Episode start.** :meth:`reset` clears the history (the next frame fills all ten slots), the
  last action, the contact memory and the GRU state, and sets the heading command to the IMU's
  yaw. The HAL holds the stand pose for at least ``gate_min_ready_s`` after every ``ready`` began
  and the client resets when it does, so the first step the robot executes sees primed stand
  frames and zero actions, as a training episode's first steps do.
- **Executed actions only.** While not ``engaged`` (the HAL is not applying the policy), the
  action fed back as "last action" is zero: an output that was never executed never enters the
  observation.
- **Heading** (proprio [6:8]): a student writes 1.5 × its predicted yaw; a teacher gets
  ``wrap(heading_command − yaw)`` for both ``delta_yaw`` and ``delta_next_yaw``. Training refreshed
  the heading error and the height scan every ``update_interval_steps`` policy steps (its
  ``global_counter % 5``): so does this step, counting from the reset.
- **Goals**: with a :attr:`ParkourPolicy.goal_source` (a simulated course), a teacher's
  ``delta_yaw`` / ``delta_next_yaw`` are the heading errors to the current and the next goal
  (:func:`compute.parkour.goals.goal_heading_errors`), refreshed on the same steps; without one,
  the operator's heading.
- **Height scan**: ``clip(base_height − 0.3, −1, 1)`` per point when the HAL measures the terrain
  (the simulator does), else the flat-ground value of the contract's nominal base height.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from compute.parkour.actions import ActionProcessor
from compute.parkour.depth import DepthPreprocessor, DepthPreprocessorConfig
from compute.parkour.goals import goal_heading_errors
from compute.parkour.graphs import ACTOR_GRAPH, DEPTH_GRAPH, GRAPH_TENSOR_NAMES
from compute.parkour.layout import scan_from_base_height
from compute.parkour.observation import (
    HardwareObservation,
    ObservationBuilder,
    PolicyCommand,
    wrap_angle,
    yaw_from_quaternion,
)
from engines.base import Engine, TensorRunner
from hal.devices.base import CameraIntrinsics
from hal.robot import RobotConfig

__all__ = ["ParkourPolicy", "DepthRecurrence"]

GoalTargets = tuple[np.ndarray, np.ndarray, np.ndarray]
"""(trunk xy, current goal xy, next goal xy), world frame."""

# The graphs' tensor names, from the one place they are declared.
(ACTOR_INPUT, ACTOR_LATENT_INPUT), (ACTOR_OUTPUT,) = GRAPH_TENSOR_NAMES[ACTOR_GRAPH]
(DEPTH_IMAGE, DEPTH_PROPRIO, DEPTH_HIDDEN_IN), (DEPTH_LATENT_YAW, DEPTH_HIDDEN_OUT) = \
    GRAPH_TENSOR_NAMES[DEPTH_GRAPH]


class DepthRecurrence:
    """The depth encoder's recurrent step over an engine: the GRU state is carried from each
    step's ``hidden_out`` into the next step's ``hidden_in`` (the one implementation, used by the
    policy, ``krabby-replay`` through it, and the export's rollout parity check).

    Args:
        engine: Inputs ``depth``, ``proprio``, ``hidden_in``; outputs ``latent_yaw``,
            ``hidden_out``: an :class:`engines.base.Engine`, or any other
            :class:`engines.base.TensorRunner`.
    """

    def __init__(self, engine: TensorRunner) -> None:
        self.engine = engine

    @property
    def image(self) -> np.ndarray:
        """The image input (58, 87): write the preprocessed frame here before :meth:`step`."""
        image = self.engine.inputs[DEPTH_IMAGE]
        return image.reshape(image.shape[-2:])

    @property
    def hidden(self) -> np.ndarray:
        """The state the next step starts from."""
        return self.engine.inputs[DEPTH_HIDDEN_IN]

    def reset(self) -> None:
        """A new episode: the GRU starts from zero, as in training."""
        self.engine.inputs[DEPTH_HIDDEN_IN].fill(0.0)

    def step(self, proprio: np.ndarray) -> np.ndarray:
        """Run on the current image and ``proprio``; returns latent + yaw (a view of the output)."""
        engine = self.engine
        np.copyto(engine.inputs[DEPTH_PROPRIO].reshape(-1), np.asarray(proprio).reshape(-1))
        engine.run()
        np.copyto(engine.inputs[DEPTH_HIDDEN_IN], engine.outputs[DEPTH_HIDDEN_OUT])
        return engine.outputs[DEPTH_LATENT_YAW].reshape(-1)


class ParkourPolicy:
    """The parkour policy's actor and depth steps over engines (see the module docstring).

    Args:
        robot: The robot configuration the policy runs with (the contract applied).
        actor: Actor engine: inputs ``obs`` (and ``depth_latent`` for a student), output
            ``actions``.
        depth: Depth engine (``depth``, ``proprio``, ``hidden_in`` → ``latent_yaw``,
            ``hidden_out``); None for a teacher.
        depth_config: Depth preprocessing options.

    Raises:
        ValueError: the engines do not have the tensors above.
    """

    def __init__(self, robot: RobotConfig, actor: Engine, depth: Engine | None = None,
                 depth_config: DepthPreprocessorConfig | None = None) -> None:
        if ACTOR_INPUT not in actor.inputs or ACTOR_OUTPUT not in actor.outputs:
            raise ValueError(f"actor engine has inputs {sorted(actor.inputs)} and outputs "
                             f"{sorted(actor.outputs)}; expected {ACTOR_INPUT!r} -> "
                             f"{ACTOR_OUTPUT!r}")
        self.robot = robot
        self.actor = actor
        self.depth = depth
        self.is_student = ACTOR_LATENT_INPUT in actor.inputs
        if self.is_student and depth is None:
            raise ValueError("the actor takes a depth_latent but no depth engine was given: pass "
                             "the depth engine (model.depth.onnx / .plan) exported with it")
        self.builder = ObservationBuilder(robot)
        self.actions = ActionProcessor(robot)
        self.layout = self.builder.layout
        self.policy_dt_s = 1.0 / robot.policy_rate_hz
        self.refresh_interval_steps = robot.depth_camera.update_interval_steps
        self._obs_in = actor.inputs[ACTOR_INPUT]
        self._latent_in = actor.inputs.get(ACTOR_LATENT_INPUT)
        self._actions_out = actor.outputs[ACTOR_OUTPUT]
        self._latent_dim = self.layout.depth_latent_dim
        self._zero_yaw = np.zeros(2, np.float32)
        self._heading_terms = np.zeros(2, np.float32)
        self._flat_scan = scan_from_base_height(
            robot.nominal_base_height_m, np.zeros(self.layout.scan_dim, np.float32))
        self._scan = self._flat_scan.copy()
        self._depth_config = depth_config
        self._recurrence = DepthRecurrence(depth) if depth is not None else None
        self._preprocessor: DepthPreprocessor | None = None
        self.heading_command_rad = 0.0
        # () -> (trunk xy, current goal xy, next goal xy) in the world frame, or None: a course's
        # goals steer a teacher instead of the operator heading (see the module docstring).
        self.goal_source: Callable[[], GoalTargets | None] | None = None
        self.steps = 0  # policy steps since the last reset
        self.episodes = 0

    # -- episode -------------------------------------------------------------------------------

    def reset(self, observation: HardwareObservation, reset_depth: bool = True) -> None:
        """Start an episode on ``observation``'s pose: history, last action, contact memory, GRU
        state and refresh counter cleared; heading command = the IMU's yaw.

        ``reset_depth=False`` leaves the GRU state to the thread that runs the depth steps (it
        calls :meth:`reset_depth` itself: the engine's buffers belong to one thread).
        """
        self.builder.reset()
        self.actions.reset()
        if reset_depth:
            self.reset_depth()
        q = observation.imu_quaternion_wxyz
        self.heading_command_rad = yaw_from_quaternion(float(q[0]), float(q[1]), float(q[2]),
                                                       float(q[3]))
        self.steps = 0
        self.episodes += 1

    def reset_depth(self) -> None:
        """Zero the depth encoder's recurrent state (its thread calls this on a new episode)."""
        if self._recurrence is not None:
            self._recurrence.reset()

    # -- actor ---------------------------------------------------------------------------------

    def actor_step(self, observation: HardwareObservation, command: PolicyCommand,
                   engaged: bool, latent_yaw: np.ndarray | None = None,
                   height_scan_m: np.ndarray | None = None,
                   recorded: np.ndarray | None = None) -> np.ndarray:
        """One policy step: observation → actor → joint targets (hardware order).

        Args:
            observation: The hardware observation (arrays in hardware order).
            command: Forward speed, mode and yaw rate.
            engaged: The HAL is applying this policy's commands (safety mode ``policy``).
                When False the previous output was not executed: it is not fed back.
            latent_yaw: A student's newest depth output (latent + 2 yaw values); None before
                the first depth step of the episode (zeros are used).
            height_scan_m: The base's height above the terrain at the scan points, when the HAL
                measures it; None uses the flat ground of the contract's nominal height.
            recorded: Replaying a log: the observation recorded for this step, whose scan and
                teacher heading terms (inputs a log does not otherwise hold) are used as they are.

        Returns:
            The targets (rad, hardware order): the action processor's buffer, rewritten by the
            next step. The raw action is :attr:`last_raw_action`.
        """
        if not engaged:
            self.actions.last_raw_action.fill(0.0)
        refresh = self.steps % self.refresh_interval_steps == 0
        if engaged and command.yaw_rate_rad_s:
            self.heading_command_rad = wrap_angle(
                self.heading_command_rad + command.yaw_rate_rad_s * self.policy_dt_s)
        if recorded is not None:
            np.copyto(self._scan, recorded[slice(*self.layout.scan)])
        elif refresh:
            if height_scan_m is None:
                np.copyto(self._scan, self._flat_scan)
            else:
                scan_from_base_height(height_scan_m, self._scan)
        heading = None
        if self.is_student:
            yaw = self._zero_yaw if latent_yaw is None else latent_yaw[self._latent_dim:]
            if self._latent_in is not None:
                if latent_yaw is None:
                    self._latent_in.fill(0.0)
                else:
                    np.copyto(self._latent_in.reshape(-1), latent_yaw[:self._latent_dim])
        else:
            yaw = self._zero_yaw
            if recorded is not None:
                np.copyto(self._heading_terms, recorded[slice(*self.layout.yaw)])
            elif refresh:
                q = observation.imu_quaternion_wxyz
                imu_yaw = yaw_from_quaternion(float(q[0]), float(q[1]), float(q[2]), float(q[3]))
                targets = self.goal_source() if self.goal_source is not None else None
                if targets is not None:
                    self._heading_terms[:] = goal_heading_errors(targets[0], imu_yaw, targets[1],
                                                                 targets[2])
                else:
                    self._heading_terms[:] = wrap_angle(self.heading_command_rad - imu_yaw)
            heading = self._heading_terms
        self.builder.build_into(self._obs_in, observation, command, yaw,
                                self.actions.last_raw_action, heading=heading, scan=self._scan)
        self.actor.run()
        self.steps += 1
        return self.actions.process(self._actions_out)

    @property
    def observation(self) -> np.ndarray:
        """The last built policy observation (the actor's input buffer, flat)."""
        return self._obs_in.reshape(-1)

    @property
    def raw_actions(self) -> np.ndarray:
        """The actor's output buffer (before post-processing)."""
        return self._actions_out

    @property
    def last_raw_action(self) -> np.ndarray:
        return self.actions.last_raw_action

    def depth_proprio_into(self, out: np.ndarray) -> None:
        """The latest proprio frame with [6:8] zeroed (the depth step's ``proprio``)."""
        self.builder.depth_proprio_into(out)

    # -- depth ---------------------------------------------------------------------------------

    @property
    def depth_image(self) -> np.ndarray:
        """The depth engine's image input (58, 87): the frame as the policy sees it."""
        assert self._recurrence is not None
        return self._recurrence.image

    def preprocess_depth(self, frame_m: np.ndarray, intrinsics: CameraIntrinsics) -> None:
        """Resample and normalise a camera frame into the depth engine's input
        (docs/architecture.md#the-depth-image)."""
        if self._preprocessor is None or self._preprocessor.intrinsics != intrinsics:
            self._preprocessor = DepthPreprocessor(intrinsics, self.robot.depth_camera,
                                                   self._depth_config)
        self._preprocessor.process_into(frame_m, self.depth_image)

    def depth_step(self, proprio: np.ndarray) -> np.ndarray:
        """Run the depth encoder on its current image and ``proprio`` (53, yaw terms zeroed),
        carrying the GRU state; returns latent + yaw (a view the next step rewrites)."""
        assert self._recurrence is not None
        return self._recurrence.step(proprio)

    def warm_up(self, runs: int = 3) -> None:
        """First runs allocate and compile: do them before the first real observation."""
        for _ in range(runs):
            self.actor.run()
            if self.depth is not None:
                self.depth.run()
        self.reset_depth()



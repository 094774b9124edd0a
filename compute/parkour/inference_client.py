"""``ParkourInferenceClient``: the policy side of the appliance, on its own threads
(docs/architecture.md#the-data-flow).

Two threads, each with its own :class:`~hal.client.HalClient` (ZMQ sockets belong to one thread):

- **actor** (``krabby-actor``): waits on the observation socket (one observation per policy step:
  the HAL exchanges at the trained policy rate), runs :meth:`ParkourPolicy.actor_step` with the
  newest depth latent and sends the command naming the observation's seq. The safety mode in the
  observation header drives the episode: whenever it changes to a mode that does not apply the
  policy, the policy state is reset and then primed by the following observations (stand frames,
  zero last action) until the HAL hands over.
- **depth** (``krabby-depth``): at the depth update rate (10 Hz for a 50 Hz policy trained with a
  5-step depth interval), kicked by the actor right after it sent a command so that the depth
  step fills the slack between ticks instead of competing with the next one, takes the newest
  depth frame, preprocesses it into the depth engine's
  input, runs the recurrent depth encoder with the GRU hidden state carried between calls (reset on
  every start), and publishes latent + yaw. The depth encoder is never on the actor's path: the
  actor uses the newest latent there is, as the student was trained with.

Between the threads data moves through tiny seqlocked slot rings (:class:`hal.slots.SlotRing`),
so the hot path holds no lock longer than a copy of a few dozen floats.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import zmq

from compute.parkour.observation import PolicyCommand
from compute.parkour.policy import ParkourPolicy
from engines.base import Engine
from hal.client import HalClient
from hal.protocol import CommandMessage
from hal.robot import RobotConfig
from hal.safety.events import Mode, mode_code
from hal.slots import SlotRing
from hal.timing import LatencyRing

__all__ = ["InferenceClientConfig", "ParkourInferenceClient", "ActorStepRecord", "DepthStepRecord"]

log = logging.getLogger(__name__)


@dataclass
class InferenceClientConfig:
    """Settings of the inference client.

    Attributes:
        observation_endpoint / command_endpoint: The HAL server's endpoints.
        forward_speed_m_s / mode: The operator command fed to the policy (proprio [10:13]).
        depth_rate_hz: Depth engine rate; None derives it from the robot (policy rate / interval).
        poll_timeout_ms: How long a thread waits for an observation before checking for stop.
        gc_control: Freeze the heap after warm-up and collect only right after a command is sent.
            Leave off when the HAL server in the same process owns garbage collection.
        switch_interval_s: GIL switch interval to set (None leaves Python's 5 ms): a short one lets
            the actor thread take the GIL quickly when an observation arrives.
        timing_ring_size: Samples kept per stage timing.
        depth_thread: Run the depth thread (off only for benchmarks that measure its cost: the
            actor then keeps a zero latent).
        keys_dir: This client's key directory (``krabby-keys add``) for a server whose network
            endpoints use CURVE; None connects unauthenticated.
        lockstep: For a server that waits for every command (``lockstep_timeout_ms``, --fast
            evaluations): the depth step runs on the actor thread every
            ``update_interval_steps`` policy steps, on the observation's own frame, right after
            the command went out, and its latent is used from the next step on (as the depth
            thread's is). A run is then a function of its inputs, not of thread timing.
    """

    observation_endpoint: str = "inproc://hal_observation"
    command_endpoint: str = "inproc://hal_commands"
    forward_speed_m_s: float = 0.0
    mode: str = "parkour"
    depth_rate_hz: float | None = None
    poll_timeout_ms: float = 100.0
    gc_control: bool = False
    switch_interval_s: float | None = 0.0005
    timing_ring_size: int = 1 << 14
    depth_thread: bool = True
    keys_dir: str | None = None
    lockstep: bool = False


@dataclass(frozen=True, slots=True)
class ActorStepRecord:
    """One actor step, for listeners (recorder). Arrays are views the next step rewrites: copy
    what you keep."""

    obs_seq: int
    observation: np.ndarray  # the built policy observation (engine input)
    depth_latent: np.ndarray | None  # the latent+yaw the actor used (34,), None for a teacher
    raw_action: np.ndarray  # policy order, before clip and scale
    depth_seq_used: int
    timings_ns: tuple[int, int, int, int]  # obs build, engine, post-process, send
    engaged: bool = True  # the HAL was applying the policy when this observation was taken
    episode: int = 0  # policy episodes started so far (each hand-over starts one)


@dataclass(frozen=True, slots=True)
class DepthStepRecord:
    """One depth step: its inputs as the engine saw them and its output (views; copy to keep)."""

    frame_seq: int
    frame_timestamp_ns: int
    depth: np.ndarray  # preprocessed (58, 87): the frame as the policy saw it
    proprio: np.ndarray
    latent_yaw: np.ndarray
    engine_ns: int
    episode: int = 0  # the episode this step belongs to (its first step starts from a zero state)


class ParkourInferenceClient:
    """Runs the parkour policy against a HAL server.

    Args:
        robot: The robot configuration the engines were exported for (the contract applied).
        actor_engine: Engine with inputs ``obs`` (and ``depth_latent`` for a student) and output
            ``actions`` (see :mod:`engines`).
        depth_engine: Engine with inputs ``depth``, ``proprio``, ``hidden_in`` and outputs
            ``latent_yaw``, ``hidden_out``; None for a teacher policy (no depth thread).
        config: Endpoints, command and thread settings.
        context: ZMQ context (inproc needs the server's; default: the process-wide instance).
    """

    def __init__(self, robot: RobotConfig, actor_engine: Engine, depth_engine: Engine | None = None,
                 config: InferenceClientConfig | None = None, context: zmq.Context | None = None) -> None:
        self.robot = robot
        self.config = config or InferenceClientConfig()
        self.policy = ParkourPolicy(robot, actor_engine, depth_engine)
        self._context = context or zmq.Context.instance()
        self.command = PolicyCommand(self.config.forward_speed_m_s, self.config.mode)
        self.is_student = self.policy.is_student
        lay = self.policy.layout
        rate = self.config.depth_rate_hz
        self.depth_rate_hz = rate or robot.policy_rate_hz / robot.depth_camera.update_interval_steps
        # depth thread -> actor: latent (32) + yaw (2); actor -> depth thread: masked proprio.
        self._latent_ring = SlotRing(3, (lay.latent_yaw_dim,), np.float32,
                                     allocate=_plain_allocate)
        self._latent_slot = (-1, 0, 0, 0, 0)  # slot, generation, depth seq, step ns, episode
        self._proprio_ring = SlotRing(3, (lay.proprio_dim,), np.float32, allocate=_plain_allocate)
        self._proprio_slot = (-1, 0, 0)  # slot, generation, episode
        self._latent_now = np.zeros(lay.latent_yaw_dim, np.float32)
        self._zero_latent = np.zeros(lay.latent_yaw_dim, np.float32)
        self._episode = 0
        self._stop = threading.Event()
        self._depth_kick = threading.Event()
        self._threads: list[threading.Thread] = []
        # Called on the actor / depth thread after each step: keep them cheap (a queue put).
        self.actor_listeners: list = []
        self.depth_listeners: list = []
        self._errors: list[BaseException] = []
        size = self.config.timing_ring_size
        self.timings = {name: LatencyRing(size) for name in (
            "actor_engine", "post_process", "send", "actor_total", "depth_preprocess",
            "depth_engine")}
        self.counters = {"observations": 0, "commands_sent": 0, "commands_dropped": 0,
                         "torn_observations": 0, "non_finite_actions": 0, "depth_steps": 0,
                         "depth_frames_repeated": 0, "malformed_observations": 0,
                         "episodes": 0, "priming_steps": 0, "engaged_steps": 0}

    @property
    def actor(self) -> Engine:
        return self.policy.actor

    @property
    def depth(self) -> Engine | None:
        return self.policy.depth

    def set_command(self, command: PolicyCommand) -> None:
        """Replace the operator command (any thread: the actor reads it once per step)."""
        if not isinstance(command, PolicyCommand):
            raise TypeError(f"set_command takes a PolicyCommand, found {type(command).__name__}")
        self.command = command

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the threads; the first observation starts the first episode."""
        if self._threads:
            raise RuntimeError("inference client already running")
        self._stop.clear()
        self._latent_slot = (-1, 0, 0, 0, 0)
        self._proprio_slot = (-1, 0, 0)
        self.policy.warm_up()
        if self.config.switch_interval_s is not None:
            sys.setswitchinterval(self.config.switch_interval_s)
        self._threads = [threading.Thread(target=self._guard, args=(self._actor_loop,),
                                          name="krabby-actor", daemon=True)]
        if self.depth is not None and self.config.depth_thread and not self.config.lockstep:
            self._threads.append(threading.Thread(target=self._guard, args=(self._depth_loop,),
                                                  name="krabby-depth", daemon=True))
        for thread in self._threads:
            thread.start()
        log.info("inference client started (%s, depth at %.1f Hz)",
                 "student" if self.is_student else "teacher", self.depth_rate_hz)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop and join the threads. Raises if a thread does not end in time."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)
        alive = [t.name for t in self._threads if t.is_alive()]
        self._threads = []
        if alive:
            raise RuntimeError(f"inference threads did not stop within {timeout_s} s: {alive}")

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions that ended a thread (the HAL sees the commands stop and damps)."""
        return list(self._errors)

    def __enter__(self) -> "ParkourInferenceClient":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _guard(self, loop) -> None:
        try:
            loop()
        except BaseException as exc:  # noqa: BLE001 - reported through errors(); HAL damps
            self._errors.append(exc)
            log.exception("%s died", threading.current_thread().name)

    def _client(self) -> HalClient:
        keys = None
        if self.config.keys_dir is not None:
            from hal.auth import ClientKeys

            keys = ClientKeys.load(self.config.keys_dir)
        return HalClient(self.config.observation_endpoint, self.config.command_endpoint,
                         self.robot.n_joints, self.robot.n_feet, depth_shape=None,
                         context=self._context, n_scan=None, keys=keys)

    # -- actor thread --------------------------------------------------------------------------

    def _actor_loop(self) -> None:
        policy, timings = self.policy, self.timings
        processor = policy.actions
        policy_code = mode_code(Mode.POLICY)
        last_mode = -1
        steps_since_collect = 0
        warm_steps = 0
        depth_period_ns = int(1e9 / self.depth_rate_hz)
        next_depth_ns = 0
        lockstep = self.config.lockstep and self.depth is not None
        depth_due = False
        depth_proprio = np.zeros(policy.layout.proprio_dim, np.float32)
        self._lockstep_seq = -1
        with self._client() as client:
            while not self._stop.is_set():
                obs = client.poll(self.config.poll_timeout_ms)
                self.counters["malformed_observations"] = client.malformed
                if obs is None:
                    continue
                t0 = time.monotonic_ns()
                mode = obs.control_mode
                engaged = mode == policy_code
                if not engaged and mode != last_mode:
                    # A new episode: the HAL holds the stand pose from here until it hands over.
                    policy.reset(obs, reset_depth=lockstep)
                    self._lockstep_seq = -1
                    self._episode += 1
                    self.counters["episodes"] += 1
                last_mode = mode
                if lockstep:
                    depth_seq, depth_ns = self._lockstep_seq, 0
                else:
                    depth_seq, depth_ns = self._read_latent()
                latent = self._latent_now if self.is_student and depth_seq >= 0 else None
                targets = policy.actor_step(obs, self.command, engaged, latent,
                                            obs.height_scan_m)
                if lockstep:
                    # the policy step counter was just advanced: training's global_counter % 5
                    depth_due = ((policy.steps - 1) % policy.refresh_interval_steps == 0
                                 and obs.depth_m is not None)
                    if depth_due:  # the frame lives in the slot: take it before releasing
                        policy.preprocess_depth(obs.depth_m, obs.depth_intrinsics)
                        frame_seq, frame_ts = obs.depth_seq, obs.depth_timestamp_ns
                intact = client.release_current()
                t2 = time.monotonic_ns()
                if not intact:
                    self.counters["torn_observations"] += 1
                    continue
                self._share_proprio()
                self.counters["engaged_steps" if engaged else "priming_steps"] += 1
                if not np.isfinite(policy.raw_actions).all():
                    # Sent as it is: the HAL's safety layer rejects it and damps the motors.
                    self.counters["non_finite_actions"] += 1
                message = CommandMessage(
                    obs_seq=obs.seq, target_rad=targets, kp=processor.kp_hardware,
                    kd=processor.kd_hardware, raw_action=processor.last_raw_action,
                    receive_ns=obs.receive_ns, actor_ns=t2 - t0, depth_step_ns=depth_ns,
                    depth_seq_used=max(depth_seq, 0))
                t3 = time.monotonic_ns()
                sent = client.send_command(message)
                t4 = time.monotonic_ns()
                self.counters["observations"] += 1
                self.counters["commands_sent" if sent else "commands_dropped"] += 1
                timings["actor_engine"].add(t2 - t0)  # the whole policy step: build, engine, targets
                timings["post_process"].add(t3 - t2)
                timings["send"].add(t4 - t3)
                timings["actor_total"].add(t4 - t0)
                if not lockstep and t4 >= next_depth_ns:
                    next_depth_ns = max(next_depth_ns + depth_period_ns, t4)
                    self._depth_kick.set()
                if self.actor_listeners:
                    used = None
                    if self.is_student:
                        used = self._zero_latent if latent is None else latent
                    record = ActorStepRecord(obs.seq, policy.observation, used,
                                             processor.last_raw_action, max(depth_seq, 0),
                                             (0, t2 - t0, t3 - t2, t4 - t3), engaged,
                                             self._episode)
                    for listener in self.actor_listeners:
                        listener(record)
                if lockstep and depth_due:  # after the step's record: it used the previous latent
                    policy.depth_proprio_into(depth_proprio)
                    t5 = time.monotonic_ns()
                    latent_yaw = policy.depth_step(depth_proprio)
                    np.copyto(self._latent_now, latent_yaw)
                    self._lockstep_seq = frame_seq
                    step_ns = time.monotonic_ns() - t5
                    self.counters["depth_steps"] += 1
                    self.timings["depth_engine"].add(step_ns)
                    if self.depth_listeners:
                        record = DepthStepRecord(frame_seq, frame_ts, policy.depth_image,
                                                 depth_proprio, latent_yaw, step_ns,
                                                 self._episode)
                        for listener in self.depth_listeners:
                            listener(record)
                if self.config.gc_control:
                    warm_steps += 1
                    if warm_steps == 50:
                        gc.collect()
                        gc.freeze()
                        gc.disable()
                    steps_since_collect += 1
                    if warm_steps > 50 and steps_since_collect >= 10:
                        gc.collect(0)  # right after a send: the slack before the next observation
                        steps_since_collect = 0
        if self.config.gc_control and warm_steps >= 50:
            gc.unfreeze()
            gc.enable()

    def _read_latent(self) -> tuple[int, int]:
        """Copy this episode's newest latent+yaw into ``_latent_now``; returns (depth seq, depth
        step ns), depth seq -1 when the episode has no depth step yet."""
        slot, generation, depth_seq, depth_ns, episode = self._latent_slot
        if slot < 0 or episode != self._episode:
            return -1, 0
        if not self._latent_ring.acquire(slot, generation):
            return depth_seq, depth_ns  # being rewritten: keep the copy we have
        np.copyto(self._latent_now, self._latent_ring.buffer(slot))
        self._latent_ring.release(slot, generation)
        return depth_seq, depth_ns

    def _share_proprio(self) -> None:
        slot = self._proprio_ring.begin_write()
        self.policy.depth_proprio_into(self._proprio_ring.buffer(slot))
        self._proprio_slot = (slot, self._proprio_ring.end_write(slot), self._episode)

    # -- depth thread --------------------------------------------------------------------------

    def _depth_loop(self) -> None:
        policy = self.policy
        proprio = np.zeros(policy.layout.proprio_dim, np.float32)
        last_frame_seq = 0
        episode = 0
        with self._client() as client:
            while not self._stop.is_set():
                # The actor kicks us right after it sent a command, at the depth rate: the depth
                # step then runs in the slack before the next observation, not across the
                # actor's critical path.
                if not self._depth_kick.wait(self.config.poll_timeout_ms / 1e3):
                    continue
                self._depth_kick.clear()
                obs = client.poll(self.config.poll_timeout_ms)
                if obs is None or obs.depth_m is None:
                    continue
                proprio_slot, proprio_gen, proprio_episode = self._proprio_slot
                if proprio_slot < 0:
                    continue  # the actor has not built an observation yet
                if proprio_episode != episode:
                    policy.reset_depth()  # a new episode: the GRU starts from zero, as in training
                    episode = proprio_episode
                elif obs.depth_seq == last_frame_seq:
                    self.counters["depth_frames_repeated"] += 1
                    continue
                t0 = time.monotonic_ns()
                policy.preprocess_depth(obs.depth_m, obs.depth_intrinsics)
                frame_seq, frame_ts = obs.depth_seq, obs.depth_timestamp_ns
                if not client.release_current():
                    continue
                if not self._proprio_ring.acquire(proprio_slot, proprio_gen):
                    continue
                np.copyto(proprio, self._proprio_ring.buffer(proprio_slot))
                self._proprio_ring.release(proprio_slot, proprio_gen)
                t1 = time.monotonic_ns()
                latent_yaw = policy.depth_step(proprio)
                t2 = time.monotonic_ns()
                slot = self._latent_ring.begin_write()
                np.copyto(self._latent_ring.buffer(slot), latent_yaw)
                self._latent_slot = (slot, self._latent_ring.end_write(slot), frame_seq, t2 - t1,
                                     episode)
                last_frame_seq = frame_seq
                self.counters["depth_steps"] += 1
                self.timings["depth_preprocess"].add(t1 - t0)
                self.timings["depth_engine"].add(t2 - t1)
                if self.depth_listeners:
                    record = DepthStepRecord(frame_seq, frame_ts, policy.depth_image, proprio,
                                             latent_yaw, t2 - t1, episode)
                    for listener in self.depth_listeners:
                        listener(record)

    # -- report --------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters and per-stage timing summaries (µs)."""
        return {"counters": dict(self.counters),
                "timings_us": {name: ring.summary_us() for name, ring in self.timings.items()},
                "errors": [repr(e) for e in self._errors]}


def _plain_allocate(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    return np.zeros(shape, dtype)

"""The recorder's listeners: copy each record once, hand it to the sinks, measure what that costs.

:class:`RecorderTap` hangs one listener on each source — the HAL server's tick listeners (main
thread), the inference client's actor and depth listeners (their own threads) — and copies the
record into a preallocated staging row of its kind. Sinks (the file recorder, the flight recorder)
copy that row into their own preallocated storage and return; nothing here serialises, allocates an
array, takes a lock or waits. Each kind has exactly one producer thread, so its staging row and the
sinks' per-kind storage need no lock.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from hal.recorder.schema import (
    MODE_CODES, RowLayout, actor_layout, depth_layout, frame_layout, tick_layout,
)
from hal.safety.events import Mode
from hal.timing import LatencyRing

__all__ = ["RecordLayouts", "RecordSink", "RecorderTap", "layouts_for"]

log = logging.getLogger(__name__)

DEFAULT_HIDDEN_SIZE = 512
"""The depth encoder's GRU hidden size (docs/architecture.md#the-checkpoint), when no depth engine
tells it."""


@dataclass(frozen=True)
class RecordLayouts:
    """The layouts of one run's records (``frame`` is None without a camera)."""

    tick: RowLayout
    actor: RowLayout
    depth: RowLayout
    frame: RowLayout | None

    def by_kind(self) -> dict[str, RowLayout]:
        kinds = {"tick": self.tick, "actor": self.actor, "depth": self.depth}
        if self.frame is not None:
            kinds["frame"] = self.frame
        return kinds


def layouts_for(robot: Any, hidden_size: int = DEFAULT_HIDDEN_SIZE,
                frame_shape: tuple[int, int] | None = None) -> RecordLayouts:
    """Layouts for ``robot`` (a :class:`~hal.robot.RobotConfig`) running the parkour policy."""
    from compute.parkour.layout import ObservationLayout  # the run log records the policy's steps

    cam = robot.depth_camera
    lay = ObservationLayout.from_robot(robot)
    latent_yaw = lay.latent_yaw_dim
    return RecordLayouts(
        tick=tick_layout(robot.n_joints, robot.n_feet),
        actor=actor_layout(lay.obs_dim, latent_yaw, robot.n_joints, lay.proprio_dim),
        depth=depth_layout((cam.policy_height, cam.policy_width), lay.proprio_dim, latent_yaw,
                           hidden_size),
        frame=frame_layout(tuple(frame_shape)) if frame_shape is not None else None)


class RecordSink(Protocol):
    """Where the tap hands records. Every method runs on a producer thread: copy and return."""

    wants_frames: bool

    def accept(self, kind: str, floats: np.ndarray, ints: np.ndarray) -> None:
        """Copy one staged row of ``kind`` ("tick", "actor", "depth")."""

    def accept_frame(self, tick_seq: int, depth_seq: int, capture_ns: int,
                     frame: np.ndarray) -> None:
        """Copy one raw depth frame (only called when ``wants_frames``)."""

    def on_mode_change(self, previous: Mode | None, mode: Mode, seq: int) -> None:
        """The safety mode seen in tick ``seq`` differs from the previous tick's (None before
        the first tick)."""


class RecorderTap:
    """Listeners that stage each tick, actor step and depth step and pass them to ``sinks``.

    Args:
        layouts: The record layouts (see :func:`layouts_for`).
        sinks: Receivers of the staged rows.
        cost_ring_size: Listener durations kept per kind for the cost summary.
    """

    def __init__(self, layouts: RecordLayouts, sinks: list[RecordSink],
                 cost_ring_size: int = 1 << 14) -> None:
        self.layouts = layouts
        self.sinks = list(sinks)
        self._frame_sinks = [s for s in self.sinks if s.wants_frames]
        tick, actor, depth = layouts.tick, layouts.actor, layouts.depth
        self._tick_f, self._tick_i = (a[0] for a in tick.allocate(1))
        self._actor_f, self._actor_i = (a[0] for a in actor.allocate(1))
        self._depth_f, self._depth_i = (a[0] for a in depth.allocate(1))
        self._no_command = np.full(tick.size("command.target_rad"), np.nan)
        self._no_contacts = np.zeros(tick.size("contacts.force_n"))
        self._no_latent = np.zeros(actor.size("depth_latent"), np.float32)
        self._hidden_prev = np.zeros(depth.size("hidden_in"), np.float32)
        self._hidden_source: np.ndarray | None = None
        self._depth_episode = 0
        self._last_mode: Mode | None = None
        self._actor_steps = 0
        self._depth_steps = 0
        # Wall time (what the calling loop waits, GIL hand-overs included) and the thread's own
        # CPU time (the recorder's work alone) per call.
        self.costs = {kind: LatencyRing(cost_ring_size) for kind in ("tick", "actor", "depth")}
        self.cpu_costs = {kind: LatencyRing(cost_ring_size) for kind in ("tick", "actor", "depth")}
        self._server: Any = None
        self._client: Any = None

    # -- attaching ------------------------------------------------------------------------------

    def attach(self, server: Any = None, client: Any = None) -> None:
        """Add the listeners to a :class:`~hal.server.base.HalServer` and/or a
        :class:`~compute.parkour.inference_client.ParkourInferenceClient`.

        Attach before the client sees its first observation: the depth step's recorded hidden
        state is read from the depth engine's ``hidden_in`` buffer now and after every step.
        """
        if server is not None:
            server.tick_listeners.append(self.on_tick)
            self._server = server
        if client is not None:
            client.actor_listeners.append(self.on_actor)
            depth_engine = getattr(client, "depth", None)
            if depth_engine is not None:
                hidden = depth_engine.inputs["hidden_in"].reshape(-1)
                if hidden.size != self._hidden_prev.size:
                    raise ValueError(f"depth engine hidden state has {hidden.size} values, the "
                                     f"record layout {self._hidden_prev.size}")
                self._hidden_source = hidden
                np.copyto(self._hidden_prev, hidden)
                client.depth_listeners.append(self.on_depth)
            self._client = client

    def detach(self) -> None:
        """Remove the listeners (after the client's threads have stopped)."""
        if self._server is not None and self.on_tick in self._server.tick_listeners:
            self._server.tick_listeners.remove(self.on_tick)
        if self._client is not None:
            for listeners, fn in ((self._client.actor_listeners, self.on_actor),
                                  (self._client.depth_listeners, self.on_depth)):
                if fn in listeners:
                    listeners.remove(fn)
        self._server = self._client = None

    # -- listeners (producer threads) -----------------------------------------------------------

    def on_tick(self, record: Any) -> None:
        """HAL tick listener (main thread): stage a :class:`~hal.server.base.TickRecord`."""
        start = time.monotonic_ns()
        cpu_start = time.thread_time_ns()
        f, i = self._tick_f, self._tick_i
        joints, imu, applied = record.joints, record.imu, record.applied
        contacts = record.contacts
        received = record.command
        if received is None:
            none = self._no_command
            command_arrays = (none, none, none, none)
            command_ints = (0, -1, 0, 0, 0, 0, 0, 0, 0)
        else:
            msg = received.message
            command_arrays = (msg.target_rad, msg.kp, msg.kd, msg.raw_action)
            command_ints = (1, msg.obs_seq, received.receive_ns, msg.receive_ns, msg.send_ns,
                            msg.actor_ns, msg.depth_step_ns, msg.depth_seq_used,
                            int(received.non_finite))
        np.concatenate((joints.position_rad, joints.velocity_rad_s, joints.torque_nm,
                        imu.quaternion_wxyz, imu.angular_velocity_rad_s,
                        imu.linear_acceleration_m_s2,
                        contacts.force_n if contacts is not None else self._no_contacts,
                        *command_arrays, applied.target_rad, applied.kp, applied.kd), out=f)
        mode = record.safety_mode
        new_depth = record.new_depth
        i[:] = (record.seq, record.tick_ns, record.publish_ns, start,
                MODE_CODES.get(mode, -1), record.depth_seq, new_depth is not None,
                record.obs_to_command_ns, joints.timestamp_ns, imu.timestamp_ns,
                contacts is not None, contacts.timestamp_ns if contacts is not None else 0,
                *command_ints, applied.mode)
        for sink in self.sinks:
            sink.accept("tick", f, i)
        if new_depth is not None:
            for sink in self._frame_sinks:
                sink.accept_frame(record.seq, record.depth_seq, start, new_depth)
        if mode != self._last_mode:
            previous, self._last_mode = self._last_mode, mode
            for sink in self.sinks:
                sink.on_mode_change(previous, mode, record.seq)
        self.cpu_costs["tick"].add(time.thread_time_ns() - cpu_start)
        self.costs["tick"].add(time.monotonic_ns() - start)

    def on_actor(self, record: Any) -> None:
        """Actor listener (actor thread): stage an ``ActorStepRecord``."""
        start = time.monotonic_ns()
        cpu_start = time.thread_time_ns()
        f, i = self._actor_f, self._actor_i
        latent = record.depth_latent
        np.concatenate((record.observation, latent if latent is not None else self._no_latent,
                        record.raw_action), out=f)
        i[:] = (self._actor_steps, record.obs_seq, record.depth_seq_used, latent is not None,
                start, *record.timings_ns, record.engaged, record.episode)
        self._actor_steps += 1
        for sink in self.sinks:
            sink.accept("actor", f, i)
        self.cpu_costs["actor"].add(time.thread_time_ns() - cpu_start)
        self.costs["actor"].add(time.monotonic_ns() - start)

    def on_depth(self, record: Any) -> None:
        """Depth listener (depth thread): stage a ``DepthStepRecord`` with the hidden state the
        step started from (the state the previous step left)."""
        start = time.monotonic_ns()
        cpu_start = time.thread_time_ns()
        f, i = self._depth_f, self._depth_i
        if record.episode != self._depth_episode:
            self._hidden_prev.fill(0.0)  # a new episode's first step starts from a zero state
            self._depth_episode = record.episode
        np.concatenate((record.depth.reshape(-1), record.proprio, record.latent_yaw,
                        self._hidden_prev), out=f)
        i[:] = (self._depth_steps, record.frame_seq, record.frame_timestamp_ns, record.engine_ns,
                start, record.episode)
        self._depth_steps += 1
        if self._hidden_source is not None:
            # The client copied hidden_out into hidden_in before calling us: the next step's input.
            np.copyto(self._hidden_prev, self._hidden_source)
        for sink in self.sinks:
            sink.accept("depth", f, i)
        self.cpu_costs["depth"].add(time.thread_time_ns() - cpu_start)
        self.costs["depth"].add(time.monotonic_ns() - start)

    # -- report ---------------------------------------------------------------------------------

    def cost_summary_us(self, cpu: bool = False) -> dict[str, dict[str, float]]:
        """Listener durations per kind (p50/p90/p99/max/mean µs, count): wall time, or with
        ``cpu`` the listener thread's CPU time."""
        rings = self.cpu_costs if cpu else self.costs
        return {kind: ring.summary_us() for kind, ring in rings.items()}

"""Fault drills for ``krabby-hal-server-sim``: rehearse every fault in the simulator before hardware.

    krabby-hal-server-sim --engine model.onnx --fault nan-actions@2 --report run.json
    krabby-hal-server-sim --engine model.onnx --fast --fault stall-inference@1:0.5 --fault estop@4

Spec: ``KIND@T`` or ``KIND@T:D``. ``T`` is in seconds of **simulated time after the safety layer
first entered ``policy``** (the stated responses are responses of the policy mode, so a drill fired
during the stand-up would rehearse nothing); simulated time makes ``--fast`` runs fire on the same
tick as real-time ones. A drill fires at the first tick boundary at or after ``T``; drills due at
the same time fire in the order given. ``D`` (``stall-inference`` only, default 1 s) is the stall's
length, also in simulated time. A drill whose time never comes is reported as not fired.

Every fault is injected through the mechanism that would fail on the robot, never by calling into
the safety layer:

- ``stall-inference``: an engine wrapper around the actor blocks the actor thread for ``D`` (a hung
  engine); afterwards the actor carries on with its stale observation.
- ``kill-inference``: ``client.stop()`` on a helper thread: the actor and depth threads end.
- ``nan-actions``: the actor wrapper fills its output with NaN from ``T`` on.
- ``wild-actions``: the actor wrapper writes ±50 from ``T`` on, alternating per joint and per tick;
  the client clips it to ±4.8 and scales it, so the policy asks for ±1.2 rad about the default
  pose, flipping every tick.
- ``drop-imu``: an :class:`~hal.devices.base.Imu` wrapper repeats its last sample, timestamp
  frozen.
- ``drop-depth``: a :class:`~hal.devices.base.DepthCamera` wrapper's ``read_into`` returns None.
- ``landing`` (not a fault: the drill a trained policy must pass): the actor wrapper drives the
  calves' actions to the end of their range and back, as a trained landing does (ramps of a
  quarter of the clip per policy step: ``LANDING_PROFILE``), so the policy asks for calf targets
  up to ``default + clip × scale``, 0.538 rad past a Go2 calf's limit; 3 steps past it. (Standing
  on the ground, not landing, a longer push at the range's end tips the Go2 past the tilt limit.)
- ``estop``: an ``ESTOP`` frame sent with :class:`~hal.safety.EstopSender` to the server's e-stop
  endpoint (the wildcard host of a tcp bind becomes loopback; inproc needs the server's ZMQ
  context). Only when no endpoint is configured (``--estop-bind none``) does the drill call
  ``SafetyLayer.estop``, and its record says so.

Stated responses (checked by ``tests/appliance/test_fault_drills.py``). Ticks count from 1, the
first tick that can see the fault (the record's ``seq``); figures in brackets are for the default
:class:`~hal.safety.SafetyConfig` at 50 Hz (period 20 ms):

===================  ============================================  ===============================
fault                response                                      within
===================  ============================================  ===============================
stall-inference      hold the last applied target from the first   damping on the
                     missed tick; then damping (command_watchdog)  ``damp_after_ticks``-th
                                                                   consecutive missed tick [10]
kill-inference       the same                                      the same
nan-actions          damping (invalid_command): the HAL passes     on the tick the first NaN
                     the non-finite command on flagged             command arrives [1]
wild-actions         every applied target inside the joint         always; damping on the
                     limits and the step cap; damping              ``implausible_after_ticks``-th
                     (implausible_command)                         wild command [5]
drop-imu             damping (imu_stale) once the sample is older  ceil(imu_stale_ms / period)
                     than ``imu_stale_ms``                         + 1 ticks [4; 3 in fact]
drop-depth           stand (depth_stale) once depth is older than  ceil(depth_stale_ms / period)
                     ``depth_stale_ms``: ramp to the default pose  + 1 ticks [16]
                     and keep standing (the gate stays closed)
estop                estop: latched, damped                        the next tick [1]
landing              none: the policy keeps control; the report's  -
                     ``safety.policy_targets`` counts the calves
                     past their limit
===================  ============================================  ===============================

In every drill no NaN reaches the joint driver and every applied target obeys its bounds (the
joint limits; in ``policy`` the training contract's action range).

Every drill's record (``report["faults"]``) holds when it fired — ``seq`` (the first tick that can
see it), simulated time since the world's clock origin and since the policy took over — how it was
injected, and the safety layer's response: the first mode change after it fired, its reason,
detail and tick. The report's ``safety.events`` hold the full transition list.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Sequence

import numpy as np
import zmq

from hal.safety.events import Mode
from hal.server.base import HalDevices, HalServer, TickRecord
from hal.server.sim.fault_devices import DroppableDepthCamera, FaultyEngine, FreezableImu
from hal.server.sim.fault_spec import (
    CLIENT_FAULTS, DEFAULT_STALL_S, FAULT_KINDS, FaultKind, FaultRecord, FaultResponse, FaultSpec,
    FaultSpecError, parse_fault, parse_faults,
)

__all__ = [
    "FaultKind",
    "FaultRecord",
    "FaultResponse",
    "FAULT_KINDS",
    "CLIENT_FAULTS",
    "DEFAULT_STALL_S",
    "WILD_ACTION",
    "FaultSpecError",
    "FaultSpec",
    "parse_fault",
    "parse_faults",
    "FreezableImu",
    "DroppableDepthCamera",
    "FaultInjector",
    "connectable",
]

log = logging.getLogger(__name__)

WILD_ACTION = 50.0
LANDING_PROFILE = (0.25, 0.5, 0.75, 1.0, 0.75, 0.5, 0.25)
"""The calves' actions of the ``landing`` drill, per policy step, as a share of the action clip."""
_SERVER_GONE_NS = 1_000_000_000  # a stall ends when the simulated clock stops this long (wall)


def connectable(endpoint: str) -> str:
    """A bound endpoint as a peer on this machine connects to it (wildcard host → loopback)."""
    for wildcard, loopback in (("tcp://*:", "tcp://127.0.0.1:"),
                               ("tcp://0.0.0.0:", "tcp://127.0.0.1:"),
                               ("tcp://[::]:", "tcp://[::1]:")):
        if endpoint.startswith(wildcard):
            return loopback + endpoint[len(wildcard):]
    return endpoint


class FaultInjector:
    """Fires the drills of one run and records what the safety layer did.

    Use: :meth:`wrap_devices` when building the devices, :meth:`attach` once the server and the
    client are started (it registers a tick listener and wraps the client's actor engine), and
    :meth:`close` on every way out. :attr:`records` are filled in place, complete after
    :meth:`close`; :meth:`report` is the report's ``faults`` list.

    Args:
        specs: The drills.
        context: ZMQ context for the e-stop sender; an inproc e-stop endpoint needs the server's.
            None uses the process-wide instance (the server's default).
    """

    def __init__(self, specs: Sequence[FaultSpec], context: zmq.Context | None = None) -> None:
        self.specs = list(specs)
        self._context = context
        self.records = [FaultRecord(spec) for spec in self.specs]
        self._pending = list(range(len(self.specs)))
        self._watching: list[int] = []
        self._imu: FreezableImu | None = None
        self._camera: DroppableDepthCamera | None = None
        self._server: HalServer | None = None
        self._client: Any = None
        self._faulty_actor: Any = None
        self._sender: Any = None
        self._sender_endpoint: str | None = None
        self._origin_ns = 0
        self._policy_start_ns: int | None = None
        self._policy_start_seq: int | None = None
        self._stall_until_ns: int | None = None
        self._corrupt: FaultKind | None = None  # nan-actions or wild-actions, once fired
        self._wild_sign = 1.0
        self._wild: np.ndarray | None = None
        self._landing_step: int | None = None  # the next step of LANDING_PROFILE, while it runs
        self._calves: list[int] = []  # policy-order indices of the calf joints
        self._action_clip = 0.0
        self._cancel = threading.Event()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self.errors: list[str] = []

    @property
    def kinds(self) -> set[FaultKind]:
        return {s.kind for s in self.specs}

    @property
    def needs_client(self) -> bool:
        return bool(self.kinds & CLIENT_FAULTS)

    # -- setup ---------------------------------------------------------------------------------

    def wrap_devices(self, devices: HalDevices) -> HalDevices:
        """Wrap the IMU and camera the drills need to fail (returns ``devices``, modified).

        Raises:
            FaultSpecError: ``drop-depth`` asked for but there is no camera.
        """
        if FaultKind.DROP_IMU in self.kinds:
            self._imu = FreezableImu(devices.imu)
            devices.imu = self._imu
        if FaultKind.DROP_DEPTH in self.kinds:
            if devices.camera is None:
                raise FaultSpecError("--fault drop-depth needs a depth camera; the simulator's "
                                     "is off (use --camera-fps > 0)")
            self._camera = DroppableDepthCamera(devices.camera)
            devices.camera = self._camera
        return devices

    def attach(self, server: HalServer, client: Any) -> None:
        """Start watching ``server`` (ticks) and hook into ``client`` (a ParkourInferenceClient).

        Raises:
            FaultSpecError: a drill needs the in-process client and there is none.
        """
        if self.needs_client and client is None:
            named = sorted(k.value for k in self.kinds & CLIENT_FAULTS)
            raise FaultSpecError(f"--fault {named} act on the "
                                 f"in-process inference client; drop --no-client")
        self._server, self._client = server, client
        self._origin_ns = int(getattr(server.devices.world, "clock_origin_ns", server.clock_ns()))
        robot = server.robot
        self._calves = [i for i, name in enumerate(robot.joint_names_policy) if "calf" in name]
        self._action_clip = float(robot.action_clip)
        if self.kinds & {FaultKind.STALL_INFERENCE, FaultKind.NAN_ACTIONS, FaultKind.WILD_ACTIONS,
                         FaultKind.LANDING}:
            self._faulty_actor = FaultyEngine(client.policy.actor, "actions", self._action_hook)
            client.policy.actor = self._faulty_actor
        listener = getattr(server, "estop_listener", None)
        if FaultKind.ESTOP in self.kinds and listener is not None:
            from hal.safety import EstopSender

            # Connected now, so the drill's message leaves at once when it fires.
            self._sender_endpoint = connectable(listener.last_endpoint)
            self._sender = EstopSender(self._sender_endpoint,
                                       self._context or zmq.Context.instance(),
                                       send_timeout_ms=200)
        server.tick_listeners.append(self._on_tick)

    # -- the actor thread ----------------------------------------------------------------------

    def _action_hook(self, actions: np.ndarray) -> None:
        until = self._stall_until_ns
        if until is not None:
            self._stall_until_ns = None
            self._block_until(until)
        corrupt = self._corrupt
        if corrupt is FaultKind.NAN_ACTIONS:
            actions.fill(np.nan)
        elif corrupt is FaultKind.WILD_ACTIONS:
            if self._wild is None or self._wild.shape != actions.shape:
                signs = np.where(np.arange(actions.size) % 2 == 0, 1.0, -1.0)
                self._wild = (WILD_ACTION * signs).astype(actions.dtype).reshape(actions.shape)
            np.multiply(self._wild, self._wild_sign, out=actions)
            self._wild_sign = -self._wild_sign
        step = self._landing_step
        if step is not None:
            flat = actions.reshape(-1)
            flat[self._calves] = LANDING_PROFILE[step] * self._action_clip
            self._landing_step = step + 1 if step + 1 < len(LANDING_PROFILE) else None

    def _block_until(self, until_ns: int) -> None:
        """Block (a hung engine) until the simulated clock reaches ``until_ns``; give up when the
        drill is closed or the clock stops moving (the server stopped ticking)."""
        assert self._server is not None
        clock = self._server.clock_ns
        last, last_change = clock(), time.monotonic_ns()
        while not self._cancel.is_set():
            now = clock()
            if now >= until_ns:
                return
            if now != last:
                last, last_change = now, time.monotonic_ns()
            elif time.monotonic_ns() - last_change > _SERVER_GONE_NS:
                return
            self._cancel.wait(0.0005)

    # -- the control loop (main thread) --------------------------------------------------------

    def _on_tick(self, record: TickRecord) -> None:
        try:
            self._tick(record)
        except Exception as exc:  # noqa: BLE001 - a broken drill must not end the robot's loop
            log.exception("fault drill failed")
            self.errors.append(repr(exc))

    def _tick(self, record: TickRecord) -> None:
        server = self._server
        assert server is not None
        if self._policy_start_ns is None:
            if record.safety_mode is not Mode.POLICY:
                return
            self._policy_start_ns = int(server.safety.mode_since_ns)
            self._policy_start_seq = record.seq
            log.info("fault drills armed: the policy took over at tick %d", record.seq)
        for index in list(self._watching):
            self._watch(index, record)
        now = server.clock_ns()
        for index in list(self._pending):
            spec = self.specs[index]
            if now >= self._policy_start_ns + int(round(spec.at_s * 1e9)):
                self._pending.remove(index)
                self._fire(index, record, now)

    def _watch(self, index: int, record: TickRecord) -> None:
        rec = self.records[index]
        if record.seq < rec.seq:
            return
        if rec.kind in (FaultKind.STALL_INFERENCE, FaultKind.KILL_INFERENCE) \
                and record.command is None and rec.first_missed_seq is None:
            rec.first_missed_seq = record.seq
        if record.safety_mode is rec.mode_before:
            return
        server = self._server
        assert server is not None
        events = server.safety.events()
        event = events[-1] if events and events[-1]["to"] == record.safety_mode else {}
        t_ns = int(server.safety.mode_since_ns)
        rec.response = FaultResponse(mode=record.safety_mode, reason=event.get("reason"),
                                     detail=event.get("detail"), seq=record.seq,
                                     ticks=record.seq - rec.seq + 1,
                                     sim_time_s=round((t_ns - self._origin_ns) / 1e9, 6))
        self._watching.remove(index)
        log.warning("fault drill %s: %s -> %s (%s) on tick %d, tick %d of the fault",
                    rec.spec.text, rec.mode_before, record.safety_mode, event.get("reason"),
                    record.seq, rec.response.ticks)

    def _fire(self, index: int, record: TickRecord, now_ns: int) -> None:
        spec, rec = self.specs[index], self.records[index]
        server = self._server
        assert server is not None and self._policy_start_ns is not None
        rec.fired, rec.seq, rec.mode_before = True, record.seq + 1, record.safety_mode
        rec.sim_time_s = round((now_ns - self._origin_ns) / 1e9, 6)
        rec.after_policy_s = round((now_ns - self._policy_start_ns) / 1e9, 6)
        kind = spec.kind
        if kind is FaultKind.STALL_INFERENCE:
            assert spec.duration_s is not None
            self._stall_until_ns = now_ns + int(round(spec.duration_s * 1e9))
            rec.via = f"the actor engine wrapper blocks the actor thread for {spec.duration_s:g} s"
        elif kind is FaultKind.KILL_INFERENCE:
            thread = threading.Thread(target=self._kill, name="krabby-fault-kill", daemon=True)
            self._threads.append(thread)
            thread.start()
            rec.via = "client.stop(): actor and depth threads ended"
        elif kind is FaultKind.NAN_ACTIONS:
            self._corrupt = kind
            rec.via = "the actor engine wrapper writes NaN actions"
        elif kind is FaultKind.WILD_ACTIONS:
            self._corrupt = kind
            rec.via = f"the actor engine wrapper writes ±{WILD_ACTION:g} actions, alternating"
        elif kind is FaultKind.LANDING:
            self._landing_step = 0
            rec.via = (f"the actor engine wrapper drives the calves' actions to +{self._action_clip:g} "
                       f"and back over {len(LANDING_PROFILE)} policy steps")
        elif kind is FaultKind.DROP_IMU:
            assert self._imu is not None
            self._imu.freeze()
            rec.via = "IMU wrapper: samples frozen"
        elif kind is FaultKind.DROP_DEPTH:
            assert self._camera is not None
            self._camera.drop()
            rec.via = "camera wrapper: no new frames"
        else:
            self._estop(spec, rec, now_ns)
        log.warning("fault drill %s fired: effective from tick %d (sim %.3f s, %.3f s after the "
                    "policy took over) via %s", spec.text, rec.seq, rec.sim_time_s,
                    rec.after_policy_s, rec.via)
        self._watching.append(index)

    def _estop(self, spec: FaultSpec, rec: FaultRecord, now_ns: int) -> None:
        reason = f"fault drill {spec.text}"
        if self._sender is not None:
            try:
                self._sender.estop(reason)
                rec.via = f"ESTOP message over zmq to {self._sender_endpoint}"
                return
            except TimeoutError as exc:
                rec.note = f"e-stop message not delivered ({exc}); used the safety API"
        else:
            rec.note = "no e-stop endpoint configured (--estop-bind none): used the safety API"
        assert self._server is not None
        self._server.safety.estop(reason + " (api)", now_ns)
        rec.via = "safety layer API (SafetyLayer.estop)"

    def _kill(self) -> None:
        try:
            self._client.stop()
        except RuntimeError as exc:
            log.error("kill-inference: %s", exc)
            self.errors.append(repr(exc))

    # -- teardown ------------------------------------------------------------------------------

    def close(self) -> None:
        """End any stall, join the drill's threads, close the sender, finish the records."""
        if self._closed:
            return
        self._closed = True
        self._cancel.set()
        for thread in self._threads:
            thread.join(10.0)
        if self._sender is not None:
            self._sender.close()
            self._sender = None
        if self._client is not None and self._client.policy.actor is self._faulty_actor:
            self._client.policy.actor = self._faulty_actor.inner
        for index in self._pending:
            self.records[index].note = (
                "not fired: the policy never took over" if self._policy_start_ns is None else
                "not fired: the run ended first")
        for index in self._watching:
            rec = self.records[index]
            if rec.note is None:
                rec.note = f"no mode change after it fired (stayed {rec.mode_before})"
        for rec in self.records:
            rec.errors = list(self.errors)

    def report(self) -> list[dict[str, Any]]:
        """The report's ``faults`` list: every record as JSON-ready values."""
        return [rec.as_dict() for rec in self.records]

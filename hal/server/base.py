"""The HAL server: the control loop that owns the robot (docs/architecture.md#the-data-flow).

Per tick k, paced on absolute deadlines: read IMU, encoders, contacts (and copy a new depth frame
into a depth slot) → write observation k into a free slot → publish its header → wait for the
command answering k until ``latency_budget_ms`` after publishing → safety layer → actuators →
advance the simulated world, if any → record timings. A missed deadline hands the safety layer
"no command" (it holds, then damps); nothing reaches a motor except through the safety layer.

The server knows no hardware: backends plug in through the device bases (:class:`HalDevices`).
"""

from __future__ import annotations

import gc
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np
import zmq

from hal.devices.aggregate import HalDevices
from hal.devices.base import (
    CONTROL_MODE_DAMP, ContactSample, HeightScanSample, ImuSample, JointCommand, JointState,
)
from hal.protocol import StateLayout
from hal.report.server import (
    ClientsReport,
    EstopCounts,
    LatencyRow,
    SafetyReport,
    ServerReport,
)
from hal.robot import RobotConfig
from hal.safety.config import SafetyConfig
from hal.safety.events import Mode, mode_code
from hal.timing import DeadlinePacer, LatencyRing
from hal.transport import CommandReceiver, ObservationPublisher, ReceivedCommand

if TYPE_CHECKING:
    from hal.auth import ServerKeys
    from hal.safety import SafetyLayer
    from hal.safety.estop import EstopListener

__all__ = ["HalDevices", "HalServerConfig", "HalServer", "HalServerError", "TickRecord",
           "default_safety_layer", "check_loop_timing"]

log = logging.getLogger(__name__)


@dataclass
class HalServerConfig:
    """Control loop and transport settings.

    ``command_interval_ticks``: control ticks per command exchange. The client's policy runs at
    ``control_rate_hz / command_interval_ticks`` (its trained rate); on the ticks in between the
    server re-applies the last command through the safety layer, which runs on every tick.
    """

    control_rate_hz: float = 100.0
    command_interval_ticks: int = 1
    latency_budget_ms: float = 5.0
    observation_endpoint: str = "inproc://hal_observation"
    command_endpoint: str = "inproc://hal_commands"
    realtime: bool = True
    n_slots: int = 8
    n_depth_slots: int = 4
    spin_us: float = 250.0
    gc_control: bool = True
    latency_ring_size: int = 1 << 16
    estop_endpoint: str | None = None  # e.g. "tcp://127.0.0.1:5560"; see hal.safety.estop
    keys_dir: str | None = None  # the robot's keys (hal.auth); network endpoints then use CURVE
    insecure: bool = False  # network endpoints without keys, explicitly (hal.auth)
    safety: SafetyConfig = field(default_factory=SafetyConfig)  # the devices may relax it
    # Off real time only (--fast evaluations): wait for the command answering each observation
    # up to this long (wall ms) instead of the latency budget, so that a run is a function of
    # its inputs, not of the machine's load. None keeps the budget.
    lockstep_timeout_ms: float | None = None

    def __post_init__(self) -> None:
        if self.latency_budget_ms is None:  # check_loop_timing lets None (not set) through
            raise ValueError("latency_budget_ms must be a number of ms, got None")
        check_loop_timing(self.control_rate_hz, self.latency_budget_ms)
        if (not isinstance(self.command_interval_ticks, int) or isinstance(
                self.command_interval_ticks, bool) or self.command_interval_ticks < 1):
            raise ValueError(f"command_interval_ticks must be an integer >= 1, got "
                             f"{self.command_interval_ticks!r}")
        if self.lockstep_timeout_ms is not None and (
                self.realtime or not 0 < self.lockstep_timeout_ms < float("inf")):
            raise ValueError(f"lockstep_timeout_ms={self.lockstep_timeout_ms} needs realtime=False "
                             f"and a positive finite number of ms")


def check_loop_timing(control_rate_hz: float, latency_budget_ms: float | None, *,
                      rate_name: str = "control_rate_hz", budget_name: str = "latency_budget_ms",
                      max_rate_hz: float = math.inf) -> None:
    """The loop's rate and command deadline, checked in one place (the server's config and the
    command line's ``--control-rate``/``--latency-budget-ms``, which name themselves).

    Raises:
        ValueError: a rate that is not a finite number in (0, ``max_rate_hz``], or a budget that
            is not positive and below the control period (None: not checked).
    """
    if not (math.isfinite(control_rate_hz) and 0 < control_rate_hz <= max_rate_hz):
        bound = ("a positive finite number of Hz" if math.isinf(max_rate_hz) else
                 f"a number in (0, {max_rate_hz:g}] Hz (the loop cannot hold more)")
        raise ValueError(f"{rate_name} {control_rate_hz}: must be {bound}")
    period_ms = 1e3 / control_rate_hz
    if latency_budget_ms is not None and not (math.isfinite(latency_budget_ms)
                                              and 0 < latency_budget_ms < period_ms):
        raise ValueError(f"{budget_name} {latency_budget_ms}: must be positive and below the "
                         f"control period ({period_ms:.2f} ms at {control_rate_hz:g} Hz)")


@dataclass
class TickRecord:
    """What happened in one tick; listeners (recorder, drills) get it after actuation."""

    seq: int
    tick_ns: int
    publish_ns: int
    joints: JointState
    imu: ImuSample
    contacts: ContactSample | None
    command: ReceivedCommand | None
    applied: JointCommand
    safety_mode: Mode
    depth_seq: int
    obs_to_command_ns: int  # -1 when no command answered this tick
    new_depth: np.ndarray | None = None  # the frame written this tick (a slot view), if any
    exchange: bool = True  # an observation was due this tick (False: the last command was held)


class HalServerError(RuntimeError):
    """The server cannot start (e.g. an endpoint is taken); the message says what to change."""


def default_safety_layer(robot: RobotConfig, devices: HalDevices,
                         config: HalServerConfig | None = None) -> SafetyLayer:
    """The safety layer for these devices: without foot sensors the entry gate cannot check the
    feet, and without a camera there is no depth to go stale. Its rate cap counts the server's
    command period (``command_interval_ticks`` control ticks)."""
    from dataclasses import replace

    from hal.safety import SafetyLayer

    safety = SafetyConfig() if config is None else config.safety
    if devices.contacts is None:
        log.warning("no foot force sensors: the entry gate will not check that the feet are down")
        safety = replace(safety, gate_min_feet_down=0)
    if devices.camera is None:
        safety = replace(safety, depth_stale_ms=None)
    period_s = None
    if config is not None:
        period_s = config.command_interval_ticks / config.control_rate_hz
    return SafetyLayer(robot, safety, command_period_s=period_s)


class HalServer:
    """Owns the control loop on the calling (main) thread.

    Args:
        robot: Robot definition (joint count, feet, camera).
        devices: The backends.
        config: Loop and transport settings.
        safety: The safety layer (``hal.safety.SafetyLayer``); built from ``robot`` when None.
        context: ZMQ context shared with inproc clients (default: the process-wide instance).
    """

    def __init__(self, robot: RobotConfig, devices: HalDevices, config: HalServerConfig | None = None,
                 safety: SafetyLayer | None = None, context: zmq.Context | None = None) -> None:
        self.robot = robot
        self.devices = devices
        self.config = config or HalServerConfig()
        self.safety: SafetyLayer = (safety if safety is not None
                                    else default_safety_layer(robot, devices, self.config))
        self._context = context or zmq.Context.instance()
        self.pacer = DeadlinePacer(self.config.control_rate_hz, self.config.spin_us,
                                   self.config.realtime)
        self.period_s = 1.0 / self.config.control_rate_hz
        self._latency_budget_ns = int(self.config.latency_budget_ms * 1e6)
        self._budget_ns = int((self.config.lockstep_timeout_ms or self.config.latency_budget_ms)
                              * 1e6)
        scanner = devices.height_scanner
        self.layout = StateLayout(robot.n_joints, robot.n_feet,
                                  scanner.n_points if scanner is not None else 0)
        self.publisher: ObservationPublisher | None = None
        self.receiver: CommandReceiver | None = None
        self.estop_listener: EstopListener | None = None
        self.tick_listeners: list[Callable[[TickRecord], None]] = []
        self._stop = threading.Event()
        self._seq = 0
        ring = self.config.latency_ring_size
        self.latency = {name: LatencyRing(ring) for name in (
            "obs_to_command", "loop_jitter", "actor_step", "depth_step", "tick_work", "world_step")}
        self.counters = {"cycles": 0, "published": 0, "commands_applied": 0, "deadline_misses": 0,
                         "late_commands": 0, "malformed_dropped": 0, "non_finite_commands": 0,
                         "slot_starved": 0, "overruns": 0, "depth_frames": 0, "damp_commands": 0}
        self._last_depth_seq_used = 0
        self._started = False
        # Sensor timestamps are on the devices' clock (a simulator in --fast mode runs ahead of
        # the wall clock); the safety layer judges data ages on that clock.
        self.clock_ns: Callable[[], int] = devices.clock_ns
        self._last_tick_ns = 0
        self._interval = self.config.command_interval_ticks
        self._held: ReceivedCommand | None = None  # the command the ticks between exchanges hold
        self._network: dict = {"clients": None, "estop": None}
        self.keys: ServerKeys | None = None  # the robot's keys once started with keys
        self._extra_authenticated = 0

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Connect the devices and bind the sockets. Idempotent."""
        if self._started:
            return
        self.keys = keys = self._check_endpoints()  # before any device connects
        self.devices.connect()
        camera = self.devices.camera
        depth_shape = camera.frame_shape if camera is not None else None
        try:
            # Pinned when CUDA is present (docs/architecture.md#the-data-flow); the transport itself
            # knows no CUDA.
            from engines.cuda_memory import allocate_host

            self.publisher = ObservationPublisher(
                self.config.observation_endpoint, self.layout, depth_shape, self._context,
                self.config.n_slots, self.config.n_depth_slots, allocate=allocate_host,
                keys=keys)
            self.receiver = CommandReceiver(self.config.command_endpoint, self.robot.n_joints,
                                            self._context, keys=keys)
            if self.config.estop_endpoint:
                from hal.safety import EstopListener

                self.estop_listener = EstopListener(self.config.estop_endpoint, self._context,
                                                    keys=keys)
        except zmq.ZMQError as exc:
            self.close()
            raise HalServerError(
                f"cannot bind the HAL's sockets (observations {self.config.observation_endpoint}, "
                f"commands {self.config.command_endpoint}, e-stop {self.config.estop_endpoint}): "
                f"{exc}. Is another krabby server running? Choose other endpoints "
                "(--observation-bind/--command-bind/--estop-bind)") from None
        self._started = True
        log.info("HAL server up: %s at %.0f Hz", self.robot.name, self.config.control_rate_hz)
        from hal.server.endpoints import log_bound_endpoints

        log_bound_endpoints(log, keys, self.config.insecure, [
            ("observations", self.publisher), ("commands", self.receiver),
            ("e-stop", self.estop_listener)])

    def _check_endpoints(self):
        """The robot's keys (or None); refuses a network endpoint without keys or --insecure."""
        from hal.server.endpoints import check_server_endpoints

        try:
            return check_server_endpoints(self.config)
        except ValueError as exc:
            raise HalServerError(str(exc)) from None

    def secure_socket(self, socket: zmq.Socket, stream: str) -> bool:
        """CURVE for another network socket of this server (the operator endpoint), admitting
        ``stream``'s roles (:data:`hal.auth.STREAM_ROLES`); call before it binds, after
        :meth:`start`, and close the socket before :meth:`close`. Returns False (nothing done)
        when the server has no keys."""
        if self.keys is None:
            return False
        from hal.auth import acquire_authenticator, secure_server_socket

        acquire_authenticator(self._context, self.keys)
        self._extra_authenticated += 1
        secure_server_socket(socket, self.keys, stream)
        return True

    @property
    def context(self) -> zmq.Context:
        """The ZMQ context of the server's sockets (inproc peers must share it)."""
        return self._context

    def request_stop(self) -> None:
        """Ask the loop to end after the current tick (signal handlers call this)."""
        self._stop.set()

    def close(self) -> None:
        """Damp the motors, close the sockets and the devices. Safe to call twice."""
        joints = self.devices.joints
        if joints.is_connected:
            try:
                joints.write(self.safety.shutdown_command())
            except Exception:  # noqa: BLE001 - still close everything else
                log.exception("could not send the damping command at shutdown")
        if self.receiver is not None:
            self.network_report()  # keep the counts for the report after close
        for part in (self.publisher, self.receiver, self.estop_listener):
            if part is not None:
                part.close()
        if self._extra_authenticated:
            from hal.auth import release_authenticator

            for _ in range(self._extra_authenticated):
                release_authenticator(self._context)
            self._extra_authenticated = 0
        self.publisher = self.receiver = self.estop_listener = None
        self.devices.close()
        self._started = False

    def __enter__(self) -> "HalServer":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- the loop ------------------------------------------------------------------------------

    def run(self, duration_s: float | None = None, max_ticks: int | None = None
            ) -> ServerReport:
        """Run ticks until ``duration_s`` of control time, ``max_ticks``, or ``request_stop()``."""
        self.start()
        total = None
        if duration_s is not None:
            total = int(round(duration_s * self.config.control_rate_hz))
        if max_ticks is not None:
            total = max_ticks if total is None else min(total, max_ticks)
        gc_was_enabled = gc.isenabled()
        frozen = self.config.gc_control and self.config.realtime
        if frozen:
            # Collections happen between ticks, in the slack before the next deadline, never
            # at an arbitrary allocation inside one.
            gc.collect()
            gc.freeze()
        if self.config.gc_control:
            # Off real time (--fast) no tick has a deadline to protect: no collection at all
            # until the run ends (a full one at every start cost an evaluation episode 2-5 %).
            gc.disable()
        self.pacer.start()
        self._last_tick_ns = 0
        ticks = 0
        try:
            while not self._stop.is_set() and (total is None or ticks < total):
                self.tick()
                ticks += 1
                if self.config.gc_control and self.config.realtime:
                    self._collect_in_slack()
        finally:
            if frozen:
                gc.unfreeze()
            if self.config.gc_control and gc_was_enabled:
                gc.enable()
        return self.report()

    def _collect_in_slack(self) -> None:
        """The collector's own schedule, moved into the slack before the next deadline.

        With the collector disabled only explicit collections run. Collecting generation 0 alone
        would promote every surviving cycle to generation 1, never to be looked at again (a slow
        leak: ~12 MB/h measured); so, as CPython's default thresholds (700, 10, 10) would, every
        10th collection also does generation 1 and every 100th generation 2 (small: the start-up
        heap is frozen). ``gc.get_count()`` carries those counts.
        """
        slack_ns = self.pacer.next_deadline_ns - time.monotonic_ns()
        if slack_ns > self.pacer.period_ns // 2:
            _, young, middle = gc.get_count()
            gc.collect(2 if middle >= 10 else 1 if young >= 10 else 0)

    def tick(self) -> TickRecord:
        """One control tick (waits for its deadline first): sense, exchange, act, account."""
        tick_ns, lateness_ns = self.pacer.wait()
        assert self.publisher is not None and self.receiver is not None, "call start() first"
        self._seq += 1
        seq = self._seq
        exchange = (seq - 1) % self._interval == 0
        estop = self.estop_listener
        if estop is not None:  # before the command wait too (and after it, in _act)
            estop.apply(self.safety, self.clock_ns())
        joints, imu, contacts, scan = self._sense(exchange)
        new_depth = None
        if exchange:
            new_depth = self._read_depth(self.publisher)
            publish_ns, received = self._exchange(seq, joints, imu, contacts, scan)
            self._held = received
        else:
            publish_ns, received = time.monotonic_ns(), None
        applied = self._act(exchange, joints, imu, contacts, received)
        return self._account(seq, tick_ns, lateness_ns, publish_ns, exchange, joints, imu,
                             contacts, received, applied, new_depth)

    def _sense(self, exchange: bool) -> tuple[JointState, ImuSample, ContactSample | None,
                                              HeightScanSample | None]:
        """The sensors the safety layer needs every tick; the terrain only when it is published."""
        devices = self.devices
        joints = devices.joints.read()
        imu = devices.imu.read()
        contacts = devices.contacts.read() if devices.contacts is not None else None
        scan = None
        if exchange and devices.height_scanner is not None:
            scan = devices.height_scanner.read()
        return joints, imu, contacts, scan

    def _exchange(self, seq: int, joints: JointState, imu: ImuSample,
                  contacts: ContactSample | None,
                  scan: HeightScanSample | None) -> tuple[int, ReceivedCommand | None]:
        """Publish observation ``seq`` and wait for its command until the budget runs out."""
        publisher, receiver = self.publisher, self.receiver
        try:
            views = publisher.begin_state()
        except RuntimeError:
            self.counters["slot_starved"] += 1
            return time.monotonic_ns(), None
        views["joint_position_rad"][...] = joints.position_rad
        views["joint_velocity_rad_s"][...] = joints.velocity_rad_s
        views["joint_torque_nm"][...] = joints.torque_nm
        views["imu_quaternion_wxyz"][...] = imu.quaternion_wxyz
        views["imu_angular_velocity_rad_s"][...] = imu.angular_velocity_rad_s
        views["imu_linear_acceleration_m_s2"][...] = imu.linear_acceleration_m_s2
        if contacts is not None:
            views["foot_force_n"][...] = contacts.force_n
        if scan is not None:
            views["height_scan_m"][...] = scan.base_height_m
        publish_ns = publisher.commit_state_and_publish(
            seq, min(joints.timestamp_ns, imu.timestamp_ns), mode_code(self.safety.mode))
        received = receiver.wait_for(seq, publish_ns + self._budget_ns)
        if received is None and self.config.lockstep_timeout_ms is not None and (
                self._budget_ns != self._latency_budget_ns):
            # The policy did not answer in lockstep time: it has died or hung. Waiting that long
            # on every tick would stall the run; the latency budget lets the watchdog act.
            self._budget_ns = self._latency_budget_ns
            log.warning("no command for observation %d within the lockstep timeout (%.0f ms): "
                        "the policy client died or hung; waiting %.1f ms per tick from now on",
                        seq, self.config.lockstep_timeout_ms, self.config.latency_budget_ms)
        return publish_ns, received

    def _act(self, exchange: bool, joints: JointState, imu: ImuSample,
             contacts: ContactSample | None, received: ReceivedCommand | None) -> JointCommand:
        """The safety layer's command for this tick, written to the motors. Between exchanges
        the last command is held (re-applied through every check)."""
        publisher = self.publisher
        if self.estop_listener is not None:
            self.estop_listener.apply(self.safety, self.clock_ns())
        depth_ts = publisher.depth_timestamp_ns if publisher.depth_seq else None
        command = received if exchange else self._held
        if exchange and received is None:
            self.counters["deadline_misses"] += 1
        if command is None:
            applied = self.safety.step(self.clock_ns(), joints, imu, contacts=contacts,
                                       depth_timestamp_ns=depth_ts)
        else:
            msg = command.message
            if exchange and command.non_finite:
                self.counters["non_finite_commands"] += 1
            if exchange and msg.mode == CONTROL_MODE_DAMP:
                self.counters["damp_commands"] += 1
                self.safety.damp(now_ns=self.clock_ns())  # the client asks the motors to go limp
            applied = self.safety.step(self.clock_ns(), joints, imu, contacts=contacts,
                                       depth_timestamp_ns=depth_ts,
                                       policy_targets_hw=msg.target_rad, policy_kp_hw=msg.kp,
                                       policy_kd_hw=msg.kd, held=not exchange)
        self.devices.joints.write(applied)
        return applied

    def _account(self, seq: int, tick_ns: int, lateness_ns: int, publish_ns: int, exchange: bool,
                 joints: JointState, imu: ImuSample, contacts: ContactSample | None,
                 received: ReceivedCommand | None, applied: JointCommand,
                 new_depth: np.ndarray | None) -> TickRecord:
        """Latencies and counters, the simulated world's step, the tick listeners."""
        done_ns = time.monotonic_ns()
        obs_to_command = -1
        if received is not None:
            obs_to_command = done_ns - publish_ns
            self.counters["commands_applied"] += 1
            self.latency["obs_to_command"].add(obs_to_command)
            self.latency["actor_step"].add(received.message.actor_ns)
            if received.message.depth_seq_used != self._last_depth_seq_used:
                self._last_depth_seq_used = received.message.depth_seq_used
                self.latency["depth_step"].add(received.message.depth_step_ns)
        world = self.devices.world
        if world is not None:
            world_start = time.monotonic_ns()
            # In real time a late tick advances the world by the wall time that really passed
            # (skipped ticks included), so simulated and wall clocks stay together.
            elapsed_s = self.period_s
            if self.config.realtime and self._last_tick_ns:
                elapsed_s = (tick_ns - self._last_tick_ns) / 1e9
            world.advance(elapsed_s)
            self.latency["world_step"].add(time.monotonic_ns() - world_start)
        self._last_tick_ns = tick_ns
        publisher, receiver = self.publisher, self.receiver
        self.counters["cycles"] += 1
        self.counters["published"] = publisher.published
        self.counters["late_commands"] = receiver.late
        self.counters["malformed_dropped"] = receiver.malformed
        self.counters["after_deadline_commands"] = receiver.after_deadline
        self.counters["foreign_commands"] = receiver.foreign
        self.counters["overruns"] = self.pacer.overruns
        if self.config.realtime:
            self.latency["loop_jitter"].add(lateness_ns)
        self.latency["tick_work"].add(time.monotonic_ns() - tick_ns)
        record = TickRecord(seq=seq, tick_ns=tick_ns, publish_ns=publish_ns, joints=joints, imu=imu,
                            contacts=contacts, command=received, applied=applied,
                            safety_mode=self.safety.mode, depth_seq=publisher.depth_seq,
                            obs_to_command_ns=obs_to_command, new_depth=new_depth,
                            exchange=exchange)
        for listener in self.tick_listeners:
            listener(record)
        return record

    def _read_depth(self, publisher: ObservationPublisher) -> np.ndarray | None:
        camera = self.devices.camera
        if camera is None:
            return None
        try:
            buffer = publisher.begin_depth()
        except RuntimeError:
            self.counters["slot_starved"] += 1
            return None
        info = camera.read_into(buffer, newer_than_seq=publisher.depth_seq)
        if info is None:
            publisher.abort_depth()
            return None
        publisher.commit_depth(info.seq, info.timestamp_ns, info.intrinsics)
        self.counters["depth_frames"] += 1
        return buffer

    # -- report --------------------------------------------------------------------------------

    def safety_report(self) -> SafetyReport:
        """The safety layer's mode, transitions and counters (after ``close()`` too)."""
        sections = {}
        for section in ("target_edits", "policy_targets"):
            summary = getattr(self.safety, section, None)
            if summary is not None:
                sections[section] = summary()
        return SafetyReport.from_dict({"mode_final": str(self.safety.mode),
                                       "events": self.safety.events(),
                                       "counters": self.safety.counters(), **sections},
                                      "safety")

    def report(self) -> ServerReport:
        """The run report's loop part: counters, latency percentiles in µs, safety, network."""
        latency = {name: LatencyRow.from_dict(ring.summary_us(), f"latency_us.{name}")
                   for name, ring in self.latency.items() if name != "loop_jitter"}
        network = self.network_report()
        return ServerReport(
            robot=self.robot.name,
            control_rate_hz=self.config.control_rate_hz,
            command_interval_ticks=self.config.command_interval_ticks,
            latency_budget_ms=self.config.latency_budget_ms,
            realtime=self.config.realtime,
            cycles=self.counters["cycles"],
            published=self.counters["published"],
            commands_applied=self.counters["commands_applied"],
            deadline_misses=self.counters["deadline_misses"],
            malformed_dropped=self.counters["malformed_dropped"],
            counters=dict(self.counters),
            latency_us=latency,
            loop_jitter_us=LatencyRow.from_dict(self.latency["loop_jitter"].summary_us(),
                                                "loop_jitter_us"),
            safety=self.safety_report(),
            clients=(ClientsReport.from_dict(network["clients"], "clients")
                     if network["clients"] is not None else None),
            estop=(EstopCounts.from_dict(network["estop"], "estop")
                   if network["estop"] is not None else None),
        )

    def network_report(self) -> dict:
        """Who drove (the command stream's owner), who was refused, and the e-stop's counts."""
        if self.receiver is not None:
            self._network = {
                "clients": {"owner": self.receiver.owner,
                            "refused": sorted(self.receiver.refused_clients),
                            "foreign_commands": self.receiver.foreign},
                "estop": (self.estop_listener.counts() if self.estop_listener is not None
                          else None)}
        return dict(self._network)

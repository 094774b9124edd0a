"""The safety layer: the only thing that builds the :class:`JointCommand` sent to the motors.

The server calls :meth:`SafetyLayer.step` once per control tick with the newest sensor readings and
the policy's command (or None when no valid command arrived by the tick's deadline) and sends what
it returns. Modes (see :class:`~hal.safety.events.Mode`)::

    idle ──request_start──► stand_up ──ramp done──► ready ──entry gate──► policy
      ▲                        │                      │                   │  ▲
      │                        │                      │   depth stale /   ▼  │ entry gate
    reset_estop                └──────────┬───────────┴── request_stand ─► stand
      │                                   ▼ (any active mode)
    estop ◄── estop() from anywhere    damping ──request_start──► stand_up
               (latched)           (sensor fault, tilt, invalid or implausible command, command
                                   watchdog, shutdown)

Per tick, in the active modes (stand_up, ready, policy, stand), in this order:

1. Sensor health: joint state of the right shape and finite, and not older (or newer) than
   ``joints_stale_ms``; IMU finite with a usable quaternion and within ``imu_stale_ms``; tilt within
   ``tilt_limit_rad``. Any failure → ``damping``.
2. The mode's desired target and gains: the stand-up ramp, the default pose, the stand ramp, or the
   policy's command blended in from the stand targets. A policy command with a wrong shape or any
   non-finite value (targets or gains) is rejected; in ``policy`` it sends the layer to ``damping``.
   Policy gains are clamped into [kp_min, kp_max] and [kd_min, kd_max].
3. Command watchdog (``policy`` only): ``hold_after_ticks`` consecutive ticks without a valid
   command hold the last applied target; ``damp_after_ticks`` → ``damping``. Stale depth →
   ``stand``. Command plausibility (:mod:`hal.safety.plausibility`): ``implausible_after_ticks``
   consecutive fresh commands that training could never have produced (a target beyond the
   training contract's action range, a joint slammed across it and back) → ``damping`` (reason
   ``implausible_command``).
4. :class:`~hal.safety.targets.TargetFilter`: position bounds, PD torque window, step cap against
   the previous applied target (see that module for the exact guarantees and the conflict rule).
   The bounds are the joint limits, except in ``policy``, where they are the contract's action
   range (``default ± action_clip × action_scale``): a trained policy's target past a joint limit
   reaches the motors as it did in training (``policy_targets_past_limits="clamp"`` clamps it).
   What the policy asked for past the limits is counted per joint (:meth:`policy_targets`).

In ``idle``, ``damping`` and ``estop`` the command is damping: kp 0, kd ``damping_kd``, mode
``CONTROL_MODE_DAMP``, and as target the measured position clipped into the limits. The first
position target after a damped tick is stepped from the measured position (clipped into the limits).

Thread safety: :meth:`estop`, :meth:`reset_estop`, :meth:`request_start`, :meth:`request_stand` and
:meth:`shutdown_command` may be called from any thread (a keyboard or network e-stop); they share
one lock with :meth:`step`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

import numpy as np

from hal.devices.base import ContactSample, ImuSample, JointCommand, JointState
from hal.robot import RobotConfig
from hal.safety import events as ev
from hal.safety.config import SafetyConfig, SafetyConfigError
from hal.safety.events import ACTIVE_MODES, Mode, TransitionLog
from hal.safety.intake import COMMAND_INVALID, COMMAND_VALID, CommandIntake
from hal.safety.monitor import SMALL_JOINT_VALUE, SensorMonitor
from hal.safety.output import CommandWriter, TargetGains
from hal.safety.plausibility import PlausibilityWatchdog
from hal.safety.target_stats import PolicyTargetStats
from hal.safety.targets import (
    FLAG_LIMIT,
    FLAG_NONFINITE,
    FLAG_STEP,
    FLAG_STEP_CONFLICT,
    FLAG_TORQUE,
    FLAG_TORQUE_INFEASIBLE,
)

__all__ = ["SafetyLayer", "ACTION_RANGE_TOLERANCE_RAD"]

log = logging.getLogger(__name__)

_FLAG_COUNTERS = ((FLAG_LIMIT, "check.limit_clamped"), (FLAG_TORQUE, "check.torque_clamped"),
                  (FLAG_STEP, "check.step_capped"), (FLAG_STEP_CONFLICT, "check.step_conflict"),
                  (FLAG_TORQUE_INFEASIBLE, "check.torque_infeasible"),
                  (FLAG_NONFINITE, "check.nonfinite_replaced"))
# In ``policy`` the filter's bounds are the action range: its limit flag means a target beyond it.
_POLICY_LIMIT_COUNTER = "check.action_range_clipped"
ACTION_RANGE_TOLERANCE_RAD = 1e-5
"""How far past the action range's ends a target still counts as inside it (float32 rounding)."""


def _smooth(alpha: float) -> float:
    """Cosine ease 0→1 with zero slope at both ends (no velocity jump at start or end of a ramp)."""
    if alpha >= 1.0:
        return 1.0
    return 0.5 - 0.5 * math.cos(math.pi * max(alpha, 0.0))


class SafetyLayer:
    """State machine and per-command checks between the policy and the motors.

    Args:
        robot: The robot definition (limits, torque limits, default pose, gains, feet).
        config: Thresholds and timings; defaults suit a Go2 at 50–100 Hz.
        command_period_s: Time between fresh commands (one policy step); the rate cap allows
            ``max_target_rate_rad_s`` × this per period. Default: the robot's policy rate.

    Raises:
        SafetyConfigError: the configuration does not fit the robot.
    """

    def __init__(self, robot: RobotConfig, config: SafetyConfig | None = None,
                 command_period_s: float | None = None) -> None:
        self.robot = robot
        self.config = cfg = config if config is not None else SafetyConfig()
        cfg.check_robot(robot)
        if command_period_s is None:
            command_period_s = 1.0 / robot.policy_rate_hz
        if not (math.isfinite(command_period_s) and command_period_s > 0):
            raise ValueError(f"command_period_s must be a positive number, got {command_period_s}")
        self.command_period_s = float(command_period_s)
        self.max_step_rad = cfg.max_target_rate_rad_s * self.command_period_s
        n = self.n_joints = robot.n_joints
        to_hw = robot.policy_to_hardware

        def hw(values: np.ndarray) -> np.ndarray:
            arr = np.array(np.asarray(values, dtype=np.float64)[to_hw])
            arr.setflags(write=False)
            return arr

        self.lower_rad, self.upper_rad = hw(robot.position_lower), hw(robot.position_upper)
        self.torque_limit_nm, self.default_rad = hw(robot.torque_limit), hw(robot.default_angles)
        half_range = robot.action_clip * robot.action_scale
        # Widened by ACTION_RANGE_TOLERANCE_RAD: a float32 target at the range's end (the client
        # computes in float32) may round a hair past it.
        self.action_lower_rad = hw(robot.default_angles - half_range - ACTION_RANGE_TOLERANCE_RAD)
        self.action_upper_rad = hw(robot.default_angles + half_range + ACTION_RANGE_TOLERANCE_RAD)
        self.policy_lower_rad, self.policy_upper_rad = self._policy_bounds()
        stand_kp = hw(robot.kp) if cfg.stand_kp is None else np.full(n, cfg.stand_kp)
        stand_kd = hw(robot.kd) if cfg.stand_kd is None else np.full(n, cfg.stand_kd)
        stand_kp = np.clip(stand_kp, cfg.kp_min, cfg.kp_max)
        stand_kd = np.clip(stand_kd, cfg.kd_min, cfg.kd_max)
        enforce_window = cfg.torque_window == "clamp"
        self._out = CommandWriter(self.lower_rad, self.upper_rad, self.torque_limit_nm,
                                  self.max_step_rad, cfg.damping_kd, self.default_rad,
                                  enforce_torque_window=enforce_window,
                                  policy_bounds=(self.policy_lower_rad, self.policy_upper_rad))
        self._flag_counters = tuple(
            (bit, "check.torque_window" if bit == FLAG_TORQUE and not enforce_window else key)
            for bit, key in _FLAG_COUNTERS)
        self._policy_flag_counters = tuple(
            (bit, _POLICY_LIMIT_COUNTER if bit == FLAG_LIMIT else key)
            for bit, key in self._flag_counters)
        # Flags that mean the applied target differs from the desired one.
        self._edit_mask = (FLAG_LIMIT | FLAG_STEP | FLAG_STEP_CONFLICT | FLAG_NONFINITE
                           | (FLAG_TORQUE | FLAG_TORQUE_INFEASIBLE if enforce_window else 0))
        self._policy_ticks = 0
        self._policy_ticks_edited = 0
        self._policy_ticks_outside_window = 0
        self._max_edit_rad = 0.0
        self._edit = np.zeros(n)
        self._monitor = SensorMonitor(cfg, n, robot.n_feet, robot.contact_force_threshold_n)
        self._monitor.set_joint_limits(self.lower_rad, self.upper_rad, hw(robot.velocity_limit),
                                       tuple(robot.joint_names_hardware))
        self._intake = CommandIntake(cfg, hw(robot.kp), hw(robot.kd))
        self._plausibility = PlausibilityWatchdog(
            self.action_lower_rad, self.action_upper_rad, cfg.implausible_slam_fraction,
            cfg.implausible_after_ticks, tuple(robot.joint_names_hardware))
        self._target_stats = PolicyTargetStats(
            self.lower_rad, self.upper_rad, self.default_rad, np.full(n, half_range),
            tuple(robot.joint_names_hardware), sustained_after_s=cfg.past_limit_max_s)
        self._held_to_limits = TargetGains(n)  # a command whose sustained pushes are clamped
        self._clamped_target = np.zeros(n)

        # Every position command's gains lie in [kp_min, kp_max] x [kd_min, kd_max], so with joint
        # readings of at most SMALL_JOINT_VALUE no torque-window term can overflow and the
        # filter may skip its errstate (TargetFilter.apply, window_safe).
        reach = SMALL_JOINT_VALUE + (cfg.kd_max * SMALL_JOINT_VALUE
                                     + float(np.max(self.torque_limit_nm))) / cfg.kp_min
        self._window_safe_gains = bool(reach < 1e300)  # False for inf or NaN too

        self._lock = threading.Lock()
        self._log = TransitionLog(cfg.max_events, int(cfg.log_interval_s * 1e9), log)
        self._tick_keys = {m: f"ticks.{m.value}" for m in Mode}
        self._mode = Mode.IDLE
        self._mode_since_ns = 0
        self._run_requested = False
        self._start_pending = False
        self._stand_pending = False
        self._estop_reason: str | None = None
        self._misses = 0
        self._gate_ok_ticks = 0
        self._ramp_start_ns = 0
        self._ramp_duration_ns = 1
        self._blend_start_ns = 0

        # Preallocated state and scratch (no array allocation per tick in steady state). Each
        # mode's desired command is one TargetGains handed to the writer as is (no copies): the
        # default pose with the stand gains (ready), the ramp (stand_up, stand), the blend, or the
        # intake's command and the last applied one themselves (policy).
        self._ramp_from = np.zeros(n)
        self._ready = TargetGains(n)
        self._ready.target[...] = self.default_rad
        self._ramp = TargetGains(n)
        for stand in (self._ready, self._ramp):
            stand.kp[...] = stand_kp
            stand.kd[...] = stand_kd
        self._blend_start = TargetGains(n)
        self._blended = TargetGains(n)

    def _policy_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The filter's bounds in ``policy``: the action range, or its overlap with the joint
        limits under ``policy_targets_past_limits="clamp"``."""
        lower, upper = self.action_lower_rad, self.action_upper_rad
        if self.config.policy_targets_past_limits == "clamp":
            lower = np.maximum(lower, self.lower_rad)
            upper = np.minimum(upper, self.upper_rad)
        empty = np.flatnonzero(lower >= upper)
        if empty.size:
            joint = int(empty[0])
            raise SafetyConfigError(
                f"{self.robot.joint_names_hardware[joint]}: the action range "
                f"[{self.action_lower_rad[joint]:.3f}, {self.action_upper_rad[joint]:.3f}] rad "
                f"misses the joint limits [{self.lower_rad[joint]:.3f}, "
                f"{self.upper_rad[joint]:.3f}] rad; check the default angles, action scale and "
                "clip of the training contract")
        beyond = np.maximum(self.lower_rad - lower, upper - self.upper_rad)
        if beyond.max() > 0.0:
            joint = int(np.argmax(beyond))
            log.info("safety: policy targets may pass the joint limits by up to %.3f rad "
                     "(%s), inside the training contract's action range, as in training",
                     float(beyond[joint]), self.robot.joint_names_hardware[joint])
        lower.setflags(write=False)
        upper.setflags(write=False)
        return lower, upper

    # ------------------------------------------------------------------ operator / server API

    @property
    def mode(self) -> Mode:
        """The current mode (a ``str`` enum: compares equal to ``"policy"`` etc.)."""
        return self._mode

    @property
    def mode_since_ns(self) -> int:
        """When the current mode began (the ``now_ns`` of that transition; 0 before any)."""
        return self._mode_since_ns

    @property
    def estop_reason(self) -> str | None:
        """Why the e-stop latched, while it is latched."""
        return self._estop_reason

    @property
    def run_requested(self) -> bool:
        """Whether the operator asked for the policy to run (the gate opens only then)."""
        return self._run_requested

    @property
    def consecutive_misses(self) -> int:
        """Ticks in a row without a valid policy command (in ``policy``)."""
        return self._misses

    def request_start(self, run_policy: bool = True) -> bool:
        """Operator: stand up (from idle or damping), then, if ``run_policy``, run the policy.

        Takes effect on the next :meth:`step`, which refuses (logs and counts) when the sensors
        are not healthy. Returns False (and does nothing) while the e-stop is latched.
        """
        with self._lock:
            if self._mode is Mode.ESTOP:
                self._log.count("request.start_refused_estop")
                log.warning("safety: start refused: e-stop latched (%s); reset it first",
                            self._estop_reason)
                return False
            self._run_requested = bool(run_policy)
            if self._mode in (Mode.IDLE, Mode.DAMPING):
                self._start_pending = True
            self._log.count("request.start")
            return True

    def request_stand(self) -> None:
        """Operator: leave the policy for ``stand`` (next tick) and stop asking for it to run."""
        with self._lock:
            self._run_requested = False
            self._stand_pending = True
            self._log.count("request.stand")

    def estop(self, reason: str = "api", now_ns: int | None = None) -> None:
        """Latch the e-stop: damping from now on until :meth:`reset_estop`. Any thread."""
        t_ns = time.monotonic_ns() if now_ns is None else now_ns
        with self._lock:
            self._log.count("estop.requests")
            if self._mode is Mode.ESTOP:
                return
            self._estop_reason = str(reason)
            self._transition(t_ns, Mode.ESTOP, ev.REASON_ESTOP, str(reason))

    def damp(self, reason: str = ev.REASON_CLIENT_DAMP, now_ns: int | None = None) -> None:
        """Go to ``damping`` now (not latched: the operator may start again). The policy client
        asks for it with a damp command; from ``estop`` it changes nothing."""
        t_ns = time.monotonic_ns() if now_ns is None else now_ns
        with self._lock:
            self._log.count("request.damp")
            if self._mode is not Mode.ESTOP and self._mode is not Mode.DAMPING:
                self._transition(t_ns, Mode.DAMPING, reason, "")

    def reset_estop(self, now_ns: int | None = None) -> bool:
        """Clear a latched e-stop (explicit only) → ``idle``. Returns False if none was latched."""
        t_ns = time.monotonic_ns() if now_ns is None else now_ns
        with self._lock:
            if self._mode is not Mode.ESTOP:
                return False
            self._estop_reason = None
            self._transition(t_ns, Mode.IDLE, ev.REASON_ESTOP_RESET, "")
            return True

    def shutdown_command(self, now_ns: int | None = None) -> JointCommand:
        """The damping command for a clean shutdown; the layer stays damped (or e-stopped)."""
        t_ns = time.monotonic_ns() if now_ns is None else now_ns
        with self._lock:
            if self._mode is not Mode.ESTOP and self._mode is not Mode.DAMPING:
                self._transition(t_ns, Mode.DAMPING, ev.REASON_SHUTDOWN, "")
            return self._emit_damping(t_ns)

    def events(self) -> list[dict[str, Any]]:
        """Transitions for the run report, oldest first: {t_ns, from, to, reason, detail}."""
        with self._lock:
            return self._log.events()

    def counters(self) -> dict[str, int]:
        """Counters: ``transition.<a>-><b>``, ``reason.<code>``, ``ticks.<mode>``, ``check.*``,
        ``command.*`` (``command.implausible``: implausible command ticks), ``gate.blocked.*``, ``request.*``, ``estop.*``."""
        with self._lock:
            return self._log.counters()

    def target_edits(self) -> dict[str, Any]:
        """How often the layer changed the policy's target: ticks in ``policy``, those on which
        the applied target differed from the desired one (``fraction``), the largest change, and
        the ticks whose target lay outside the PD torque window (counted, moved only with
        ``torque_window="clamp"``)."""
        with self._lock:
            ticks = self._policy_ticks
            return {"policy_ticks": ticks, "edited_ticks": self._policy_ticks_edited,
                    "fraction": self._policy_ticks_edited / ticks if ticks else 0.0,
                    "max_edit_rad": self._max_edit_rad,
                    "outside_torque_window_ticks": self._policy_ticks_outside_window,
                    "max_step_rad_per_period": self.max_step_rad,
                    "command_period_s": self.command_period_s}

    def policy_targets(self) -> dict[str, Any]:
        """What the policy asked for, per joint: the furthest target past a joint limit, the
        time spent asking for one, and the share of the action range used
        (:class:`~hal.safety.target_stats.PolicyTargetStats`)."""
        with self._lock:
            return self._target_stats.report()

    def report(self) -> dict[str, Any]:
        """Everything the run report needs: mode, e-stop reason, config, counters, events, the
        target edits and what the policy asked for."""
        edits = self.target_edits()
        asked = self.policy_targets()
        with self._lock:
            return {"mode": self._mode.value, "estop_reason": self._estop_reason,
                    "config": self.config.to_dict(), "counters": self._log.counters(),
                    "events": self._log.events(), "target_edits": edits,
                    "policy_targets": asked}

    # ------------------------------------------------------------------ the per-tick entry point

    def step(self, now_ns: int, joints: JointState, imu: ImuSample, *,
             contacts: ContactSample | None = None, depth_timestamp_ns: int | None = None,
             policy_targets_hw: np.ndarray | None = None, policy_kp_hw: np.ndarray | None = None,
             policy_kd_hw: np.ndarray | None = None, held: bool = False) -> JointCommand:
        """One control tick: the only command that may be sent to the motors.

        Everything after the readings is keyword-only: three optional arrays of the same shape
        side by side are too easy to pass in the wrong order.

        Args:
            now_ns: The tick's time (``time.monotonic_ns()`` clock, like the sensor timestamps).
            joints: Newest encoder readings (hardware order).
            imu: Newest IMU sample.
            contacts: Newest foot forces, or None when the robot has none.
            depth_timestamp_ns: Time of the depth the policy is using, or None when none arrived.
            policy_targets_hw: The policy's joint targets (rad, hardware order) answering this
                tick, or None when no command arrived by the deadline.
            policy_kp_hw: The command's kp (hardware order); None uses the robot's kp.
            policy_kd_hw: The command's kd (hardware order); None uses the robot's kd.
            held: The command is the previous one re-applied between policy steps (the server
                runs faster than the policy): the tick stays inside the current command period
                and is not judged again by the plausibility watchdog.

        Returns:
            A :class:`JointCommand` owned by the layer and rewritten by the next call (and by
            :meth:`shutdown_command`): send it before the next call, copy it to keep it.
        """
        with self._lock:
            try:
                return self._step(now_ns, joints, imu, contacts=contacts,
                                  depth_timestamp_ns=depth_timestamp_ns,
                                  policy_targets_hw=policy_targets_hw, policy_kp_hw=policy_kp_hw,
                                  policy_kd_hw=policy_kd_hw, held=held)
            except Exception as exc:  # noqa: BLE001 - whatever broke, the motors end damped
                self._log.count("internal_error")
                self._log.log("internal_error", now_ns, logging.ERROR,
                              "safety: internal error, damping: %r", exc, exc_info=True)
                if self._mode is not Mode.ESTOP and self._mode is not Mode.DAMPING:
                    self._transition(now_ns, Mode.DAMPING, ev.REASON_INTERNAL_ERROR,
                                     repr(exc))
                return self._emit_damping(now_ns)

    def _step(self, now_ns: int, joints: JointState, imu: ImuSample, *,
              contacts: ContactSample | None, depth_timestamp_ns: int | None,
              policy_targets_hw: np.ndarray | None, policy_kp_hw: np.ndarray | None,
              policy_kd_hw: np.ndarray | None, held: bool) -> JointCommand:
        events = self._log
        if not held:
            self._out.start_period()
        events.count(self._tick_keys[self._mode])
        joints_ok = self._monitor.joints_usable(joints)
        if joints_ok:
            self._out.note_measured(joints.position_rad)
        mode = self._mode
        if mode not in ACTIVE_MODES:
            if not self._start_pending or mode is Mode.ESTOP:
                return self._emit_damping(now_ns)
            self._start_pending = False
            fault = self._monitor.fault(now_ns, joints, joints_ok, imu, starting=True)
            if fault is not None:
                events.count("request.start_refused_sensors")
                events.log("start_refused", now_ns, logging.WARNING,
                        "safety: start refused: %s (%s)", fault[0], fault[1])
                self._run_requested = False
                return self._emit_damping(now_ns)
            self._enter_ramp(now_ns, Mode.STAND_UP, ev.REASON_OPERATOR_START, "",
                             self.config.stand_up_duration_s, from_measured=True)
        else:
            fault = self._monitor.fault(now_ns, joints, joints_ok, imu)
            if fault is not None:
                self._transition(now_ns, Mode.DAMPING, fault[0], fault[1])
                return self._emit_damping(now_ns)

        intake = self._intake
        cmd_state = intake.take(policy_targets_hw, policy_kp_hw, policy_kd_hw)
        if cmd_state == COMMAND_INVALID:
            key, detail = intake.rejection
            events.count(key)
            events.log(key, now_ns, logging.WARNING, "safety: command rejected: %s", detail)
        elif cmd_state == COMMAND_VALID and intake.gains_clamped:
            events.count("command.gains_clamped")
        if self._mode is Mode.POLICY:
            desired = self._policy_tick(now_ns, cmd_state, depth_timestamp_ns, held)
            if desired is None:
                return self._emit_damping(now_ns)
        else:
            desired = self._stand_tick(now_ns, joints, contacts, depth_timestamp_ns, cmd_state)
        return self._emit_position(now_ns, joints, desired)

    # ------------------------------------------------------------------ modes

    def _stand_tick(self, now_ns: int, joints: JointState, contacts: ContactSample | None,
                    depth_timestamp_ns: int | None, cmd_state: int) -> TargetGains:
        """stand_up / ready / stand: the ramp or the default pose, and the entry gate."""
        self._stand_pending = False  # already out of the policy
        if self._mode is Mode.READY:
            desired = self._ready
        else:
            alpha = (now_ns - self._ramp_start_ns) / self._ramp_duration_ns
            if alpha >= 1.0:
                # Both ramps end in ready: the one place the policy starts from, after the stand
                # pose has been held long enough to prime the policy's state.
                self._transition(now_ns, Mode.READY, ev.REASON_STAND_UP_DONE
                                 if self._mode is Mode.STAND_UP else ev.REASON_STAND_DONE, "")
            s = _smooth(alpha)
            desired = self._ramp
            np.subtract(self.default_rad, self._ramp_from, out=desired.target)
            np.multiply(desired.target, s, out=desired.target)
            np.add(desired.target, self._ramp_from, out=desired.target)
        if self._mode is not Mode.READY or not self._run_requested:
            self._gate_ok_ticks = 0
            return desired
        block = self._monitor.gate_block(now_ns, joints, contacts, depth_timestamp_ns,
                                         self._out.last_target if self._out.has_target else None)
        if block is not None:
            self._gate_ok_ticks = 0
            self._log.count(f"gate.blocked.{block[0]}")
            self._log.log(f"gate.{block[0]}", now_ns, logging.INFO,
                          "safety: entry gate closed in %s: %s", self._mode.value, block[1])
            return desired
        if now_ns - self._mode_since_ns < self.config.gate_min_ready_s * 1e9:
            self._log.count("gate.blocked.priming")
            return desired
        self._gate_ok_ticks += 1
        if self._gate_ok_ticks < self.config.gate_settle_ticks:
            return desired
        if cmd_state != COMMAND_VALID:
            self._log.count("gate.blocked.no_command")
            return desired
        # Through the gate: blend from what was applied last (the stand targets and gains).
        self._transition(now_ns, Mode.POLICY, ev.REASON_ENTRY_GATE,
                         f"roll {self._monitor.roll_rad:.3f} rad, "
                         f"pitch {self._monitor.pitch_rad:.3f} rad")
        self._blend_start_ns = now_ns
        self._blend_start.rows[...] = self._out.last.rows
        return self._blend(now_ns)

    def _policy_tick(self, now_ns: int, cmd_state: int, depth_timestamp_ns: int | None,
                     held: bool = False) -> TargetGains | None:
        """policy: the desired target and gains; None means the layer went to damping."""
        cfg = self.config
        if cmd_state == COMMAND_INVALID:
            self._transition(now_ns, Mode.DAMPING, ev.REASON_INVALID_COMMAND,
                             self._intake.rejection[1])
            return None
        if cmd_state == COMMAND_VALID:
            self._misses = 0
        else:
            self._misses += 1
            self._log.count("command.missing")
            if self._misses >= cfg.damp_after_ticks:
                self._transition(now_ns, Mode.DAMPING, ev.REASON_COMMAND_WATCHDOG,
                                 f"{self._misses} ticks without a valid command")
                return None
        if self._stand_pending:
            self._stand_pending = False
            self._enter_ramp(now_ns, Mode.STAND, ev.REASON_OPERATOR_STAND, "",
                             cfg.stand_ramp_duration_s, from_measured=False)
        elif not self._monitor.depth_fresh(now_ns, depth_timestamp_ns):
            self._enter_ramp(now_ns, Mode.STAND, ev.REASON_DEPTH_STALE,
                             self._monitor.depth_detail(now_ns, depth_timestamp_ns),
                             cfg.stand_ramp_duration_s, from_measured=False)
        if self._mode is Mode.STAND:
            desired = self._ramp
            desired.target[...] = self._ramp_from  # the ramp's first point
            return desired
        if cmd_state != COMMAND_VALID and (self._misses >= cfg.hold_after_ticks
                                           or not self._intake.has_valid):
            self._log.count("command.hold")
            return self._out.last
        desired = self._blend(now_ns)
        if cmd_state == COMMAND_VALID and not held and self._implausible(now_ns, desired.target):
            return None
        return desired

    def _implausible(self, now_ns: int, desired_target: np.ndarray) -> bool:
        """Judge this tick's fresh command; True means the layer went to damping."""
        watchdog = self._plausibility
        tripped = watchdog.judge(desired_target)
        if watchdog.streak:
            self._log.count("command.implausible")
        if tripped:
            self._transition(now_ns, Mode.DAMPING, ev.REASON_IMPLAUSIBLE_COMMAND, watchdog.detail)
        return tripped

    def _blend(self, now_ns: int) -> TargetGains:
        """blend_start + beta (command - blend_start), beta ramping 0→1 linearly; after the blend
        the intake's command itself (target and gains)."""
        beta = (now_ns - self._blend_start_ns) / (self.config.blend_duration_s * 1e9)
        command = self._intake.command
        if beta >= 1.0:
            return command
        if beta < 0.0:
            beta = 0.0
        out, start = self._blended.rows, self._blend_start.rows
        np.subtract(command.rows, start, out=out)
        np.multiply(out, beta, out=out)
        np.add(out, start, out=out)
        return self._blended

    def _enter_ramp(self, now_ns: int, mode: Mode, reason: str, detail: str, duration_s: float,
                    from_measured: bool) -> None:
        self._transition(now_ns, mode, reason, detail)
        self._ramp_start_ns = now_ns
        self._ramp_duration_ns = max(int(duration_s * 1e9), 1)
        if from_measured:
            self._ramp_from[...] = self._out.measured_clipped
        else:  # from the last target, which in policy may lie past a limit: start at the limit
            np.clip(self._out.last_target, self.lower_rad, self.upper_rad, out=self._ramp_from)

    def _transition(self, now_ns: int, to: Mode, reason: str, detail: str) -> None:
        self._log.record(now_ns, self._mode, to, reason, detail)
        self._mode = to
        self._mode_since_ns = now_ns
        self._gate_ok_ticks = 0
        self._misses = 0
        self._plausibility.reset()
        self._target_stats.end_of_streak(now_ns)
        if to not in ACTIVE_MODES:
            self._run_requested = False
            self._start_pending = False
            self._stand_pending = False

    # ------------------------------------------------------------------ output

    def _emit_position(self, now_ns: int, joints: JointState,
                       desired: TargetGains) -> JointCommand:
        in_policy = self._mode is Mode.POLICY
        asked = desired
        if in_policy and self._target_stats.add(now_ns, desired.target):
            desired = self._hold_sustained_to_limits(now_ns, desired)
        flags = self._out.position(now_ns, desired, joints.position_rad, joints.velocity_rad_s,
                                   self._window_safe_gains and self._monitor.joints_small,
                                   policy=in_policy)
        if desired is not asked:
            flags |= FLAG_LIMIT  # the target was edited, as the filter's limit clamp edits it
        if in_policy:
            self._policy_ticks += 1
            if flags & FLAG_TORQUE:
                self._policy_ticks_outside_window += 1
            if flags & self._edit_mask:
                self._policy_ticks_edited += 1
                np.subtract(self._out.command.target_rad, asked.target, out=self._edit)
                self._max_edit_rad = max(self._max_edit_rad, float(np.abs(self._edit).max()))
        if flags:
            for bit, key in (self._policy_flag_counters if in_policy else self._flag_counters):
                if flags & bit:
                    self._log.count(key)
            if flags & (FLAG_STEP_CONFLICT | FLAG_TORQUE_INFEASIBLE):
                self._log.log("check.conflict", now_ns, logging.WARNING, "safety: %s in %s",
                              "the step cap gave way to the target's bounds and torque window"
                              if flags & FLAG_STEP_CONFLICT else "the torque window lies outside "
                              "the target's bounds: target on the nearest bound",
                              self._mode.value)
        return self._out.command

    def _hold_sustained_to_limits(self, now_ns: int, desired: TargetGains) -> TargetGains:
        """``desired`` with the targets that have been past their limits for longer than
        ``past_limit_max_s`` clamped to the limits (a policy leaning on a stop, not landing)."""
        held = self._held_to_limits
        held.rows[...] = desired.rows
        sustained = self._target_stats.sustained
        np.clip(desired.target, self.lower_rad, self.upper_rad, out=self._clamped_target)
        np.copyto(held.target, self._clamped_target, where=sustained)
        self._log.count("check.past_limit_clamped")
        joint = int(np.argmax(sustained))
        self._log.log("check.past_limit", now_ns, logging.WARNING,
                      "safety: %s asked for a target past its limit for over %.2f s: held at the "
                      "limit until it asks for one inside", self.robot.joint_names_hardware[joint],
                      self.config.past_limit_max_s)
        return held

    def _emit_damping(self, now_ns: int) -> JointCommand:
        return self._out.damping(now_ns)

"""Configuration of the safety layer: one dataclass, validated on construction.

Defaults suit a Go2 (or A1) running the parkour policy at 50–100 Hz (DESIGN §4, §5). Durations are
in seconds, staleness limits in milliseconds, angles in radians; watchdog thresholds are counted in
control ticks because that is what the server counts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from hal.config import setting
from hal.robot import RobotConfig

__all__ = ["SafetyConfigError", "SafetyConfig", "TORQUE_WINDOW_MODES", "PAST_LIMIT_MODES"]

TORQUE_WINDOW_MODES = ("count", "clamp")
PAST_LIMIT_MODES = ("pass", "clamp")


class SafetyConfigError(ValueError):
    """A safety configuration field holds a bad value (the message names field, value and range)."""


@dataclass(frozen=True)
class SafetyConfig:
    """Thresholds and timings of :class:`hal.safety.SafetyLayer`.

    Attributes:
        stand_up_duration_s: Time of the stand-up ramp from the measured pose to the default pose.
        stand_ramp_duration_s: Time of the ramp from the last applied target to the default pose
            when the policy hands back to ``stand`` (stale depth, operator request).
        gate_max_roll_rad: Entry gate: largest |roll| of the base.
        gate_max_pitch_rad: Entry gate: largest |pitch| of the base.
        gate_max_tracking_error_rad: Entry gate: largest |q - applied target| over the joints. A Go2
            standing on kp 40 sags about 0.1–0.2 rad at the calves under its own weight.
        gate_min_feet_down: Entry gate: feet whose contact force exceeds the robot's
            ``contact_force_threshold_n``. 0 disables the check (robot without foot sensors).
        gate_settle_ticks: Consecutive ticks the gate conditions must hold before the policy may
            take over, so one lucky sample during a wobble does not open the gate.
        gate_min_ready_s: The default pose must have been held (mode ``ready``) this long before
            the gate opens: the policy client resets its history, last action, contact memory and
            recurrent state when ``ready`` begins and primes them with these stand frames, as a
            training episode starts (DESIGN §4b).
        blend_duration_s: Linear blend from the stand targets (and gains) to the policy's.
        max_target_rate_rad_s: Cap on how fast the applied target may move, in rad/s so that it
            means the same at any control rate: within one command period (one policy step) the
            target moves at most this × the period from where the period began. 40 rad/s is 0.8
            rad per 50 Hz policy step, a third of the largest step an action clip of ±1.2 rad
            allows and above the Go2's joint speed limits (30.1 rad/s hip/thigh, 15.7 calf), so a
            walking policy's steps pass untouched while a flipping, diverged one is slowed.
        torque_window: ``"count"`` (default): a target outside the PD torque window is counted
            (``check.torque_window``) but not moved — the motor clips the torque, as training
            clipped it at every physics step, and moving the target once per tick would take away
            torque the policy was trained to use. ``"clamp"``: move it into the window.
        kp_min: Lower bound on every position-mode kp; must be > 0 (the torque window divides
            by kp).
        kp_max: Upper bound on every kp.
        kd_min: Lower bound on every position-mode kd.
        kd_max: Upper bound on every kd.
        stand_kp: kp during stand-up, ready and stand; None uses the robot definition's kp.
        stand_kd: kd during stand-up, ready and stand; None uses the robot definition's kd.
        hold_after_ticks: Consecutive ticks without a valid policy command after which the last
            applied (safe) target is held. Before that the last valid command is re-applied through
            every check. 1 holds from the first miss (DESIGN §1).
        damp_after_ticks: Consecutive ticks without a valid policy command after which the layer
            goes to damping (10 ticks = 0.2 s at 50 Hz, 0.1 s at 100 Hz).
        imu_stale_ms: IMU samples older than this (or this far in the future) → damping.
        joints_stale_ms: Encoder readings older than this (or this far in the future) → damping.
            Contact samples older than this only close the entry gate.
        depth_stale_ms: Depth older than this → ``stand`` (and the gate stays closed until depth is
            fresh again). None disables the check, for a policy without depth (a teacher).
        implausible_after_ticks: Command-plausibility watchdog (:mod:`hal.safety.plausibility`):
            this many consecutive policy ticks whose fresh command is one training could never
            produce (a target beyond the contract's action range, or a joint slammed back and forth
            across most of it) → damping (reason ``implausible_command``). 0 disables it.
        implausible_slam_fraction: A step of at least this share of a joint's action range
            (default ± action clip × scale: 2.4 rad wide for this family's ±1.2 rad clip) in one
            policy step is a slam. 0.5 (1.2 rad per policy step, the old step rule's threshold,
            which a real trained Go2 parkour policy crossed a course under) makes five slams in a
            row a joint banging between the ends of its range.
        policy_targets_past_limits: What the layer does with a policy target that lies inside the
            contract's action range but past a joint limit. ``"pass"`` (default): it reaches the
            motors, as it did in training, where only the simulator's joint stops held the joint
            and the motors' torque limit clipped the PD torque. Clamping it to the limit takes
            away the PD torque a landing was trained to use (README, "Safety"). ``"clamp"``:
            clamp it to the limit. Targets beyond the action range are always clipped to it.
        past_limit_max_s: A joint whose target stays past its limit longer than this (a policy
            leaning on a stop, not landing: a landing asks for 0.1 s) gets its target clamped to
            the limit until it asks for one inside again (``check.past_limit_clamped``). None:
            never.
        joint_velocity_limit_scale: A measured |joint velocity| above this times the robot
            file's ``velocity_limit`` for ``joint_velocity_limit_ticks`` ticks in a row →
            damping (reason ``joint_velocity_limit``), as the trusted deploys stop a robot whose
            joints run away. It catches a runaway, not a fast swing: a trained gait's swing legs
            and a landing's impact pass the rated speed for an instant (the policy was trained
            without a speed limit), a motor or encoder that runs away stays beyond 1.5 × it.
            None disables the check.
        joint_velocity_limit_ticks: Consecutive ticks beyond the velocity limit that damp.
        joint_position_margin_rad: A measured joint position more than this outside the robot
            file's position limits for ``joint_position_limit_ticks`` ticks in a row → damping
            (reason ``joint_position_limit``): the joint is past its stop or the encoder is wrong.
            A start is refused at once. None disables the check.
        joint_position_limit_ticks: Consecutive ticks beyond the position margin that damp. A
            calf swung onto its stop in the air (a jump) overshoots it for a few milliseconds:
            0.103 rad in the simulator with an uncapped step, 5 ms beyond 0.1 rad.
        tilt_limit_rad: Angle between the base's up axis and the world's up axis beyond which the
            layer damps (a fall). 1.0 rad leaves room for the pitch of a parkour climb.
        damping_kd: kd of the damping command (kp 0) every fault and every shutdown ends in. Its
            torque -kd dq only opposes motion; where it would exceed a torque limit (a Go2 hip
            above 11.9 rad/s at kd 2) the motor saturates, which removes energy more slowly but
            never adds any, so damping is not clamped like a position target.
        max_events: Transitions kept for the run report (the oldest are dropped, and counted).
        log_interval_s: Repeats of the same log message are suppressed for this long (and counted).
    """

    stand_up_duration_s: float = 2.0
    stand_ramp_duration_s: float = 1.0
    gate_max_roll_rad: float = 0.2
    gate_max_pitch_rad: float = 0.2
    gate_max_tracking_error_rad: float = 0.25
    gate_min_feet_down: int = 4
    gate_settle_ticks: int = 5
    gate_min_ready_s: float = 0.5
    blend_duration_s: float = 0.5
    max_target_rate_rad_s: float = 40.0
    torque_window: str = "count"
    kp_min: float = 1.0
    kp_max: float = 100.0
    kd_min: float = 0.1
    kd_max: float = 10.0
    stand_kp: float | None = None
    stand_kd: float | None = None
    hold_after_ticks: int = 1
    damp_after_ticks: int = 10
    imu_stale_ms: float = 50.0
    joints_stale_ms: float = 50.0
    depth_stale_ms: float | None = 300.0
    implausible_after_ticks: int = 5
    implausible_slam_fraction: float = 0.5
    section: ClassVar[str] = "safety"

    # The one setting a command line offers (the appliance's); the rest come from robot files and
    # code (SafetyConfig.from_dict).
    policy_targets_past_limits: str = setting(
        "pass", choices=PAST_LIMIT_MODES, metavar="MODE",
        help="a policy target inside the training contract's action range but past a joint "
             "limit: pass it on as training did or clamp it to the limit (README, Safety)")
    past_limit_max_s: float | None = 0.5
    tilt_limit_rad: float = 1.0
    joint_velocity_limit_scale: float | None = 1.5
    joint_velocity_limit_ticks: int = 3
    joint_position_margin_rad: float | None = 0.1
    joint_position_limit_ticks: int = 2
    damping_kd: float = 2.0
    max_events: int = 1000
    log_interval_s: float = 1.0

    def __post_init__(self) -> None:
        positive = ("stand_up_duration_s", "stand_ramp_duration_s", "gate_max_roll_rad",
                    "gate_max_pitch_rad", "gate_max_tracking_error_rad", "blend_duration_s",
                    "max_target_rate_rad_s", "kp_min", "kp_max", "kd_max", "imu_stale_ms",
                    "joints_stale_ms", "tilt_limit_rad", "damping_kd")
        for name in positive:
            _check_number(name, getattr(self, name), low=0.0, low_open=True)
        _check_number("kd_min", self.kd_min, low=0.0)
        _check_number("log_interval_s", self.log_interval_s, low=0.0)
        _check_number("gate_min_ready_s", self.gate_min_ready_s, low=0.0)
        if self.torque_window not in TORQUE_WINDOW_MODES:
            raise SafetyConfigError(f"torque_window={self.torque_window!r}: valid are "
                                    f"{', '.join(TORQUE_WINDOW_MODES)}")
        _check_number("implausible_slam_fraction", self.implausible_slam_fraction, low=0.0,
                      low_open=True)
        if self.implausible_slam_fraction > 1.0:
            raise SafetyConfigError(f"implausible_slam_fraction={self.implausible_slam_fraction!r}:"
                                    " must be in (0, 1] (a share of the action range)")
        if self.past_limit_max_s is not None:
            _check_number("past_limit_max_s", self.past_limit_max_s, low=0.0)
        if self.policy_targets_past_limits not in PAST_LIMIT_MODES:
            raise SafetyConfigError(
                f"policy_targets_past_limits={self.policy_targets_past_limits!r}: valid are "
                f"{', '.join(PAST_LIMIT_MODES)}")
        if self.depth_stale_ms is not None:
            _check_number("depth_stale_ms", self.depth_stale_ms, low=0.0, low_open=True)
        if self.joint_velocity_limit_scale is not None:
            _check_number("joint_velocity_limit_scale", self.joint_velocity_limit_scale, low=0.0,
                          low_open=True)
        if self.joint_position_margin_rad is not None:
            _check_number("joint_position_margin_rad", self.joint_position_margin_rad, low=0.0)
        for name in ("stand_kp", "stand_kd"):
            if getattr(self, name) is not None:
                _check_number(name, getattr(self, name), low=0.0, low_open=True)
        if self.tilt_limit_rad > math.pi:
            raise SafetyConfigError(f"tilt_limit_rad={self.tilt_limit_rad!r}: must be at most pi")
        for name, low in (("gate_min_feet_down", 0), ("gate_settle_ticks", 1),
                          ("hold_after_ticks", 1), ("damp_after_ticks", 1), ("max_events", 1),
                          ("implausible_after_ticks", 0), ("joint_velocity_limit_ticks", 1),
                          ("joint_position_limit_ticks", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise SafetyConfigError(f"{name}={value!r}: must be an integer >= {low}")
        if self.kp_min > self.kp_max:
            raise SafetyConfigError(f"kp_min={self.kp_min} must not exceed kp_max={self.kp_max}")
        if self.kd_min > self.kd_max:
            raise SafetyConfigError(f"kd_min={self.kd_min} must not exceed kd_max={self.kd_max}")
        if self.hold_after_ticks > self.damp_after_ticks:
            raise SafetyConfigError(
                f"hold_after_ticks={self.hold_after_ticks} must not exceed "
                f"damp_after_ticks={self.damp_after_ticks}")

    def check_robot(self, robot: RobotConfig) -> None:
        """Raise :class:`SafetyConfigError` if this configuration cannot serve ``robot``."""
        if self.gate_min_feet_down > robot.n_feet:
            raise SafetyConfigError(
                f"gate_min_feet_down={self.gate_min_feet_down}: robot {robot.name!r} has only "
                f"{robot.n_feet} feet ({', '.join(robot.foot_names)}); use 0..{robot.n_feet}")

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for the run report."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SafetyConfig:
        """Build from a mapping (e.g. a TOML table); unknown keys raise, naming the valid ones."""
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - valid)
        if unknown:
            raise SafetyConfigError(f"unknown safety field(s) {unknown}; valid: {sorted(valid)}")
        return cls(**values)


def _check_number(name: str, value: Any, low: float, low_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = value > low if low_open else value >= low
    if not ok:
        bound = f"> {low}" if low_open else f">= {low}"
        raise SafetyConfigError(f"{name}={value!r}: must be a finite number {bound}")

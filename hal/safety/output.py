"""The one place a :class:`JointCommand` for the motors is written.

:class:`CommandWriter` owns the preallocated command the safety layer returns every tick, the last
applied position target and gains (the step cap's reference), and the damping command. A position
command always goes through :class:`~hal.safety.targets.TargetFilter`; the first one after a
damped tick is stepped from the measured position clipped into the limits.
"""

from __future__ import annotations

import numpy as np

from hal.devices.base import CONTROL_MODE_DAMP, CONTROL_MODE_POSITION, JointCommand
from hal.safety.targets import TargetFilter, clip_ufunc

__all__ = ["CommandWriter", "TargetGains"]


class TargetGains:
    """A position target and its gains in one (3, n) float64 buffer: rows target, kp, kd.

    One buffer lets a whole command be copied or blended in one numpy call instead of three, and
    the row views are made once (on 12 joints a view costs about as much as the copy itself).

    Args:
        n: Joints.
    """

    __slots__ = ("rows", "target", "kp", "kd", "gains")

    def __init__(self, n: int) -> None:
        self.rows = np.zeros((3, n))
        self.target, self.kp, self.kd = self.rows
        self.gains = self.rows[1:]  # kp and kd, (2, n)


class CommandWriter:
    """Builds the returned command in place; no array allocation per call.

    Args:
        lower: Lower joint limits (rad, hardware order).
        upper: Upper joint limits (rad, hardware order).
        torque_limit: Torque limits (N·m, hardware order).
        max_step: Step cap (rad) per command period, measured from the target the period began at.
        damping_kd: kd of the damping command.
        initial_pose: Damping target until a valid joint reading arrives (the default pose).
        enforce_torque_window: Clamp targets into the PD torque window, or only flag them.
        policy_bounds: ``(lower, upper)`` that bound a target in ``policy`` instead of the joint
            limits (the training contract's action range); None uses the joint limits there too.
    """

    def __init__(self, lower: np.ndarray, upper: np.ndarray, torque_limit: np.ndarray,
                 max_step: float, damping_kd: float, initial_pose: np.ndarray,
                 enforce_torque_window: bool = True,
                 policy_bounds: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        n = len(lower)
        self.lower = lower
        self.upper = upper
        self.filter = TargetFilter(lower, upper, torque_limit, max_step, enforce_torque_window)
        self.policy_filter = self.filter if policy_bounds is None else TargetFilter(
            policy_bounds[0], policy_bounds[1], torque_limit, max_step, enforce_torque_window)
        self._command = TargetGains(n)
        self.command = JointCommand(target_rad=self._command.target, kp=self._command.kp,
                                    kd=self._command.kd, mode=CONTROL_MODE_DAMP)
        self.last = TargetGains(n)  # the last applied position command
        self.last_target, self.last_kp, self.last_kd = self.last.target, self.last.kp, self.last.kd
        self.has_target = False  # the previous command was a position command
        self.measured_clipped = np.clip(np.asarray(initial_pose, dtype=np.float64), lower, upper)
        self._reference = np.zeros(n)
        self._period_reference = np.zeros(n)
        self._period_open = False  # _period_reference holds the target this period began at
        self._damping_gains = np.stack([np.zeros(n), np.full(n, float(damping_kd))])

    def note_measured(self, position_rad: np.ndarray) -> None:
        """Record a valid (finite, right-shaped) joint position reading."""
        clip_ufunc(position_rad, self.lower, self.upper, out=self.measured_clipped)

    def start_period(self) -> None:
        """A new command period (policy step) begins: the step cap measures from here."""
        self._period_open = self.has_target
        if self.has_target:
            self._period_reference[...] = self.last_target

    @property
    def step_reference(self) -> np.ndarray:
        """Where the step cap measures from: the period's starting target, else the last applied
        target, else (after damping) the measured pose clipped into the limits."""
        if self._period_open:
            return self._period_reference
        if self.has_target:
            return self.last_target
        self._reference[...] = self.measured_clipped
        return self._reference

    def position(self, now_ns: int, desired: TargetGains, q: np.ndarray, dq: np.ndarray,
                 window_safe: bool = False, policy: bool = False) -> int:
        """Filter ``desired`` into the command (position mode); returns the filter's flags.

        ``desired.kp`` must be > 0 and every input finite (the safety layer guarantees both).
        ``desired`` may be :attr:`last` (hold the last applied command). ``window_safe``: see
        :meth:`TargetFilter.apply`. ``policy``: bound the target by the policy bounds (a
        ``FLAG_LIMIT`` then means "outside those bounds").
        """
        cmd = self.command
        target_filter = self.policy_filter if policy else self.filter
        flags = target_filter.apply(desired.target, self.step_reference, q, dq, desired.kp,
                                    desired.kd, cmd.target_rad, window_safe)
        self._command.gains[...] = desired.gains
        cmd.mode = CONTROL_MODE_POSITION
        cmd.timestamp_ns = now_ns
        self.last.rows[...] = self._command.rows
        self.has_target = True
        return flags

    def damping(self, now_ns: int) -> JointCommand:
        """The damping command: kp 0, kd damping_kd, target the last measured pose (clipped)."""
        cmd = self.command
        cmd.target_rad[...] = self.measured_clipped
        self._command.gains[...] = self._damping_gains
        cmd.mode = CONTROL_MODE_DAMP
        cmd.timestamp_ns = now_ns
        self.has_target = False
        self._period_open = False
        return cmd

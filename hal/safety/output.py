"""The one place a :class:`JointCommand` for the motors is written.

:class:`CommandWriter` owns the preallocated command the safety layer returns every tick, the last
applied position target and gains (the step cap's reference), and the damping command. A position
command always goes through :class:`~hal.safety.targets.TargetFilter`; the first one after a
damped tick is stepped from the measured position clipped into the limits.
"""

from __future__ import annotations

import numpy as np

from hal.devices.base import CONTROL_MODE_DAMP, CONTROL_MODE_POSITION, JointCommand
from hal.safety.targets import TargetFilter

__all__ = ["CommandWriter"]


class CommandWriter:
    """Builds the returned command in place; no array allocation per call.

    Args:
        lower: Lower joint limits (rad, hardware order).
        upper: Upper joint limits (rad, hardware order).
        torque_limit: Torque limits (N·m, hardware order).
        max_step: Per-tick step cap (rad).
        damping_kd: kd of the damping command.
        initial_pose: Damping target until a valid joint reading arrives (the default pose).
    """

    def __init__(self, lower: np.ndarray, upper: np.ndarray, torque_limit: np.ndarray,
                 max_step: float, damping_kd: float, initial_pose: np.ndarray) -> None:
        n = len(lower)
        self.lower = lower
        self.upper = upper
        self.filter = TargetFilter(lower, upper, torque_limit, max_step)
        self.command = JointCommand(target_rad=np.zeros(n), kp=np.zeros(n), kd=np.zeros(n),
                                    mode=CONTROL_MODE_DAMP)
        self.last_target = np.zeros(n)
        self.last_kp = np.zeros(n)
        self.last_kd = np.zeros(n)
        self.has_target = False  # the previous command was a position command
        self.measured_clipped = np.clip(np.asarray(initial_pose, dtype=np.float64), lower, upper)
        self._reference = np.zeros(n)
        self._damping_kd = np.full(n, float(damping_kd))

    def note_measured(self, position_rad: np.ndarray) -> None:
        """Record a valid (finite, right-shaped) joint position reading."""
        np.clip(position_rad, self.lower, self.upper, out=self.measured_clipped)

    def position(self, now_ns: int, desired: np.ndarray, kp: np.ndarray, kd: np.ndarray,
                 q: np.ndarray, dq: np.ndarray) -> int:
        """Filter ``desired`` into the command (position mode); returns the filter's flags.

        ``kp`` must be > 0 and every input finite (the safety layer guarantees both).
        """
        cmd = self.command
        if self.has_target:
            reference = self.last_target
        else:
            reference = self._reference
            np.copyto(reference, self.measured_clipped)
        flags = self.filter.apply(desired, reference, q, dq, kp, kd, cmd.target_rad)
        np.copyto(cmd.kp, kp)
        np.copyto(cmd.kd, kd)
        cmd.mode = CONTROL_MODE_POSITION
        cmd.timestamp_ns = now_ns
        np.copyto(self.last_target, cmd.target_rad)
        np.copyto(self.last_kp, kp)
        np.copyto(self.last_kd, kd)
        self.has_target = True
        return flags

    def damping(self, now_ns: int) -> JointCommand:
        """The damping command: kp 0, kd damping_kd, target the last measured pose (clipped)."""
        cmd = self.command
        np.copyto(cmd.target_rad, self.measured_clipped)
        cmd.kp.fill(0.0)
        np.copyto(cmd.kd, self._damping_kd)
        cmd.mode = CONTROL_MODE_DAMP
        cmd.timestamp_ns = now_ns
        self.has_target = False
        return cmd

"""Command plausibility watchdog: a policy that keeps demanding impossible targets ends damped.

The target filter (:mod:`hal.safety.targets`) keeps every applied target safe whatever the policy
asks for. A policy that asks, tick after tick, for targets far beyond the step cap or the joint
limits is nevertheless broken (diverged weights, a wrong joint order or action scale, a corrupted
engine): the filter would then drive the motors along the edge of the safe set in a pattern nobody
chose. This watchdog ends that.

Rule. In ``policy``, each tick that brings a fresh valid command is judged on the **desired
target** the layer hands the filter (the command, blended in from the stand targets during the
entry blend). The tick is *implausible* when, for at least one joint,

- ``|desired - reference| > (max_target_rate_rad_s + implausible_rate_margin_rad_s) × period``
  where the reference is the target the command period began from (the rate cap would cut more
  than the margin), or
- ``desired`` lies more than ``implausible_limit_margin_rad`` outside ``[lower, upper]``.

``implausible_after_ticks`` consecutive implausible ticks → ``damping`` with reason
``implausible_command``. A plausible command tick resets the count; ticks without a fresh command
(held) leave it unchanged; every mode transition resets it.

Why a sane policy never trips it: with the defaults the step threshold is 1.2 rad per 50 Hz policy
step (60 rad/s, twice a Go2 hip's top speed) sustained for 5 commands (0.1 s at 50 Hz; with
the torque window only counted, a flipping policy tilts the robot within about 0.2 s), and
the entry blend moves the desired target by at most ``period / blend_duration_s`` of the distance
to the command per tick (0.04 × at most ~2.4 rad at 50 Hz with a 0.5 s blend). The limit margin
(0.3 rad) tolerates a policy that leans on a limit to get torque, but not one that parks a joint
far outside it. The untrained synthetic policy in the simulator never comes close (its steps stay
well inside the cap); the fault drill ``wild-actions`` (±50 alternating, clipped to ±1.2 rad from
the default pose and so asking for 2.4 rad steps) trips it in exactly ``implausible_after_ticks``
ticks.
"""

from __future__ import annotations

import numpy as np

from hal.safety.targets import all_of

__all__ = ["PlausibilityWatchdog"]


class PlausibilityWatchdog:
    """Counts consecutive implausible policy commands (allocation-free per tick).

    Args:
        lower: Lower joint limits (rad, hardware order).
        upper: Upper joint limits (rad, hardware order).
        max_step_rad: The step cap (rad per command period).
        step_margin_rad: How far beyond the step cap a desired target may ask (rad per period).
        limit_margin_rad: How far outside the joint limits a desired target may ask.
        after_ticks: Consecutive implausible ticks that trip the watchdog; 0 disables it.
        joint_names: Hardware-order names, for the detail text.
    """

    def __init__(self, lower: np.ndarray, upper: np.ndarray, max_step_rad: float,
                 step_margin_rad: float, limit_margin_rad: float, after_ticks: int,
                 joint_names: tuple[str, ...]) -> None:
        self._lower = np.asarray(lower, dtype=np.float64)
        self._upper = np.asarray(upper, dtype=np.float64)
        self.step_threshold_rad = float(max_step_rad) + float(step_margin_rad)
        self.limit_margin_rad = float(limit_margin_rad)
        self.after_ticks = int(after_ticks)
        self._names = tuple(joint_names)
        self.streak = 0
        self.detail = ""  # what the last implausible tick asked for, in words
        n = len(self._lower)
        # Rows desired - reference, reference - desired (|step| <= t is both <= t), lower -
        # desired, desired - upper against their thresholds: a plausible tick (the usual one)
        # costs four subtractions, one comparison and one reduction.
        self._work = np.zeros((4, n))
        self._up, self._down, self._below, self._above = self._work
        self._thresholds = np.array([[self.step_threshold_rad] * n] * 2
                                    + [[self.limit_margin_rad] * n] * 2)
        self._ok = np.zeros((4, n), dtype=bool)
        self._step = np.zeros(n)
        self._out = np.zeros(n)

    @property
    def enabled(self) -> bool:
        return self.after_ticks > 0

    def reset(self) -> None:
        """Forget the streak (on every mode transition)."""
        self.streak = 0

    def judge(self, desired: np.ndarray, reference: np.ndarray) -> bool:
        """Judge one fresh command tick; True when this tick completes a tripping streak.

        Args:
            desired: The desired target handed to the filter (rad, hardware order, finite).
            reference: The previous applied target (rad, hardware order).

        Returns:
            True when the streak reached ``after_ticks`` (the caller damps); :attr:`detail` then
            describes the last implausible tick.
        """
        if self.after_ticks <= 0:  # not self.enabled, without the property call
            return False
        np.subtract(desired, reference, out=self._up)
        np.subtract(reference, desired, out=self._down)
        np.subtract(self._lower, desired, out=self._below)
        np.subtract(desired, self._upper, out=self._above)
        # Plausible exactly when no entry exceeds its threshold (a NaN fails the comparison, as it
        # fails the maxima below): the usual tick needs no argmax.
        np.less_equal(self._work, self._thresholds, out=self._ok)
        if all_of(self._ok, axis=None):
            self.streak = 0
            return False
        np.abs(self._up, out=self._step)
        np.maximum(self._below, self._above, out=self._out)
        step_joint = int(np.argmax(self._step))
        limit_joint = int(np.argmax(self._out))
        step = float(self._step[step_joint])
        outside = float(self._out[limit_joint])
        self.streak += 1
        if step > self.step_threshold_rad:
            self.detail = (f"{self.streak} consecutive commands asked for impossible targets; "
                           f"last: {self._names[step_joint]} a step of {step:.3f} rad > "
                           f"{self.step_threshold_rad:.3f} rad (step cap + margin)")
        else:
            self.detail = (f"{self.streak} consecutive commands asked for impossible targets; "
                           f"last: {self._names[limit_joint]} {outside:.3f} rad outside its "
                           f"limits > {self.limit_margin_rad:.3f} rad margin")
        return self.streak >= self.after_ticks

"""Command plausibility watchdog: a policy that keeps asking for what training never produced ends
damped.

What a trained policy may command is its training contract's **action range**: per joint,
``default ± action_clip × action_scale`` (training clipped every action to it, and nothing in
training clamped a target to the joint limits: the simulator's joint stops held the joints). A
target inside that range is plausible wherever the joint limits are: a landing asks for calf
targets past the calf's limit, every time.

Rule. In ``policy``, each tick that brings a fresh valid command is judged on the **desired
target** the layer hands the filter (the command, blended in from the stand targets during the
entry blend). The tick is *implausible* when, for at least one joint,

- ``desired`` lies outside the action range (a client that does not clip, a wrong action scale or
  clip, a corrupted engine): the filter clips it to the range, as training's clip would have; or
- the joint is **slammed**: ``|desired - previous desired| >= slam_fraction × range width`` (more
  than half the range, so two slams in a row on one joint go opposite ways: a policy banging
  between the ends of its range step after step, from diverged weights or a wrong joint order).

``implausible_after_ticks`` consecutive implausible ticks → ``damping`` with reason
``implausible_command``. A plausible command tick resets the count; ticks without a fresh command
(held) leave it unchanged; every mode transition resets it and forgets the previous step.

Why a trained policy never trips it: its actions are clipped to the range by the client (as in
training), and with the default fraction a slam is a step of at least 1.8 rad in one policy step
on one joint (75 % of the 2.4 rad a ±1.2 rad clip allows), for 5 commands running, which can only
be the joint going from one end of its range to the other and back; a gait's swing or a landing's
brace moves a joint one way over several steps. The entry blend moves the desired target by at
most ``period / blend_duration_s`` of the distance to the command per tick. The fault drill
``wild-actions`` (±50 alternating, clipped to ±1.2 rad around the default pose: 2.4 rad steps)
trips it on its sixth command (the first one steps 1.2 rad from the policy's pose).
"""

from __future__ import annotations

import numpy as np

from hal.safety.targets import all_of

__all__ = ["PlausibilityWatchdog"]


class PlausibilityWatchdog:
    """Counts consecutive implausible policy commands (allocation-free per tick).

    Args:
        action_lower: Lower end of the action range per joint (rad, hardware order).
        action_upper: Upper end of the action range per joint (rad, hardware order).
        slam_fraction: Share of a joint's range width that one step must reach to count as a
            slam, in (0.5, 1].
        after_ticks: Consecutive implausible ticks that trip the watchdog; 0 disables it.
        joint_names: Hardware-order names, for the detail text.
    """

    def __init__(self, action_lower: np.ndarray, action_upper: np.ndarray, slam_fraction: float,
                 after_ticks: int, joint_names: tuple[str, ...]) -> None:
        self._lower = np.array(action_lower, dtype=np.float64)
        self._upper = np.array(action_upper, dtype=np.float64)
        self.slam_step_rad = float(slam_fraction) * (self._upper - self._lower)
        self.after_ticks = int(after_ticks)
        self._names = tuple(joint_names)
        self.streak = 0
        self.detail = ""  # what the last implausible tick asked for, in words
        n = len(self._lower)
        # Rows lower - desired and desired - upper against 0: a tick inside the range costs two
        # subtractions, one comparison and one reduction.
        self._outside = np.zeros((2, n))
        self._below, self._above = self._outside
        self._inside = np.zeros((2, n), dtype=bool)
        self._previous = np.zeros(n)
        self._has_previous = False
        self._step = np.zeros(n)
        self._big = np.zeros(n, dtype=bool)
        self._product = np.zeros(n)

    @property
    def enabled(self) -> bool:
        return self.after_ticks > 0

    def reset(self) -> None:
        """Forget the streak and the previous command (on every mode transition)."""
        self.streak = 0
        self._has_previous = False

    def judge(self, desired: np.ndarray) -> bool:
        """Judge one fresh command tick; True when this tick completes a tripping streak.

        Args:
            desired: The desired target handed to the filter (rad, hardware order, finite).

        Returns:
            True when the streak reached ``after_ticks`` (the caller damps); :attr:`detail` then
            describes the last implausible tick.
        """
        if self.after_ticks <= 0:  # not self.enabled, without the property call
            return False
        np.subtract(self._lower, desired, out=self._below)
        np.subtract(desired, self._upper, out=self._above)
        np.less_equal(self._outside, 0.0, out=self._inside)
        in_range = bool(all_of(self._inside, axis=None))
        slammed = self._slams(desired)
        if in_range and not slammed:
            self.streak = 0
            return False
        self.streak += 1
        prefix = f"{self.streak} consecutive commands asked for what training never produced; "
        if not in_range:
            np.maximum(self._below, self._above, out=self._product)
            joint = int(np.argmax(self._product))
            self.detail = (f"{prefix}last: {self._names[joint]} target "
                           f"{float(desired[joint]):.3f} rad, {float(self._product[joint]):.3f} "
                           f"rad outside its action range [{self._lower[joint]:.3f}, "
                           f"{self._upper[joint]:.3f}] rad")
        else:
            np.abs(self._step, out=self._product)
            joint = int(np.argmax(self._product))
            self.detail = (f"{prefix}last: {self._names[joint]} slammed {self._step[joint]:+.3f} "
                           f"rad in one policy step (a slam is a step >= "
                           f"{self.slam_step_rad[joint]:.3f} rad)")
        return self.streak >= self.after_ticks

    def _slams(self, desired: np.ndarray) -> bool:
        """Step from the previous command to ``desired``; True when some joint slammed."""
        if not self._has_previous:
            self._previous[...] = desired
            self._has_previous = True
            return False
        np.subtract(desired, self._previous, out=self._step)
        self._previous[...] = desired
        np.abs(self._step, out=self._product)
        np.greater_equal(self._product, self.slam_step_rad, out=self._big)
        return bool(self._big.any())

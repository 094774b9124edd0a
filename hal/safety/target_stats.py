"""How hard the policy drives each joint: targets past the joint limits and the action range used.

Counted on the desired target of every ``policy`` tick (what the policy asked for, blended in
during the entry blend), over the whole run (every hand-over to the policy adds to it), so a user
sees how close a policy comes to its joints' limits before it meets one: per joint, the furthest
target past a limit, the time spent asking for one, and the largest share of the action range
(``|target - default| / (action_clip × action_scale)``) used. It also says which joints have asked
for a target past their limit for longer than a landing does (:attr:`PolicyTargetStats.sustained`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["PolicyTargetStats"]


class PolicyTargetStats:
    """Per-joint accumulators, allocation-free per tick.

    Args:
        lower: Lower joint limits (rad, hardware order).
        upper: Upper joint limits (rad, hardware order).
        default: Default joint angles (rad, hardware order): the centre of the action range.
        half_range_rad: Half the action range per joint (action clip × action scale, rad).
        joint_names: Hardware-order names.
        sustained_after_s: A joint past its limit for longer than this, without a break, is
            :attr:`sustained`; None: never.
    """

    def __init__(self, lower: np.ndarray, upper: np.ndarray, default: np.ndarray,
                 half_range_rad: np.ndarray, joint_names: tuple[str, ...],
                 sustained_after_s: float | None = None) -> None:
        self._lower = np.array(lower, dtype=np.float64)
        self._upper = np.array(upper, dtype=np.float64)
        self._default = np.array(default, dtype=np.float64)
        self._half_range = np.array(half_range_rad, dtype=np.float64)
        self._names = tuple(joint_names)
        self._sustained_after_ns = (None if sustained_after_s is None
                                    else int(sustained_after_s * 1e9))
        n = len(self._names)
        self._past = np.zeros(n)
        self._work = np.zeros(n)
        self._past_mask = np.zeros(n, dtype=bool)  # this tick's target is past a limit
        self._interval = np.zeros(n, dtype=np.int64)
        self.furthest_past_rad = np.zeros(n)
        self.past_ns = np.zeros(n, dtype=np.int64)
        self.past_ticks = np.zeros(n, dtype=np.int64)
        self.max_deviation_rad = np.zeros(n)
        self.streak_ns = np.zeros(n, dtype=np.int64)  # time past the limit without a break
        self.sustained = np.zeros(n, dtype=bool)
        self._previous_ns: int | None = None

    def end_of_streak(self, now_ns: int) -> None:
        """The policy stopped driving (a mode transition at ``now_ns``): the last target's time
        counts up to it, and the next tick starts afresh."""
        self._credit(now_ns)
        self._previous_ns = None
        self._past_mask[...] = False
        self.streak_ns[...] = 0
        self.sustained[...] = False

    def _credit(self, now_ns: int) -> None:
        """The previous tick's target held from then to ``now_ns``: count it where it was past."""
        if self._previous_ns is None or not self._past_mask.any():
            return
        np.multiply(self._past_mask, now_ns - self._previous_ns, out=self._interval)
        np.add(self.past_ns, self._interval, out=self.past_ns)
        np.add(self.streak_ns, self._interval, out=self.streak_ns)

    def add(self, now_ns: int, desired: np.ndarray) -> bool:
        """Count one ``policy`` tick's desired target (rad, hardware order, finite).

        Returns:
            True when some joint's target has been past its limit for longer than
            ``sustained_after_s`` (see :attr:`sustained`).
        """
        self._credit(now_ns)
        self._previous_ns = now_ns
        np.subtract(self._lower, desired, out=self._past)
        np.subtract(desired, self._upper, out=self._work)
        np.maximum(self._past, self._work, out=self._past)
        np.maximum(self.furthest_past_rad, self._past, out=self.furthest_past_rad)
        np.greater(self._past, 0.0, out=self._past_mask)
        np.subtract(desired, self._default, out=self._work)
        np.abs(self._work, out=self._work)
        np.maximum(self.max_deviation_rad, self._work, out=self.max_deviation_rad)
        if not self._past_mask.any():
            if self.streak_ns.any():
                self.streak_ns[...] = 0
                self.sustained[...] = False
            return False
        np.add(self.past_ticks, self._past_mask, out=self.past_ticks)
        np.multiply(self.streak_ns, self._past_mask, out=self.streak_ns)  # a break resets
        if self._sustained_after_ns is None:
            return False
        np.greater(self.streak_ns, self._sustained_after_ns, out=self.sustained)
        return bool(self.sustained.any())

    def report(self) -> dict[str, Any]:
        """Per joint (hardware order): ``furthest_past_limit_rad``, ``time_past_limit_s``,
        ``ticks_past_limit``, ``action_range_used`` (share, 0..1 inside the range); and the
        joint that went furthest past its limit and the largest share used, over all joints."""
        used = self.max_deviation_rad / self._half_range
        joints = {name: {"furthest_past_limit_rad": float(self.furthest_past_rad[i]),
                         "time_past_limit_s": float(self.past_ns[i]) * 1e-9,
                         "ticks_past_limit": int(self.past_ticks[i]),
                         "action_range_used": float(used[i])}
                  for i, name in enumerate(self._names)}
        worst = int(np.argmax(self.furthest_past_rad))
        busiest = int(np.argmax(used))
        return {"joints": joints,
                "furthest_past_limit": {"joint": self._names[worst],
                                        "rad": float(self.furthest_past_rad[worst])},
                "most_action_range_used": {"joint": self._names[busiest],
                                           "share": float(used[busiest])}}

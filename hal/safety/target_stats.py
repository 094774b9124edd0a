"""How hard the policy drives each joint: targets past the joint limits and the action range used.

Counted on the desired target of every ``policy`` tick (what the policy asked for, blended in
during the entry blend), so a user sees how close a policy comes to its joints' limits before it
meets one: per joint, the furthest target past a limit, the time spent asking for one, and the
largest share of the action range (``|target - default| / (action_clip × action_scale)``) used.
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
    """

    def __init__(self, lower: np.ndarray, upper: np.ndarray, default: np.ndarray,
                 half_range_rad: np.ndarray, joint_names: tuple[str, ...]) -> None:
        self._lower = np.array(lower, dtype=np.float64)
        self._upper = np.array(upper, dtype=np.float64)
        self._default = np.array(default, dtype=np.float64)
        self._half_range = np.array(half_range_rad, dtype=np.float64)
        self._names = tuple(joint_names)
        n = len(self._names)
        self._past = np.zeros(n)
        self._above = np.zeros(n)
        self._past_mask = np.zeros(n, dtype=bool)
        self.furthest_past_rad = np.zeros(n)
        self.past_ns = np.zeros(n, dtype=np.int64)
        self.past_ticks = np.zeros(n, dtype=np.int64)
        self.max_deviation_rad = np.zeros(n)
        self._previous_ns: int | None = None

    def end_of_streak(self) -> None:
        """The policy stopped driving (a mode transition): the next tick starts a new interval."""
        self._previous_ns = None

    def add(self, now_ns: int, desired: np.ndarray) -> None:
        """Count one ``policy`` tick's desired target (rad, hardware order, finite)."""
        np.subtract(self._lower, desired, out=self._past)
        np.subtract(desired, self._upper, out=self._above)
        np.maximum(self._past, self._above, out=self._past)
        np.maximum(self.furthest_past_rad, self._past, out=self.furthest_past_rad)
        np.greater(self._past, 0.0, out=self._past_mask)
        if self._past_mask.any():
            self.past_ticks += self._past_mask
            if self._previous_ns is not None:
                np.add(self.past_ns, now_ns - self._previous_ns, out=self.past_ns,
                       where=self._past_mask)
        self._previous_ns = now_ns
        np.subtract(desired, self._default, out=self._above)
        np.abs(self._above, out=self._above)
        np.maximum(self.max_deviation_rad, self._above, out=self.max_deviation_rad)

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

"""A teacher's heading terms from goals (proprio [6:8]), as extreme-parkour computes them.

Training (``legged_robot.py``, ``_update_goals`` and ``compute_observations``): the direction to
the current goal and to the next one, ``atan2`` of the goal's position relative to the trunk in
the ground plane, minus the trunk's yaw, refreshed every 5 policy steps. Training leaves the
difference unwrapped; its robots started facing the course, so the value stayed within ±π. This
implementation wraps it into [-π, π) so that a heading across the ±π seam reads as the small turn
it is, and agrees with training wherever training's value was within ±π.
"""

from __future__ import annotations

import math

import numpy as np

from compute.parkour.observation import wrap_angle

__all__ = ["goal_heading_errors"]


def goal_heading_errors(base_xy: np.ndarray, yaw_rad: float, goal_xy: np.ndarray,
                        next_goal_xy: np.ndarray) -> tuple[float, float]:
    """(delta_yaw, delta_next_yaw): wrapped yaw errors (rad) to the current and next goal."""
    def towards(goal: np.ndarray) -> float:
        dx, dy = float(goal[0] - base_xy[0]), float(goal[1] - base_xy[1])
        return wrap_angle(math.atan2(dy, dx) - yaw_rad)

    return towards(goal_xy), towards(next_goal_xy)

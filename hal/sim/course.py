"""Goals and edges of a terrain course, measured as training measured them.

:class:`CourseTracker` is a server tick listener. Once per policy step of simulated time it runs
training's goal update (extreme-parkour's ``_update_goals``): the current goal counts as reached
once the trunk has been within ``next_goal_threshold`` (0.2 m, in the ground plane) of it for more
than ``reach_goal_delay`` (0.1 s) worth of policy steps, not necessarily in a row; then the next
goal becomes current. It also counts training's ``feet_at_edge``: a foot in contact (force above
2 N now or at the previous policy step, training's ``contact_filt``) whose nearest grid point is
on the terrain's edge mask; each foot on each policy step counts once.

``x_displacement`` is the farthest the trunk got along x after the hand-over, from where it was
then, over the rest of the course (to the last goal's x), at most 1.

:meth:`CourseTracker.targets` hands the policy side the trunk's position and the current and next
goals (the simulator only exposes positions; the heading terms are the policy's business,
:mod:`compute.parkour.goals`). Times are simulated seconds since the hand-over.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from hal.safety.events import Mode
from hal.sim.terrains.grid import Terrain

__all__ = ["CourseConfig", "CourseTracker"]


@dataclass(frozen=True)
class CourseConfig:
    """Training's goal settings (``env.next_goal_threshold``, ``env.reach_goal_delay``).

    Attributes:
        next_goal_threshold_m: a goal is being reached within this distance.
        reach_goal_delay_s: ... for more than this long (in policy steps).
        policy_dt_s: the policy step; goals update once per step.
        contact_threshold_n: a foot is in contact above this force (training: 2 N).
    """

    next_goal_threshold_m: float = 0.2
    reach_goal_delay_s: float = 0.1
    policy_dt_s: float = 0.02
    contact_threshold_n: float = 2.0

    def __post_init__(self) -> None:
        for name in ("next_goal_threshold_m", "policy_dt_s"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"CourseConfig.{name} must be positive, found "
                                 f"{getattr(self, name)}")
        if not (math.isfinite(self.reach_goal_delay_s) and self.reach_goal_delay_s >= 0):
            raise ValueError(f"CourseConfig.reach_goal_delay_s must be >= 0, found "
                             f"{self.reach_goal_delay_s}")


class CourseTracker:
    """Goals reached and edge violations on one course (see the module docstring).

    Args:
        world: the simulated world (``sim_time_s``, ``base_position_m``, ``foot_positions_m()``,
            ``contact_sample()``).
        terrain: the course.
        config: training's settings.
        on_done: called once, from the server thread, when the last goal is reached.
    """

    def __init__(self, world: Any, terrain: Terrain, config: CourseConfig | None = None,
                 on_done: Callable[[], None] | None = None) -> None:
        self.world = world
        self.terrain = terrain
        self.config = cfg = config or CourseConfig()
        self.goals = np.asarray(terrain.goals_m, dtype=np.float64)
        self.on_done = on_done
        self.index = 0
        self.timer_steps = 0
        self.delay_steps = cfg.reach_goal_delay_s / cfg.policy_dt_s
        self.goal_times_s: list[float] = []
        self.edge_violations = 0
        self.handover_s: float | None = None
        self.left_policy_s: float | None = None
        self.max_x_m = -math.inf
        self.start_x_m = 0.0
        self._edges = terrain.edge_mask()
        self._last_contact = np.zeros(0, dtype=bool)
        self._next_step_s = 0.0
        self._lock = threading.Lock()
        self._targets: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._publish(np.asarray(world.base_position_m[:2], dtype=np.float64))

    @property
    def done(self) -> bool:
        return self.index >= len(self.goals)

    def _goal(self, offset: int) -> np.ndarray:
        return self.goals[min(self.index + offset, len(self.goals) - 1)]

    def _publish(self, base_xy: np.ndarray) -> None:
        targets = (base_xy.copy(), self._goal(0).copy(), self._goal(1).copy())
        with self._lock:
            self._targets = targets

    def targets(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(trunk xy, current goal xy, next goal xy) in the world frame (any thread)."""
        with self._lock:
            return self._targets

    def update_goals(self, base_xy: np.ndarray, t_s: float) -> None:
        """One policy step of training's ``_update_goals``."""
        if self.done:
            return
        goal = self._goal(0)  # training tests the goal it gathered before this update
        if self.timer_steps > self.delay_steps + 1e-9:
            self.index += 1
            self.timer_steps = 0
            self.goal_times_s.append(round(t_s, 4))
            if self.done and self.on_done is not None:
                self.on_done()
        if float(np.hypot(*(base_xy - goal))) < self.config.next_goal_threshold_m:
            self.timer_steps += 1

    def count_edges(self, feet_xy: np.ndarray, forces_n: np.ndarray) -> int:
        """One policy step of training's ``feet_at_edge``; returns the feet counted."""
        contact = forces_n > self.config.contact_threshold_n
        if self._last_contact.shape != contact.shape:
            self._last_contact = np.zeros_like(contact)
        filtered = contact | self._last_contact
        self._last_contact = contact
        count = 0
        for (x, y), touching in zip(feet_xy, filtered):
            index = self.terrain.grid_index(float(x), float(y))
            if touching and index is not None and self._edges[index]:
                count += 1
        self.edge_violations += count
        return count

    def __call__(self, record: Any) -> None:
        world = self.world
        if self.handover_s is None:
            if record.safety_mode is not Mode.POLICY:
                self._publish(np.asarray(world.base_position_m[:2], dtype=np.float64))
                return
            self.handover_s = world.sim_time_s
            self._next_step_s = world.sim_time_s
            self.start_x_m = float(world.base_position_m[0])
        now = world.sim_time_s
        if record.safety_mode is not Mode.POLICY and self.left_policy_s is None and not self.done:
            self.left_policy_s = round(now - self.handover_s, 4)
        if now + 1e-9 < self._next_step_s:
            return
        self._next_step_s += self.config.policy_dt_s * (
            1 + int((now - self._next_step_s) / self.config.policy_dt_s + 1e-9))
        base_xy = np.asarray(world.base_position_m[:2], dtype=np.float64)
        self.max_x_m = max(self.max_x_m, float(base_xy[0]))
        self.update_goals(base_xy, now - self.handover_s)
        self.count_edges(world.foot_positions_m()[:, :2], world.contact_sample().force_n)
        self._publish(base_xy)

    def report(self) -> dict[str, Any]:
        """The course's part of the report's ``sim`` section."""
        total = len(self.goals)
        # distance along the course from where the policy took over, over what was left of it
        length = self.terrain.course_length_m - self.start_x_m
        progress_x = 0.0
        if length > 0 and self.handover_s is not None:
            progress_x = max(self.max_x_m - self.start_x_m, 0.0) / length
        return {"course": self.terrain.describe(), "goals_total": total,
                "goals_reached": min(self.index, total), "goal_times_s": list(self.goal_times_s),
                "edge_violations": self.edge_violations, "left_policy_s": self.left_policy_s,
                "x_displacement": min(progress_x, 1.0)}

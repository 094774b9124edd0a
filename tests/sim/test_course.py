"""Goals reached and edge violations, as extreme-parkour's ``_update_goals`` and
``feet_at_edge`` count them, on hand-placed positions."""

from __future__ import annotations

import numpy as np
import pytest

from hal.sim.course import CourseConfig, CourseTracker
from hal.sim.terrains.grid import Terrain


class _Still:
    """The world as far as the tracker reads it at construction."""

    base_position_m = np.zeros(3)


def _terrain() -> Terrain:
    heights = np.zeros((40, 20))
    heights[20:, :] = 0.3  # a 0.3 m step between grid points 19 and 20 (x = 0.95 → 1.0 m)
    return Terrain(kind="file", difficulty=0.0, heights_m=heights, origin_m=(0.0, -0.5),
                   goals_m=np.array([[1.0, 0.0], [1.5, 0.0]]))


def test_a_goal_is_reached_after_the_delay_inside_the_radius_only():
    course = CourseTracker(_Still(), _terrain(), CourseConfig())
    inside = np.array([1.0, 0.19])  # 0.19 m from the first goal: inside 0.2 m
    # training: the timer counts steps inside; the goal advances on the step that finds it above
    # reach_goal_delay / dt = 0.1 / 0.02 = 5, i.e. on the 7th step
    for step in range(1, 7):
        course.update_goals(inside, 0.02 * step)
        assert course.index == 0
    course.update_goals(inside, 0.14)
    assert course.index == 1 and course.goal_times_s == [0.14]

    outside = CourseTracker(_Still(), _terrain(), CourseConfig())
    for step in range(50):
        outside.update_goals(np.array([1.0, 0.21]), 0.02 * step)  # 0.21 m: never
    assert outside.index == 0


def test_the_timer_keeps_counting_across_a_step_outside():
    course = CourseTracker(_Still(), _terrain(), CourseConfig())
    for xy in ([1.0, 0.0],) * 3 + ([1.0, 0.5],) + ([1.0, 0.0],) * 4:
        course.update_goals(np.array(xy), 0.0)
    assert course.index == 1  # 6 steps inside, not in a row: advanced on the 8th update


def test_edge_violation_on_a_hand_placed_foot():
    course = CourseTracker(_Still(), _terrain(), CourseConfig())
    # x_edge_mask: the lower point before the rise (19, x = 0.95 m) widened by one point: 18..20
    feet = np.array([[0.95, 0.0], [0.90, 0.1], [0.5, 0.0], [1.6, 0.0]])
    assert course.count_edges(feet, np.array([30.0, 30.0, 30.0, 30.0])) == 2
    # off the ground now but in contact on the previous step: training's contact filter counts it
    assert course.count_edges(feet, np.array([0.0, 1.0, 30.0, 30.0])) == 2
    assert course.count_edges(feet, np.array([0.0, 1.0, 30.0, 30.0])) == 0
    assert course.count_edges(np.array([[0.849, 0.0]] * 4), np.full(4, 30.0)) == 0  # point 17
    assert course.edge_violations == 4


def test_course_config_refuses_bad_values():
    with pytest.raises(ValueError, match="next_goal_threshold_m"):
        CourseConfig(next_goal_threshold_m=0.0)


def test_a_fall_is_low_against_the_ground_around_the_trunk():
    """On a terrain the height limit counts from the highest ground within 0.3 m: a trunk down
    in a gap falls, one standing on a low step does not."""
    from hal.safety.events import Mode
    from hal.sim.ground_truth import GroundTruthTracker

    heights = np.zeros((80, 20))
    heights[40:, :] = -1.0  # a 1 m drop at x = 2.0 m
    heights[60:64, :] = -3.0  # and a gap in the lower level (x 3.0 .. 3.15 m)
    terrain = Terrain(kind="file", difficulty=0.0, heights_m=heights, origin_m=(0.0, -0.5),
                      goals_m=np.array([[1.0, 0.0]]))

    class World:
        sim_time_s = 0.0
        base_position_m = np.array([2.8, 0.0, -0.72])  # 0.28 m above the lower level
        base_quaternion_wxyz = np.array([1.0, 0.0, 0.0, 0.0])

    world = World()
    world.terrain = terrain

    class Record:
        safety_mode = Mode.POLICY

    tracker = GroundTruthTracker(world)
    tracker(Record())
    assert tracker.falls == []  # absolute z -0.72 is far below 0.12: not a fall here
    world.sim_time_s, world.base_position_m = 0.02, np.array([3.07, 0.0, -1.2])  # in the gap
    tracker(Record())
    assert [f["kind"] for f in tracker.falls] == ["height"]
    assert tracker.falls[0]["value"] == pytest.approx(-0.2)


def test_x_displacement_counts_from_the_hand_over():
    from types import SimpleNamespace

    from hal.safety.events import Mode

    class World:
        sim_time_s = 0.0
        base_position_m = np.array([0.3, 0.0, 0.3])

        def foot_positions_m(self):
            return np.zeros((4, 3))

        def contact_sample(self):
            return SimpleNamespace(force_n=np.zeros(4))

    world = World()
    course = CourseTracker(world, _terrain(), CourseConfig())  # last goal at x = 1.5 m
    course(SimpleNamespace(safety_mode=Mode.POLICY))  # hand-over at x = 0.3
    world.sim_time_s, world.base_position_m = 0.02, np.array([0.9, 0.0, 0.3])
    course(SimpleNamespace(safety_mode=Mode.POLICY))
    assert course.report()["x_displacement"] == pytest.approx(0.6 / 1.2)

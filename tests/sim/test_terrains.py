"""Training's terrains: sizes against extreme-parkour's formulas (values worked out by hand from
``legged_gym/utils/terrain.py``), the course file, and the simulator seeing the same ground."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hal.sim.terrains import (
    TERRAIN_TYPES,
    CourseFileError,
    build_terrain,
    load_course,
    parse_scene,
    x_edge_mask,
)

CELL = 0.05


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of each run of True."""
    runs, start = [], None
    for i, v in enumerate(list(mask) + [False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            runs.append((start, i - start))
            start = None
    return runs


# gap_size = 0.1 + 0.7 d -> round(/0.05) cells, cut as [x - g//2, x + g//2): 2·(g//2) cells
@pytest.mark.parametrize("difficulty, gap_m", [(0.0, 0.10), (0.5, 0.40), (1.0, 0.80)])
def test_gap_lengths(difficulty, gap_m):
    t = build_terrain("gap", difficulty, seed=3, roughness=False)
    full_rows = np.all(t.heights_m[:, 2:-2] <= -0.2 + 1e-9, axis=1)  # every point of the row a pit
    runs = _runs(full_rows)
    assert len(runs) == 6
    assert all(abs(n * CELL - gap_m) < 1e-9 for _, n in runs), runs
    assert 0.2 <= -t.heights_m.min() <= 1.0  # gap depth drawn in [0.2, 1] m


# hurdles: height in [0.1 + 0.1 d, 0.15 + 0.25 d) m, 0.1 + 0.3 d m deep (2·(n//2) cells)
@pytest.mark.parametrize("difficulty, low, high, depth_cells", [
    (0.0, 0.10, 0.15, 2), (0.5, 0.15, 0.275, 4), (1.0, 0.20, 0.40, 8)])
def test_hurdle_heights(difficulty, low, high, depth_cells):
    t = build_terrain("hurdle", difficulty, seed=5, roughness=False)
    centre = t.heights_m[:, t.heights_m.shape[1] // 2]  # the band always covers the centre line
    runs = _runs(centre > 0.0)
    assert len(runs) == 6
    for start, n in runs:
        height = centre[start]
        assert n == depth_cells
        assert low - 1e-9 <= height < high - 1e-9
        assert abs(height / 0.005 - round(height / 0.005)) < 1e-6


# step_height = 0.1 + 0.35 d, in 0.005 m units; levels 1, 2, 3, 3, 2, 1 steps
@pytest.mark.parametrize("difficulty, step_m", [(0.0, 0.10), (0.5, 0.275), (1.0, 0.45)])
def test_step_levels_at_goals(difficulty, step_m):
    t = build_terrain("step", difficulty, seed=11, roughness=False)
    levels = [t.height_at(x, y) for x, y in t.goals_m[1:-1]]
    assert levels == pytest.approx([step_m * k for k in (1, 2, 3, 3, 2, 1)], abs=1e-9)
    assert t.height_at(*t.goals_m[0]) == 0.0


@pytest.mark.parametrize("difficulty", [0.0, 0.6, 1.0])
def test_stones_incline_and_pit(difficulty):
    t = build_terrain("stones", difficulty, seed=2, roughness=False)
    incline = round(0.25 * difficulty / 0.005) * 0.005
    last = round((0.25 * difficulty + 0.1 - 0.1 * difficulty) / 0.005) * 0.005
    for k, (x, y) in enumerate(t.goals_m[1:-1]):
        i, j = t.grid_index(x, y)
        across = t.heights_m[i, j - 10:j + 10]  # the stone's 1 m width: linspace(-a, a, 20)
        expected = last if k == 5 else incline
        assert across.max() - across.min() == pytest.approx(2 * expected, abs=1e-9)
    last_stone = t.grid_index(*t.goals_m[-2])[0]
    pit = t.heights_m[60:last_stone, 2:8]  # beside the stones, past the run-up: the pit
    assert np.all(pit <= -0.2 + 1e-9) and np.all(pit >= -1.0 - 1e-9)


@pytest.mark.parametrize("difficulty, step_m", [(0.0, 0.02), (0.5, 0.09), (1.0, 0.16)])
def test_stairs(difficulty, step_m):
    up = build_terrain("stairs_up", difficulty, seed=0, roughness=False)
    down = build_terrain("stairs_down", difficulty, seed=0, roughness=False)
    for k in range(12):
        x = 2.5 - 1.0 + k * 0.30 + 0.15  # grid starts 1 m behind the robot; steps 6 cells deep
        assert up.height_at(x, 0.3) == pytest.approx((k + 1) * step_m, abs=1e-9)
        assert down.height_at(x, -0.3) == pytest.approx(-(k + 1) * step_m, abs=1e-9)


@pytest.mark.parametrize("difficulty", [0.25, 1.0])
def test_slope_gradient(difficulty):
    t = build_terrain("slope", difficulty, seed=0, roughness=False)
    x0 = 2.5 - 1.0  # world x where the run-up ends
    assert t.height_at(x0 + 2.0, 0.0) == pytest.approx(round(0.8 * difficulty / 0.005) * 0.005)
    assert t.height_at(x0 + 5.0, 0.0) == pytest.approx(round(1.6 * difficulty / 0.005) * 0.005)
    assert t.height_at(x0 + 12.0, 0.0) == pytest.approx(0.0)


@pytest.mark.parametrize("kind", ["rough", "gap"])
def test_roughness_is_training_s(kind):
    smooth = build_terrain(kind, 0.5, seed=4, roughness=False)
    rough = build_terrain(kind, 0.5, seed=4)
    noise = rough.heights_m - smooth.heights_m
    top = 0.02 + 0.04 * (0.5 if kind == "rough" else 1.0)
    assert np.abs(noise).max() <= top + 1e-9 and np.abs(noise).max() > 0
    assert np.allclose(noise / 0.005, np.round(noise / 0.005))


def test_every_type_has_eight_goals_ahead_and_flat_is_flat():
    for kind in TERRAIN_TYPES:
        t = build_terrain(kind, 0.5, seed=1)
        assert t.goals_m.shape == (8, 2)
        assert np.all(np.diff(t.goals_m[:, 0]) > 0), kind
        assert t.goals_m[0, 0] > 0
    assert not build_terrain("flat", 1.0).heights_m.any()


def test_same_seed_same_terrain_other_seed_other():
    a, b = build_terrain("gap", 0.7, seed=9), build_terrain("gap", 0.7, seed=9)
    assert np.array_equal(a.heights_m, b.heights_m) and np.array_equal(a.goals_m, b.goals_m)
    assert not np.array_equal(a.heights_m, build_terrain("gap", 0.7, seed=10).heights_m)


def test_edge_mask_marks_the_lower_side_widened_by_one_point():
    h = np.zeros((10, 1))
    h[5:] = 0.2  # a 0.2 m rise between points 4 and 5 (> 1.5 · 0.05)
    h[8:] = 0.25  # 0.05 m: not an edge
    assert np.flatnonzero(x_edge_mask(h)[:, 0]).tolist() == [3, 4, 5]


def test_scene_argument():
    assert parse_scene("gap") == ("gap", None)
    assert parse_scene("step:0.25") == ("step", 0.25)
    assert parse_scene("parkour") == ("parkour", None)
    for bad, match in [("gap:1.5", "difficulty"), ("gap:x", "not a number"),
                       ("moon", "valid scenes"), ("parkour:0.3", "legacy")]:
        with pytest.raises(ValueError, match=match):
            parse_scene(bad)


def test_course_file(tmp_path):
    (tmp_path / "c.toml").write_text(
        'length_m = 6.0\nwidth_m = 2.0\ngoals = [[2.0, 0.0], [4.5, 0.2]]\n'
        '[[box]]\nx = [1.0, 1.8]\nheight = 0.15\n[[box]]\nx = [2.5, 3.0]\ny = [-0.5, 0.5]\n'
        'height = -0.4\n')
    t = load_course(tmp_path / "c.toml")
    assert t.height_at(1.4, 0.9) == pytest.approx(0.15)
    assert t.height_at(2.75, 0.0) == pytest.approx(-0.4)
    assert t.height_at(2.75, 0.9) == 0.0
    assert t.goals_m.tolist() == [[2.0, 0.0], [4.5, 0.2]]
    (tmp_path / "bad.toml").write_text('length_m = 6.0\ngoals = [[1, 0]]\n[[box]]\nx = [2, 1]\n'
                                       'height = 0.1\n')
    with pytest.raises(CourseFileError, match=r"box 1: 'x' must be \[low, high\]"):
        load_course(tmp_path / "bad.toml")
    (tmp_path / "nogoal.toml").write_text('length_m = 6.0\n')
    with pytest.raises(CourseFileError, match="'goals'"):
        load_course(tmp_path / "nogoal.toml")


def test_the_simulator_sees_the_terrain(go2):
    """The scan, the depth camera and the physics read the same ground as the grid."""
    from hal.sim import MujocoWorld, MujocoWorldConfig
    from hal.sim.ground_truth import euler_zyx

    world = MujocoWorld(go2, MujocoWorldConfig(scene="step:1", camera_fps=30, settle_s=0.5,
                                               terrain_roughness=False))
    terrain = world.terrain
    base = world.base_position_m
    yaw = euler_zyx(world.base_quaternion_wxyz)[2]
    # scan points (yaw-aligned base frame) over the run-up and over the first step
    first_step_x = terrain.origin_m[0] + 50 * CELL + 0.1  # the first step begins at cell 50
    points = np.array([[0.0, 0.0], [first_step_x - base[0], 0.0]])
    out = np.empty(2)
    world.height_scan(points, out)
    expected = [terrain.height_at(base[0] + math.cos(yaw) * px, base[1] + math.sin(yaw) * px)
                for px, _ in points]
    assert expected[1] == pytest.approx(0.45)
    assert out == pytest.approx(base[2] - np.array(expected), abs=1e-6)
    # the robot rests on the run-up (its feet on the height field, not fallen through)
    assert 0.2 < base[2] - expected[0] < 0.4
    # the depth camera sees the 0.45 m step as nearer than flat ground would be
    flat = MujocoWorld(go2, MujocoWorldConfig(scene="flat", camera_fps=30, settle_s=0.5))
    frame, flat_frame = np.empty(world._raycaster.frame_shape, np.float32), \
        np.empty(flat._raycaster.frame_shape, np.float32)
    world.read_depth_into(frame)
    flat.read_depth_into(flat_frame)
    assert np.isfinite(frame).mean() > 0.5
    assert np.nanmedian(frame[:10]) < np.nanmedian(flat_frame[:10])


def test_foxglove_terrain_cubes_cover_the_grid():
    from hal.sim.foxglove_scene import terrain_cubes

    t = build_terrain("step", 1.0, seed=1, roughness=False)
    cubes = terrain_cubes(t)
    # runs of equal height merged: a handful of cubes per 0.1 m strip, not one per point
    assert len(cubes) < 40 * 12
    # every strip's cubes together span the grid's length; tops are the grid's heights
    strip = [(centre, size) for centre, size in cubes
             if abs(centre[1] - (t.origin_m[1] + 2.0)) < 1e-9]
    assert sum(size[0] for _, size in strip) == pytest.approx(180 * 0.1)
    tops = sorted({round(centre[2] + size[2] / 2, 3) for centre, size in strip})
    assert tops == [0.0, 0.45, 0.9, 1.35]


def test_surface_and_rays_against_the_grid():
    """The ray caster's surface is the height field's: grid points exact, the floor outside, and
    a ray cast straight down from above a point stops at that point's height."""
    from hal.sim.terrains.raycast import TerrainRaycaster

    t = build_terrain("step", 1.0, seed=1, roughness=False)
    rays = TerrainRaycaster(t)
    x0, y0 = t.origin_m
    xs = x0 + np.array([0, 55, 100, 359]) * CELL
    ys = y0 + np.array([0, 40, 79, 10]) * CELL
    np.testing.assert_allclose(rays.surface(xs, ys), [t.heights_m[i, j] for i, j in
                                                      zip([0, 55, 100, 359], [0, 40, 79, 10])])
    assert rays.surface(np.array([x0 - 1.0]), np.array([0.0]))[0] == t.floor_z_m
    down = np.array([[0.0, 0.0, -1.0], [0.3, 0.0, -1.0]])
    hit = rays.cast(np.array([xs[1], ys[1], 3.0]), down, 10.0)
    assert hit[0] == pytest.approx(3.0 - t.heights_m[55, 40], abs=1e-3)
    # the slanted ray meets the ground where its own (x, y) has the surface's height
    point = np.array([xs[1], ys[1], 3.0]) + hit[1] * down[1]
    assert point[2] == pytest.approx(rays.surface(point[:1], point[1:2])[0], abs=2e-3)

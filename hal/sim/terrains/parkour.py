"""Training's parkour terrains: ``gap``, ``hurdle``, ``step`` and ``stones``.

Each follows the generator of extreme-parkour (``legged_gym/utils/terrain.py``) with its
difficulty formulas, on a grid of ``LENGTH_M`` × ``WIDTH_M`` (training's ``terrain_length`` and
``terrain_width``), in training's integer units (cells of 0.05 m, heights in 0.005 m), with
``NUM_GOALS`` goals: one before the first obstacle, one per obstacle, one after the last.

==========  ====================================================================================
terrain     sizes (d = difficulty in [0, 1])
==========  ====================================================================================
gap         6 gaps of 0.1 + 0.7·d m across the course, 0.2–1 m deep, every 0.8–1.5 m plus the
            gap; the way on between them is 1.2–2.4 m wide, shifted by up to ±0.4 m
hurdle      6 hurdles 0.1 + 0.3·d m deep and 0.1 + 0.1·d … 0.15 + 0.25·d m high, 1.2–2.2 m
            apart, 0.8–1.6 m wide, shifted by up to ±0.4 m
step        6 steps of 0.1 + 0.35·d m: three up, one level, two down; each 0.3–1.5 m (+ the
            step height) deep
stones      training's "parkour": 6 inclined stones over a 0.2–1 m pit, alternately left and
            right by 0.2 … 0.3 + 0.1·d m, 0.9 − 0.3·d … 1 − 0.2·d m long, tilted by ±0.25·d m
            across their 1 m width (the last one 1.6 m long, tilted by 0.1 + 0.15·d m)
==========  ====================================================================================

The robot starts 1 m into the grid, on its centre line (training's ``env_origin``), which is
the world origin; the grid spans world x from -1 m.
"""

from __future__ import annotations

import numpy as np

from hal.sim.terrains.grid import CELL_M, VERTICAL_STEP_M

__all__ = ["LENGTH_M", "WIDTH_M", "NUM_GOALS", "START_OFFSET_M", "PLATFORM_M", "Draw",
           "gap_terrain", "hurdle_terrain", "step_terrain", "stones_terrain"]

LENGTH_M = 18.0
WIDTH_M = 4.0
NUM_GOALS = 8
START_OFFSET_M = 1.0
"""The robot starts this far into the grid (training's ``env_origin_x = i·length + 1``)."""
PLATFORM_M = 2.5
"""The flat run-up at the start of every parkour terrain."""
Y_RANGE_M = (-0.4, 0.4)
"""Training's ``terrain.y_range``: how far the way on shifts sideways."""


class Draw:
    """A grid in training's integer units and the random draws that shape it."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.nx = int(LENGTH_M / CELL_M)
        self.ny = int(WIDTH_M / CELL_M)
        self.raw = np.zeros((self.nx, self.ny), dtype=np.int64)
        self.mid_y = self.ny // 2
        self.goals = np.zeros((NUM_GOALS, 2))

    @staticmethod
    def cells(metres: float) -> int:
        return round(metres / CELL_M)

    @staticmethod
    def steps(metres: float) -> int:
        return round(metres / VERTICAL_STEP_M)

    def randint(self, low: int, high: int) -> int:
        """An integer in [low, high) (numpy's ``randint``)."""
        return int(self.rng.integers(low, high))

    def uniform(self, low: float, high: float) -> float:
        return float(self.rng.uniform(low, high))

    def heights_m(self) -> np.ndarray:
        return self.raw.astype(np.float64) * VERTICAL_STEP_M

    def pad_edges(self) -> None:
        """Training's edge pad: the grid's outer ring of points at height 0 (pad_height 0)."""
        pad = int(0.1 // CELL_M)
        self.raw[:pad, :] = self.raw[-pad:, :] = 0
        self.raw[:, :pad] = self.raw[:, -pad:] = 0


def _outside_band(draw: Draw, x0: int, x1: int, shift: int, half_width: int, value: int) -> None:
    """Rows [x0, x1) beyond ``half_width`` cells of the shifted centre line get ``value``."""
    left = max(draw.mid_y + shift - half_width, 0)
    right = max(draw.mid_y + shift + half_width, 0)
    draw.raw[x0:x1, :left] = value
    draw.raw[x0:x1, right:] = value


def _final_goal(draw: Draw, dis_x: int, low: int, high: int) -> None:
    final = dis_x + draw.randint(low, high)
    if final > draw.nx:
        final = draw.nx - int(0.5 // CELL_M)  # training's "width - 0.5 // scale"
    draw.goals[-1] = [final, draw.mid_y]


def gap_terrain(draw: Draw, difficulty: float) -> dict:
    """Training's ``parkour_gap_terrain`` with gap_size = 0.1 + 0.7·d."""
    gap_m = 0.1 + 0.7 * difficulty
    depth = -draw.steps(draw.uniform(0.2, 1.0))
    half_width = draw.cells(draw.uniform(0.6, 1.2))
    platform = draw.cells(PLATFORM_M)
    gap = draw.cells(gap_m)
    x_min, x_max = draw.cells(0.8) + gap, draw.cells(1.5) + gap
    y_min, y_max = draw.cells(Y_RANGE_M[0]), draw.cells(Y_RANGE_M[1])
    dis_x = last = platform
    draw.goals[0] = [platform - 1, draw.mid_y]
    for i in range(NUM_GOALS - 2):
        step_x = draw.randint(x_min, x_max)
        dis_x += step_x
        shift = draw.randint(y_min, y_max)
        draw.raw[dis_x - gap // 2: dis_x + gap // 2, :] = depth
        _outside_band(draw, last, dis_x, shift, half_width, depth)
        last = dis_x
        draw.goals[i + 1] = [dis_x - step_x // 2, draw.mid_y + shift]
    _final_goal(draw, dis_x, x_min, x_max)
    return {"gap_m": gap_m, "gap_cells": 2 * (gap // 2), "depth_m": -depth * VERTICAL_STEP_M,
            "half_valid_width_m": half_width * CELL_M}


def hurdle_terrain(draw: Draw, difficulty: float) -> dict:
    """Training's ``parkour_hurdle_terrain``: hurdles 0.1 + 0.1·d … 0.15 + 0.25·d m high."""
    low_m, high_m = 0.1 + 0.1 * difficulty, 0.15 + 0.25 * difficulty
    depth_m = 0.1 + 0.3 * difficulty
    x_min, x_max = draw.cells(1.2), draw.cells(2.2)
    y_min, y_max = draw.cells(Y_RANGE_M[0]), draw.cells(Y_RANGE_M[1])
    half_width = draw.cells(draw.uniform(0.4, 0.8))
    h_min, h_max = draw.steps(low_m), draw.steps(high_m)
    platform = draw.cells(PLATFORM_M)
    depth = draw.cells(depth_m)
    dis_x = platform
    draw.goals[0] = [platform - 1, draw.mid_y]
    heights = []
    for i in range(NUM_GOALS - 2):
        step_x = draw.randint(x_min, x_max)
        shift = draw.randint(y_min, y_max)
        dis_x += step_x
        height = draw.randint(h_min, h_max)
        heights.append(height * VERTICAL_STEP_M)
        rows = slice(dis_x - depth // 2, dis_x + depth // 2)
        draw.raw[rows, :] = height
        _outside_band(draw, rows.start, rows.stop, shift, half_width, 0)
        draw.goals[i + 1] = [dis_x - step_x // 2, draw.mid_y + shift]
    _final_goal(draw, dis_x, x_min, x_max)
    return {"hurdle_height_range_m": [low_m, high_m], "hurdle_heights_m": heights,
            "hurdle_depth_m": 2 * (depth // 2) * CELL_M, "half_valid_width_m": half_width * CELL_M}


def step_terrain(draw: Draw, difficulty: float) -> dict:
    """Training's ``parkour_step_terrain`` with step_height = 0.1 + 0.35·d."""
    step_m = 0.1 + 0.35 * difficulty
    x_min, x_max = draw.cells(0.3 + step_m), draw.cells(1.5 + step_m)
    y_min, y_max = draw.cells(Y_RANGE_M[0]), draw.cells(Y_RANGE_M[1])
    step = draw.steps(step_m)
    half_width = draw.cells(draw.uniform(0.5, 1.0))
    platform = draw.cells(PLATFORM_M)
    dis_x = last = platform
    level = 0
    draw.goals[0] = [platform - draw.cells(1.0), draw.mid_y]
    n = NUM_GOALS - 2
    for i in range(n):
        step_x = draw.randint(x_min, x_max)
        shift = draw.randint(y_min, y_max)
        if i < n // 2:
            level += step
        elif i > n // 2:
            level -= step
        draw.raw[dis_x: dis_x + step_x, :] = level
        dis_x += step_x
        _outside_band(draw, last, dis_x, shift, half_width, 0)
        last = dis_x
        draw.goals[i + 1] = [dis_x - step_x // 2, draw.mid_y + shift]
    _final_goal(draw, dis_x, x_min, x_max)
    return {"step_height_m": step * VERTICAL_STEP_M, "half_valid_width_m": half_width * CELL_M}


def stones_terrain(draw: Draw, difficulty: float) -> dict:
    """Training's ``parkour_terrain`` (its "parkour" type): inclined stones over a pit."""
    d = difficulty
    x_range = (-0.1, 0.1 + 0.3 * d)
    y_range = (0.2, 0.3 + 0.1 * d)
    incline_m = 0.25 * d
    last_incline_m = incline_m + 0.1 - 0.1 * d
    pit = -draw.steps(draw.uniform(0.2, 1.0))
    draw.raw[:] = pit
    stone_len_m = 2 * round(draw.uniform(0.9 - 0.3 * d, 1.0 - 0.2 * d) / 2.0, 1)
    stone = draw.cells(stone_len_m)
    x_min, x_max = stone + draw.cells(x_range[0]), stone + draw.cells(x_range[1])
    y_min, y_max = draw.cells(y_range[0]), draw.cells(y_range[1])
    platform = draw.cells(PLATFORM_M)
    draw.raw[:platform, :] = 0
    width = draw.cells(1.0)
    last_len = draw.cells(1.6)
    incline, last_incline = draw.steps(incline_m), draw.steps(last_incline_m)
    dis_x = platform - draw.randint(x_min, x_max) + stone // 2
    draw.goals[0] = [platform - stone // 2, draw.mid_y]
    flag = draw.randint(0, 2)
    n = NUM_GOALS - 2
    for i in range(n):
        dis_x += draw.randint(x_min, x_max)
        side = round(2 * (flag - 0.5))
        dis_y = draw.mid_y + side * draw.randint(y_min, y_max)
        length, tilt = (stone, incline) if i < n - 1 else (last_len, last_incline)
        if i == n - 1:
            dis_x += last_len // 4
        across = (np.linspace(-tilt, tilt, width) * side).astype(np.int64)  # truncated, as trained
        draw.raw[dis_x - length // 2: dis_x + length // 2,
                 dis_y - width // 2: dis_y + width // 2] = across[None, :]
        draw.goals[i + 1] = [dis_x, dis_y]
        flag = 1 - flag
    final = dis_x + 2 * draw.randint(x_min, x_max)
    draw.raw[dis_x + last_len // 2 + 1:, :] = 0
    draw.goals[-1] = [final, draw.mid_y]
    return {"stone_length_m": stone * CELL_M, "incline_m": incline * VERTICAL_STEP_M,
            "last_incline_m": last_incline * VERTICAL_STEP_M, "pit_depth_m": -pit * VERTICAL_STEP_M}

"""Training's classic terrains as straight courses: ``flat``, ``rough``, ``slope``,
``stairs_up`` and ``stairs_down``, and training's roughness.

Training built these as pyramids around a 3 m platform (isaacgym's ``pyramid_sloped_terrain`` and
``pyramid_stairs_terrain``) without goals. Here each is a straight course along x with training's
sizes, after the same 2.5 m run-up as the parkour terrains, and ``NUM_GOALS`` goals evenly spaced
on its centre line from the end of the run-up to 1 m past the feature:

===========  =================================================================================
terrain      shape (d = difficulty in [0, 1])
===========  =================================================================================
flat         level ground, no roughness
rough        level ground with training's roughness of up to ±(0.02 + 0.04·d) m
slope        up at a gradient of 0.4·d for 4 m, 2 m level, down for 4 m ("rough slope")
stairs_up    12 steps 0.31 m deep and 0.02 + 0.14·d m high, up ("rough stairs up")
stairs_down  the same steps down
===========  =================================================================================

Roughness (:func:`add_roughness`, training's ``add_roughness`` through isaacgym's
``random_uniform_terrain``): heights drawn uniformly from multiples of 0.005 m in ±h on a
0.075 m lattice, interpolated linearly onto the grid and rounded; h is drawn in
[0.02, 0.02 + 0.04·r] m, r = 1 for every terrain but ``rough`` (r = d).
"""

from __future__ import annotations

import numpy as np

from hal.sim.terrains.grid import CELL_M, VERTICAL_STEP_M
from hal.sim.terrains.parkour import NUM_GOALS, PLATFORM_M, Draw

__all__ = ["ROUGHNESS_RANGE_M", "ROUGHNESS_LATTICE_M", "add_roughness", "flat_terrain",
           "rough_terrain", "slope_terrain", "stairs_terrain"]

ROUGHNESS_RANGE_M = (0.02, 0.06)
"""Training's ``terrain.height``: the roughness amplitude range at difficulty 1."""
ROUGHNESS_LATTICE_M = 0.075
"""Training's ``terrain.downsampled_scale``."""
STAIR_DEPTH_M = 0.31
STAIR_COUNT = 12


def add_roughness(draw: Draw, scale: float = 1.0) -> float:
    """Training's roughness added to ``draw.raw``; returns the amplitude h (m)."""
    low, high = ROUGHNESS_RANGE_M
    amplitude = draw.uniform(low, (high - low) * scale + low)
    top = round(amplitude / VERTICAL_STEP_M)
    choices = np.arange(-top, top + 1)
    lattice = ROUGHNESS_LATTICE_M / CELL_M  # lattice spacing in cells
    nx_l = int(draw.nx / lattice) + 2
    ny_l = int(draw.ny / lattice) + 2
    coarse = draw.rng.choice(choices, size=(nx_l, ny_l)).astype(np.float64)
    xs = np.arange(draw.nx) / lattice
    ys = np.arange(draw.ny) / lattice
    along_x = np.stack([np.interp(xs, np.arange(nx_l), coarse[:, j]) for j in range(ny_l)], axis=1)
    fine = np.stack([np.interp(ys, np.arange(ny_l), along_x[i]) for i in range(draw.nx)], axis=0)
    draw.raw += np.rint(fine).astype(np.int64)
    return top * VERTICAL_STEP_M


def _even_goals(draw: Draw, end_x_m: float) -> None:
    start = draw.cells(PLATFORM_M) - 1
    end = min(draw.cells(end_x_m), draw.nx - 1)
    draw.goals[:, 0] = np.linspace(start, end, NUM_GOALS)
    draw.goals[:, 1] = draw.mid_y


def flat_terrain(draw: Draw, difficulty: float) -> dict:
    _even_goals(draw, PLATFORM_M + 10.0)
    return {}


def rough_terrain(draw: Draw, difficulty: float) -> dict:
    _even_goals(draw, PLATFORM_M + 10.0)
    return {"roughness_scale": difficulty}


def slope_terrain(draw: Draw, difficulty: float) -> dict:
    gradient = 0.4 * difficulty
    x = np.arange(draw.nx) * CELL_M - PLATFORM_M
    up, level = 4.0, 2.0
    profile = np.clip(x, 0.0, up) - np.clip(x - up - level, 0.0, up)
    draw.raw[:] = np.round(gradient * profile / VERTICAL_STEP_M).astype(np.int64)[:, None]
    _even_goals(draw, PLATFORM_M + 2 * up + level + 1.0)
    return {"gradient": gradient}


def stairs_terrain(draw: Draw, difficulty: float, down: bool) -> dict:
    height_m = 0.02 + 0.14 * difficulty
    step = draw.steps(height_m) * (-1 if down else 1)
    depth = draw.cells(STAIR_DEPTH_M)
    start = draw.cells(PLATFORM_M)
    for k in range(STAIR_COUNT):
        draw.raw[start + k * depth:, :] = (k + 1) * step
    _even_goals(draw, PLATFORM_M + STAIR_COUNT * STAIR_DEPTH_M + 1.0)
    return {"step_height_m": abs(step) * VERTICAL_STEP_M, "step_depth_m": depth * CELL_M}

"""A terrain as training built it: a height grid at 0.05 m, its goals and its edges.

Training (extreme-parkour's ``legged_gym/utils/terrain.py``) draws each terrain on a height
field of ``horizontal_scale`` = 0.05 m cells with heights in steps of ``vertical_scale`` =
0.005 m, turns it into a triangle mesh whose vertices sit on the grid points, and makes every
rise steeper than ``slope_treshold`` (1.5) a vertical wall at the higher grid point. A
:class:`Terrain` holds that grid (metres), with ``heights_m[i, j]`` the height at world
``(origin_x + i·cell, origin_y + j·cell)``: x runs along the course, y across it.

The simulator builds the grid as a MuJoCo height field sampled ``HFIELD_SUBSAMPLES`` times finer,
so that walls rise within 2.5 cm (:func:`upsample_walls`): the height scan, the depth camera, the
ground truth and the viewers all read that one geometry.

Edges (training's ``x_edge_mask``): grid points where the height jumps by more than
``slope_treshold · cell`` to the next point along x, on the lower side, widened by
``edge_width_thresh`` (0.05 m) along x. A foot in contact at such a point is an edge violation
(training's ``feet_at_edge``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["CELL_M", "VERTICAL_STEP_M", "SLOPE_THRESHOLD", "EDGE_WIDTH_M", "HFIELD_SUBSAMPLES",
           "Terrain", "x_edge_mask", "upsample_walls"]

CELL_M = 0.05
"""Training's ``terrain.horizontal_scale``."""
VERTICAL_STEP_M = 0.005
"""Training's ``terrain.vertical_scale``: heights are whole multiples of it."""
SLOPE_THRESHOLD = 1.5
"""Training's ``terrain.slope_treshold``: steeper rises become vertical walls."""
EDGE_WIDTH_M = 0.05
"""Training's ``terrain.edge_width_thresh``."""
HFIELD_SUBSAMPLES = 2
"""Height-field samples per grid cell in the simulator (walls rise within 0.05 / 2 = 2.5 cm)."""


def x_edge_mask(heights_m: np.ndarray, cell_m: float = CELL_M,
                slope_threshold: float = SLOPE_THRESHOLD,
                edge_width_m: float = EDGE_WIDTH_M) -> np.ndarray:
    """Training's ``x_edge_mask`` of a height grid (x along axis 0): bool, same shape."""
    rise = np.diff(heights_m, axis=0)
    limit = slope_threshold * cell_m
    moved = np.zeros(heights_m.shape, dtype=bool)
    moved[:-1] |= rise > limit      # the lower point before a rise
    moved[1:] |= -rise > limit      # the lower point after a drop
    half = int(edge_width_m / cell_m + 1e-9)
    mask = moved.copy()
    for shift in range(1, half + 1):
        mask[shift:] |= moved[:-shift]
        mask[:-shift] |= moved[shift:]
    return mask


def upsample_walls(heights_m: np.ndarray, factor: int, axis: int,
                   wall_rise_m: float) -> np.ndarray:
    """Resample a grid ``factor`` times finer along ``axis`` as training's mesh has it.

    Between two grid points the surface is linear, unless it rises by more than
    ``wall_rise_m``: then the lower height reaches up to the higher point, where a wall stands
    (one fine sample wide). The grid points keep their heights.
    """
    h = np.moveaxis(np.asarray(heights_m, dtype=np.float64), axis, 0)
    n = h.shape[0]
    lo, hi = h[:-1], h[1:]
    t = (np.arange(factor) / factor).reshape((factor,) + (1,) * (h.ndim - 1))
    linear = lo[:, None] + t[None] * (hi - lo)[:, None]
    low = np.minimum(lo, hi)[:, None] + 0.0 * t[None]
    rising = (hi - lo > wall_rise_m)[:, None] & (t[None] >= 0)
    dropping = (lo - hi > wall_rise_m)[:, None] & (t[None] > 0)
    fine = np.where(rising | dropping, low, linear)
    # the first fine sample of a cell is its grid point: a drop starts right after it
    fine[:, 0] = lo
    out = np.concatenate([fine.reshape((-1,) + h.shape[1:]), h[-1:]], axis=0)
    assert out.shape[0] == (n - 1) * factor + 1
    return np.moveaxis(out, 0, axis)


@dataclass(frozen=True)
class Terrain:
    """One course: its height grid, goals and where it lies in the world.

    Attributes:
        kind: the terrain type (``gap``, ``stairs_up``, ... or ``file``).
        difficulty: in [0, 1].
        heights_m: (nx, ny) heights of the grid points (x along the course).
        origin_m: world (x, y) of grid point [0, 0].
        goals_m: (n, 2) world (x, y) of the goals, in the order to reach them.
        cell_m: grid spacing.
        floor_z_m: the plane beyond the grid (below every pit).
        params: the drawn sizes (gap length, hurdle heights, ...), for the report.
        base_heights_m: the heights before training's roughness was added (tests, plots).
    """

    kind: str
    difficulty: float
    heights_m: np.ndarray
    origin_m: tuple[float, float]
    goals_m: np.ndarray
    cell_m: float = CELL_M
    floor_z_m: float = -1.0
    params: dict = field(default_factory=dict)
    base_heights_m: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.heights_m.ndim != 2 or min(self.heights_m.shape) < 2:
            raise ValueError(f"terrain heights must be a 2-D grid of at least 2x2 points, found "
                             f"shape {self.heights_m.shape}")
        if not np.all(np.isfinite(self.heights_m)):
            raise ValueError("terrain heights must be finite")
        if self.goals_m.ndim != 2 or self.goals_m.shape[1] != 2:
            raise ValueError(f"goals must be (n, 2) world (x, y), found shape {self.goals_m.shape}")

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.difficulty:g}"

    @property
    def size_m(self) -> tuple[float, float]:
        nx, ny = self.heights_m.shape
        return ((nx - 1) * self.cell_m, (ny - 1) * self.cell_m)

    @property
    def course_length_m(self) -> float:
        """Distance along x from the start (world x 0) to the last goal: the course's length."""
        return float(self.goals_m[-1, 0]) if len(self.goals_m) else self.size_m[0]

    def grid_index(self, x_m: float, y_m: float) -> tuple[int, int] | None:
        """Nearest grid point of world (x, y) (training's rounding); None outside the grid."""
        i = int(round((x_m - self.origin_m[0]) / self.cell_m))
        j = int(round((y_m - self.origin_m[1]) / self.cell_m))
        nx, ny = self.heights_m.shape
        if 0 <= i < nx and 0 <= j < ny:
            return i, j
        return None

    def height_at(self, x_m: float, y_m: float) -> float:
        """Height of the nearest grid point; the floor outside the grid."""
        index = self.grid_index(x_m, y_m)
        return float(self.heights_m[index]) if index is not None else self.floor_z_m

    def max_height_near(self, x_m: float, y_m: float, radius_m: float) -> float:
        """Highest grid point within ``radius_m`` (a square) of world (x, y); 0 where the square
        misses the grid."""
        nx, ny = self.heights_m.shape
        ox, oy = self.origin_m
        i0 = max(int(round((x_m - radius_m - ox) / self.cell_m)), 0)
        i1 = min(int(round((x_m + radius_m - ox) / self.cell_m)), nx - 1)
        j0 = max(int(round((y_m - radius_m - oy) / self.cell_m)), 0)
        j1 = min(int(round((y_m + radius_m - oy) / self.cell_m)), ny - 1)
        if i0 > i1 or j0 > j1:
            return 0.0
        return float(self.heights_m[i0:i1 + 1, j0:j1 + 1].max())

    def edge_mask(self) -> np.ndarray:
        return x_edge_mask(self.heights_m, self.cell_m)

    def hfield(self, factor: int = HFIELD_SUBSAMPLES) -> tuple[np.ndarray, float, float]:
        """(fine grid (nx', ny'), z of its lowest point, its height range) for MuJoCo."""
        wall = SLOPE_THRESHOLD * self.cell_m
        fine = upsample_walls(self.heights_m, factor, 0, wall)
        fine = upsample_walls(fine, factor, 1, wall)
        low = float(min(fine.min(), self.floor_z_m + 1e-3))
        span = max(float(fine.max()) - low, 1e-3)
        return fine, low, span

    def describe(self) -> dict:
        """JSON-ready summary for the run report."""
        return {"terrain": self.kind, "difficulty": self.difficulty,
                "length_m": round(self.course_length_m, 3),
                "goals_m": [[round(float(x), 3), round(float(y), 3)] for x, y in self.goals_m],
                "params": {k: (round(v, 4) if isinstance(v, float) else v)
                           for k, v in self.params.items()}}


def _check_unit(value: float, what: str) -> float:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{what} must be in [0, 1], found {value}")
    return float(value)

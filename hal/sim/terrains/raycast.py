"""Rays against a terrain's surface, the same surface MuJoCo collides with.

MuJoCo's own ray test on a height field visits every cell under a ray's shadow (a 106x60 depth
frame on an 18 m course took seconds), so the simulator casts the depth camera's and the height
scan's rays at the terrain here, against the height field MuJoCo holds (the fine grid of
:meth:`Terrain.hfield`, bilinear between its samples), and takes the nearer of this and MuJoCo's
rays at every other scene geom.

A ray is sampled at ``samples`` points between where it enters the terrain's bounding box and
where it leaves it (or ``max_t``) against the nearest grid sample, and the first crossing is
refined by bisection against the bilinear surface.
"""

from __future__ import annotations

import numpy as np

from hal.sim.terrains.grid import Terrain

__all__ = ["TerrainRaycaster"]


class TerrainRaycaster:
    """Ray casts and height queries on one terrain.

    Args:
        terrain: the terrain.
        samples: points per ray before refining.
        bisections: refinement steps (each halves the crossing interval).
    """

    def __init__(self, terrain: Terrain, samples: int = 48, bisections: int = 8) -> None:
        fine, _, _ = terrain.hfield()
        self.heights = np.ascontiguousarray(fine, dtype=np.float64)
        self.nx, self.ny = fine.shape
        sx, sy = terrain.size_m
        self.step_x = sx / (self.nx - 1)
        self.step_y = sy / (self.ny - 1)
        self.x0, self.y0 = terrain.origin_m
        self.x1, self.y1 = self.x0 + sx, self.y0 + sy
        self.z_low, self.z_high = float(fine.min()), float(fine.max())
        self.floor_z_m = terrain.floor_z_m
        self.samples = int(samples)
        self.bisections = int(bisections)
        self._flat = self.heights.ravel()
        self._coarse = self.heights.astype(np.float32).ravel()
        self._inv = (1.0 / self.step_x, 1.0 / self.step_y)

    def nearest(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Height of the nearest grid sample (float32; the floor outside the grid)."""
        fx = (x - self.x0) * self._inv[0] + 0.5
        fy = (y - self.y0) * self._inv[1] + 0.5
        inside = (fx >= 0) & (fx < self.nx) & (fy >= 0) & (fy < self.ny)
        index = fx.astype(np.intp) * self.ny + fy.astype(np.intp)
        np.clip(index, 0, self._coarse.size - 1, out=index)
        return np.where(inside, self._coarse[index], np.float32(self.floor_z_m))

    def surface(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Surface height at world (x, y) (arrays); the floor outside the grid."""
        fx = (np.asarray(x, dtype=np.float64) - self.x0) * self._inv[0]
        fy = (np.asarray(y, dtype=np.float64) - self.y0) * self._inv[1]
        cx = np.clip(fx, 0.0, self.nx - 1.000001)
        cy = np.clip(fy, 0.0, self.ny - 1.000001)
        ix, iy = cx.astype(np.intp), cy.astype(np.intp)
        tx, ty = cx - ix, cy - iy
        base = ix * self.ny + iy
        h = self._flat
        low = h[base] + (h[base + 1] - h[base]) * ty
        high = h[base + self.ny] + (h[base + self.ny + 1] - h[base + self.ny]) * ty
        z = low + (high - low) * tx
        inside = (fx >= 0) & (fx <= self.nx - 1) & (fy >= 0) & (fy <= self.ny - 1)
        return z if inside.all() else np.where(inside, z, self.floor_z_m)

    def cast(self, origin: np.ndarray, directions: np.ndarray, max_t: float) -> np.ndarray:
        """Ray parameter of the first terrain hit of each ray; +inf where none within ``max_t``.

        Args:
            origin: (3,) the rays' common start.
            directions: (n, 3) ray directions (any length; t is in their units).
            max_t: the largest ray parameter to look at.
        """
        o = np.asarray(origin, dtype=np.float64)
        v = np.asarray(directions, dtype=np.float64)
        n = v.shape[0]
        t_in = np.zeros(n)
        t_out = np.full(n, float(max_t))
        bounds = ((self.x0, self.x1), (self.y0, self.y1), (self.z_low, self.z_high))
        with np.errstate(divide="ignore", invalid="ignore"):
            for axis, (lo, hi) in enumerate(bounds):
                va = v[:, axis]
                ta, tb = (lo - o[axis]) / va, (hi - o[axis]) / va
                still = va == 0
                inside = lo <= o[axis] <= hi
                t_near = np.where(still, -np.inf if inside else np.inf, np.minimum(ta, tb))
                t_far = np.where(still, np.inf if inside else -np.inf, np.maximum(ta, tb))
                np.maximum(t_in, t_near, out=t_in)
                np.minimum(t_out, t_far, out=t_out)
        result = np.full(n, np.inf)
        live = np.flatnonzero(t_out > t_in)
        if live.size:
            result[live] = self._march(o, v[live], t_in[live], t_out[live])
        return result

    def _march(self, o: np.ndarray, v: np.ndarray, t_in: np.ndarray,
               t_out: np.ndarray) -> np.ndarray:
        k = self.samples
        frac = np.linspace(0.0, 1.0, k, dtype=np.float32)
        t = t_in.astype(np.float32)[:, None] + (t_out - t_in).astype(np.float32)[:, None] * frac
        v32 = v.astype(np.float32)
        o32 = o.astype(np.float32)
        above = (o32[2] + t * v32[:, 2:3]) - self.nearest(o32[0] + t * v32[:, 0:1],
                                                           o32[1] + t * v32[:, 1:2])
        below = above <= 0.0
        hit = below.any(axis=1)
        first = np.argmax(below, axis=1)
        rows = np.arange(len(t))
        t_hi = t[rows, first].astype(np.float64)
        t_lo = np.where(first > 0, t[rows, np.maximum(first - 1, 0)], t_hi).astype(np.float64)
        for _ in range(self.bisections):
            mid = 0.5 * (t_lo + t_hi)
            gap = (o[2] + mid * v[:, 2]) - self.surface(o[0] + mid * v[:, 0], o[1] + mid * v[:, 1])
            down = gap <= 0.0
            t_hi = np.where(down, mid, t_hi)
            t_lo = np.where(down, t_lo, mid)
        return np.where(hit, t_hi, np.inf)

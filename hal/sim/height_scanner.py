"""Simulated height scanner: the trunk's height above the scene at fixed base-frame points."""

from __future__ import annotations

import numpy as np

from hal.devices.base import HeightScanner, HeightScanSample
from hal.sim.device import SimDeviceMixin
from hal.sim.world import MujocoWorld

__all__ = ["SimHeightScanner"]


class SimHeightScanner(SimDeviceMixin, HeightScanner):
    """Casts one ray straight down per point of ``points_xy`` (yaw-aligned base frame, metres)
    and reports ``base_z - terrain_z`` there, the quantity a legged_gym height scan is made of.

    Args:
        world: The simulated world.
        points_xy: (n, 2) sample points.
    """

    def __init__(self, world: MujocoWorld, points_xy: np.ndarray) -> None:
        super().__init__(world)
        points = np.asarray(points_xy, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2 or not len(points):
            raise ValueError(f"points_xy must have shape (n, 2) with n > 0, found {points.shape}")
        self._points = points

    @property
    def n_points(self) -> int:
        return len(self._points)

    def read(self) -> HeightScanSample:
        self._require_connected()
        out = np.empty(len(self._points), dtype=np.float32)
        self.world.height_scan(self._points, out)
        return HeightScanSample(out, self.world.now_ns())

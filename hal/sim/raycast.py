"""A pinhole depth camera rendered by casting one MuJoCo ray per pixel (``mj_multiRay``).

The camera frame is the optical frame: x right, y down, z forward along the optical axis. Pixel
``(u, v)`` (column, row; pixel centres at integer coordinates, OpenCV's convention) looks along
``((u - cx) / fx, (v - cy) / fy, 1)``. Because that direction has a unit z component, the ray
parameter MuJoCo returns is the pixel's depth along the optical axis (Z-depth, what a ZED's
``DEPTH`` measure holds), not the Euclidean range.

Invalid pixels follow the ZED's convention: no hit or beyond ``max_range_m`` → ``+inf`` (too far),
nearer than ``min_range_m`` → ``-inf`` (too close).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hal.devices.base import CameraIntrinsics

__all__ = ["pinhole_intrinsics", "DepthRaycaster"]


def pinhole_intrinsics(width: int, height: int, horizontal_fov_deg: float) -> CameraIntrinsics:
    """Intrinsics of a centred pinhole camera with square pixels and the given horizontal FOV.

    The FOV spans the full image width (pixel edges), so ``intrinsics.horizontal_fov_deg`` gives
    ``horizontal_fov_deg`` back.

    Raises:
        ValueError: a non-positive size or a FOV outside (0, 180) degrees.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"camera size must be positive, found {width}x{height}")
    if not 0.0 < horizontal_fov_deg < 180.0:
        raise ValueError(f"horizontal_fov_deg must be in (0, 180), found {horizontal_fov_deg}")
    fx = width / (2.0 * math.tan(math.radians(horizontal_fov_deg) / 2.0))
    return CameraIntrinsics(width=width, height=height, fx=fx, fy=fx,
                            cx=(width - 1) / 2.0, cy=(height - 1) / 2.0)


class DepthRaycaster:
    """Renders Z-depth frames from a site whose frame is the camera's optical frame.

    Args:
        mujoco: the imported ``mujoco`` module.
        model: the compiled model.
        site_id: the camera site (its frame: x right, y down, z forward).
        intrinsics: pixel geometry of the frames.
        geomgroup: 6 flags; only geoms of groups flagged 1 are seen (the robot's own are not).
        min_range_m: depths below this read ``-inf``.
        max_range_m: depths beyond this (and misses) read ``+inf``.
        terrain: a :class:`hal.sim.terrains.raycast.TerrainRaycaster` whose surface the rays
            also hit (a height field MuJoCo's ray test would take seconds on), or None.
    """

    def __init__(self, mujoco: Any, model: Any, site_id: int, intrinsics: CameraIntrinsics,
                 geomgroup: np.ndarray, min_range_m: float = 0.0, max_range_m: float = 10.0,
                 terrain: Any = None) -> None:
        if not 0.0 <= min_range_m < max_range_m:
            raise ValueError(f"need 0 <= min_range_m < max_range_m, found {min_range_m}, {max_range_m}")
        self._mj = mujoco
        self._model = model
        self._site = site_id
        self.intrinsics = intrinsics
        self._geomgroup = np.ascontiguousarray(geomgroup, dtype=np.uint8)
        self.min_range_m = float(min_range_m)
        self.max_range_m = float(max_range_m)
        k = intrinsics
        u, v = np.meshgrid(np.arange(k.width, dtype=np.float64), np.arange(k.height, dtype=np.float64))
        self._dirs_cam = np.stack([(u - k.cx) / k.fx, (v - k.cy) / k.fy, np.ones_like(u)],
                                  axis=-1).reshape(-1, 3)
        self._n = self._dirs_cam.shape[0]
        # The cutoff is a Euclidean range: the corner ray's is longest for a given depth.
        self._cutoff = self.max_range_m * float(np.max(np.linalg.norm(self._dirs_cam, axis=1))) * 1.01
        self._vec = np.empty((self._n, 3), dtype=np.float64)
        self._dist = np.empty(self._n, dtype=np.float64)
        self._geomid = np.empty(self._n, dtype=np.int32)
        self._pnt = np.empty(3, dtype=np.float64)
        self._terrain = terrain

    @property
    def frame_shape(self) -> tuple[int, int]:
        return (self.intrinsics.height, self.intrinsics.width)

    def camera_pose(self, data: Any) -> tuple[np.ndarray, np.ndarray]:
        """(position (3,), rotation (3, 3) camera-to-world) of the camera in ``data``'s state."""
        return (data.site_xpos[self._site].copy(), data.site_xmat[self._site].reshape(3, 3).copy())

    def render(self, data: Any, out: np.ndarray) -> None:
        """Cast every pixel's ray in ``data``'s current kinematics and write depths into ``out``.

        ``data`` must have its kinematics computed (after ``mj_step1``/``mj_forward``).
        """
        rot = data.site_xmat[self._site].reshape(3, 3)
        np.matmul(self._dirs_cam, rot.T, out=self._vec)
        self._pnt[:] = data.site_xpos[self._site]
        self._mj.mj_multiRay(self._model, data, self._pnt, self._vec.reshape(-1), self._geomgroup,
                             1, -1, self._geomid, self._dist, None, self._n, self._cutoff)
        depth = self._dist
        missed = self._geomid < 0
        if self._terrain is not None:
            ground = self._terrain.cast(self._pnt, self._vec, self._cutoff)
            nearer = np.isfinite(ground) & (missed | (ground < depth))
            depth[nearer] = ground[nearer]
            missed &= ~nearer
        depth[missed | (depth > self.max_range_m)] = np.inf
        if self.min_range_m > 0.0:
            depth[depth < self.min_range_m] = -np.inf
        np.copyto(out, depth.reshape(out.shape))

"""The scene's height under many points at once: the height scan without a ray per point.

Every scene geom of the shipped scenes is a plane facing up or a box turned only about z (a
:class:`~hal.sim.scenes.SceneBox`): the first thing a ray cast straight down meets is then the
highest top of the geoms over the point, which numpy computes for all points in one pass. A scene
with any other static geom falls back to one ``mj_ray`` per point.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["SceneHeights"]

_UPRIGHT = 1.0 - 1e-9


class SceneHeights:
    """Top heights of a model's static scene geoms (those of ``groups``).

    Args:
        mujoco: the imported module.
        model: the compiled model.
        data: data whose kinematics are computed (static geoms never move).
        groups: geom group flags (6,), the groups that count.
    """

    def __init__(self, mujoco: Any, model: Any, data: Any, groups: np.ndarray) -> None:
        self._mj, self._model, self._groups = mujoco, model, groups
        geom = mujoco.mjtGeom
        planes, boxes = [], []
        self.vectorised = True
        for g in range(model.ngeom):
            if model.geom_bodyid[g] != 0 or not groups[model.geom_group[g]]:
                continue
            rot = data.geom_xmat[g].reshape(3, 3)
            upright = rot[2, 2] >= _UPRIGHT
            if model.geom_type[g] == geom.mjGEOM_PLANE and upright:
                planes.append(float(data.geom_xpos[g][2]))
            elif model.geom_type[g] == geom.mjGEOM_BOX and upright:
                boxes.append((data.geom_xpos[g].copy(), rot[:2, :2].copy(),
                              model.geom_size[g].copy()))
            else:
                self.vectorised = False
        self._plane_z = max(planes) if planes else -np.inf
        self._boxes = boxes
        self._start = np.zeros(3)
        self._down = np.array([0.0, 0.0, -1.0])
        self._geom = np.zeros(1, dtype=np.int32)

    def heights(self, xy: np.ndarray, data: Any, start_z: float) -> np.ndarray:
        """Highest scene surface below ``start_z`` at each of ``xy`` ((n, 2)); -inf where none."""
        if not self.vectorised:
            return self._by_ray(xy, data, start_z)
        out = np.full(len(xy), self._plane_z)
        for centre, rot, half in self._boxes:
            local = (xy - centre[:2]) @ rot  # into the box frame (rot's columns are its axes)
            inside = (np.abs(local[:, 0]) <= half[0]) & (np.abs(local[:, 1]) <= half[1])
            top = centre[2] + half[2]
            np.maximum(out, np.where(inside & (top <= start_z), top, -np.inf), out=out)
        return out

    def _by_ray(self, xy: np.ndarray, data: Any, start_z: float) -> np.ndarray:
        out = np.full(len(xy), -np.inf)
        start = self._start
        start[2] = start_z
        for i, (x, y) in enumerate(xy):
            start[0], start[1] = x, y
            dist = self._mj.mj_ray(self._model, data, start, self._down, self._groups, 1, -1,
                                   self._geom)
            if dist >= 0:
                out[i] = start_z - dist
        return out

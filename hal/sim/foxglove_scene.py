"""The simulated robot in the MCAP log, for Foxglove's 3D panel.

:class:`SimSceneRecorder` is a tick listener that adds two channels to a ``--record`` log:

- ``/sim/tf`` (``foxglove.FrameTransform``): the trunk's pose, ``world`` → ``base``, every tick;
- ``/sim/scene`` (``foxglove.SceneUpdate``): at ``scene_rate_hz`` of simulated time, entity
  ``robot`` (every robot geom as a cube, sphere or cylinder — a capsule is a cylinder and two
  spheres) and entity ``terrain`` (the scene's boxes), in the ``world`` frame. On a terrain
  (:mod:`hal.sim.terrains`) the first update also carries entity ``terrain_grid``: the height
  field as cubes on a 0.1 m grid (runs of equal height along x merged, heights to 1 cm), sent
  once (it never moves; Foxglove keeps an entity until it is replaced).

The loop's share is a copy of a few small arrays; the messages are built on the recorder's writer
thread. Stamps are the tick's, so the messages line up with ``/hal/tick``. Field names, types and
required fields follow Foxglove's published JSON schemas (checked by the tests).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hal.sim.scenes import SCENE_GEOM_GROUP

__all__ = ["SimSceneRecorder", "terrain_cubes", "quaternion_xyzw_from_matrix",
           "FRAME_TRANSFORM_SCHEMA",
           "SCENE_UPDATE_SCHEMA", "TF_TOPIC", "SCENE_TOPIC"]

TF_TOPIC = "/sim/tf"
SCENE_TOPIC = "/sim/scene"
_GEOM_SPHERE, _GEOM_CAPSULE, _GEOM_CYLINDER, _GEOM_BOX = 2, 3, 5, 6  # mjtGeom

_TIME = {"type": "object", "properties": {"sec": {"type": "integer", "minimum": 0},
                                          "nsec": {"type": "integer", "minimum": 0,
                                                   "maximum": 999999999}}}
_VEC3 = {"type": "object", "properties": {k: {"type": "number"} for k in "xyz"},
         "required": ["x", "y", "z"]}
_QUAT = {"type": "object", "properties": {k: {"type": "number"} for k in "xyzw"},
         "required": ["x", "y", "z", "w"]}
_POSE = {"type": "object", "properties": {"position": _VEC3, "orientation": _QUAT},
         "required": ["position", "orientation"]}
_COLOR = {"type": "object", "properties": {k: {"type": "number"} for k in "rgba"},
          "required": ["r", "g", "b", "a"]}
FRAME_TRANSFORM_SCHEMA: dict[str, Any] = {
    "title": "foxglove.FrameTransform", "type": "object",
    "properties": {"timestamp": _TIME, "parent_frame_id": {"type": "string"},
                   "child_frame_id": {"type": "string"}, "translation": _VEC3,
                   "rotation": _QUAT},
    "required": ["timestamp", "parent_frame_id", "child_frame_id", "translation", "rotation"]}
_PRIMITIVE = {"type": "object", "properties": {"pose": _POSE, "size": _VEC3, "color": _COLOR},
              "required": ["pose", "size", "color"]}
_CYLINDER = {"type": "object",
             "properties": {"pose": _POSE, "size": _VEC3, "bottom_scale": {"type": "number"},
                            "top_scale": {"type": "number"}, "color": _COLOR},
             "required": ["pose", "size", "bottom_scale", "top_scale", "color"]}
_LISTS = ("arrows", "cubes", "spheres", "cylinders", "lines", "triangles", "texts", "models")
_ENTITY = {"type": "object",
           "properties": {"timestamp": _TIME, "frame_id": {"type": "string"},
                          "id": {"type": "string"}, "lifetime": _TIME,
                          "frame_locked": {"type": "boolean"},
                          "metadata": {"type": "array"},
                          **{name: {"type": "array"} for name in _LISTS},
                          "cubes": {"type": "array", "items": _PRIMITIVE},
                          "spheres": {"type": "array", "items": _PRIMITIVE},
                          "cylinders": {"type": "array", "items": _CYLINDER}},
           "required": ["timestamp", "frame_id", "id", "lifetime", "frame_locked", "metadata",
                        *_LISTS]}
SCENE_UPDATE_SCHEMA: dict[str, Any] = {
    "title": "foxglove.SceneUpdate", "type": "object",
    "properties": {"deletions": {"type": "array"},
                   "entities": {"type": "array", "items": _ENTITY}},
    "required": ["deletions", "entities"]}


def quaternion_xyzw_from_matrix(m: np.ndarray) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a 3x3 rotation matrix (largest-diagonal branch, w >= 0)."""
    m = np.asarray(m, dtype=np.float64).reshape(3, 3)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(1.0 + trace)
        w, x = 0.25 * s, (m[2, 1] - m[1, 2]) / s
        y, z = (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        w, x = (m[2, 1] - m[1, 2]) / s, 0.25 * s
        y, z = (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        w, x = (m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s
        y, z = 0.25 * s, (m[1, 2] + m[2, 1]) / s
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        w, x = (m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s
        y, z = (m[1, 2] + m[2, 1]) / s, 0.25 * s
    sign = -1.0 if w < 0 else 1.0
    return sign * x, sign * y, sign * z, sign * w


def _time(ns: int) -> dict[str, int]:
    return {"sec": int(ns // 1_000_000_000), "nsec": int(ns % 1_000_000_000)}


def _vec(v: Any) -> dict[str, float]:
    return {"x": float(v[0]), "y": float(v[1]), "z": float(v[2])}


def _pose(pos: Any, mat: np.ndarray) -> dict[str, Any]:
    x, y, z, w = quaternion_xyzw_from_matrix(mat)
    return {"position": _vec(pos), "orientation": {"x": x, "y": y, "z": z, "w": w}}


def terrain_cubes(terrain: Any, stride: int = 2) -> list[dict[str, Any]]:
    """A terrain's height grid as cubes from its floor up, every ``stride``-th point, runs of
    equal height (to 1 cm) along x merged."""
    heights = np.round(terrain.heights_m[::stride, ::stride], 2)
    step = terrain.cell_m * stride
    floor = terrain.floor_z_m
    x0, y0 = terrain.origin_m
    color = {"r": 0.62, "g": 0.58, "b": 0.5, "a": 1.0}
    identity = {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0}
    cubes = []
    for j in range(heights.shape[1]):
        column = heights[:, j]
        starts = np.flatnonzero(np.r_[True, column[1:] != column[:-1]])
        ends = np.r_[starts[1:], len(column)]
        for a, b in zip(starts, ends):
            top = float(column[a])
            centre = {"x": x0 + (a + b - 1) * step / 2, "y": y0 + j * step, "z": (top + floor) / 2}
            cubes.append({"pose": {"position": centre, "orientation": identity},
                          "size": {"x": (b - a) * step, "y": step, "z": max(top - floor, 1e-3)},
                          "color": color})
    return cubes


def _color(rgba: Any) -> dict[str, float]:
    return {"r": float(rgba[0]), "g": float(rgba[1]), "b": float(rgba[2]), "a": float(rgba[3])}


class SimSceneRecorder:
    """Tick listener writing ``/sim/tf`` and ``/sim/scene`` into a file recorder.

    Args:
        world: the :class:`~hal.sim.world.MujocoWorld`.
        recorder: a :class:`~hal.recorder.file_recorder.FileRecorder` (``add_json_channel``,
            ``accept_message``).
        scene_rate_hz: scene updates per second of simulated time.
    """

    def __init__(self, world: Any, recorder: Any, scene_rate_hz: float = 10.0) -> None:
        self.world, self.recorder = world, recorder
        model = world.model
        self._trunk = int(world._trunk)
        groups, types = np.asarray(model.geom_group), np.asarray(model.geom_type)
        shapes = np.isin(types, (_GEOM_SPHERE, _GEOM_CAPSULE, _GEOM_CYLINDER, _GEOM_BOX))
        self._robot = np.flatnonzero(shapes & (groups != SCENE_GEOM_GROUP))
        self._terrain = np.flatnonzero(shapes & (groups == SCENE_GEOM_GROUP))
        self._types = types.copy()
        self._sizes = np.asarray(model.geom_size).copy()
        self._rgba = np.asarray(model.geom_rgba).copy()
        terrain = getattr(world, "terrain", None)
        self._grid_cubes = terrain_cubes(terrain) if terrain is not None else None
        self._period_ns = int(round(1e9 / scene_rate_hz))
        self._next_ns = 0
        recorder.add_json_channel("sim.tf", TF_TOPIC, "foxglove.FrameTransform",
                                  FRAME_TRANSFORM_SCHEMA)
        recorder.add_json_channel("sim.scene", SCENE_TOPIC, "foxglove.SceneUpdate",
                                  SCENE_UPDATE_SCHEMA)

    def __call__(self, record: Any) -> None:
        data = self.world.data
        pos = data.xpos[self._trunk].copy()
        quat = data.xquat[self._trunk].copy()  # (w, x, y, z)
        self.recorder.accept_message("sim.tf", record.tick_ns, record.seq,
                                     lambda t: self._transform(t, pos, quat))
        sim_ns = int(round(self.world.sim_time_s * 1e9))
        if sim_ns >= self._next_ns:
            self._next_ns += self._period_ns * (1 + (sim_ns - self._next_ns) // self._period_ns)
            xpos, xmat = data.geom_xpos.copy(), data.geom_xmat.copy()
            self.recorder.accept_message("sim.scene", record.tick_ns, record.seq,
                                         lambda t: self._scene(t, xpos, xmat))

    @staticmethod
    def _transform(t_ns: int, pos: np.ndarray, quat: np.ndarray) -> dict[str, Any]:
        return {"timestamp": _time(t_ns), "parent_frame_id": "world", "child_frame_id": "base",
                "translation": _vec(pos),
                "rotation": {"x": float(quat[1]), "y": float(quat[2]), "z": float(quat[3]),
                             "w": float(quat[0])}}

    def _scene(self, t_ns: int, xpos: np.ndarray, xmat: np.ndarray) -> dict[str, Any]:
        entities = [self._entity(t_ns, "robot", self._robot, xpos, xmat),
                    self._entity(t_ns, "terrain", self._terrain, xpos, xmat)]
        if self._grid_cubes is not None:  # once: the writer thread builds the messages in order
            grid = self._entity(t_ns, "terrain_grid", np.zeros(0, dtype=int), xpos, xmat)
            grid["cubes"], self._grid_cubes = self._grid_cubes, None
            entities.append(grid)
        return {"deletions": [], "entities": entities}

    def _entity(self, t_ns: int, name: str, geoms: np.ndarray, xpos: np.ndarray,
                xmat: np.ndarray) -> dict[str, Any]:
        cubes, spheres, cylinders = [], [], []
        for g in geoms:
            kind, size, rot = self._types[g], self._sizes[g], xmat[g].reshape(3, 3)
            pose, color = _pose(xpos[g], rot), _color(self._rgba[g])
            if kind == _GEOM_BOX:
                cubes.append({"pose": pose, "size": _vec(2.0 * size), "color": color})
            elif kind == _GEOM_SPHERE:
                d = 2.0 * size[0]
                spheres.append({"pose": pose, "size": _vec((d, d, d)), "color": color})
            else:
                length = 2.0 * size[1]
                d = 2.0 * size[0]
                cylinders.append({"pose": pose, "size": _vec((d, d, length)),
                                  "bottom_scale": 1.0, "top_scale": 1.0, "color": color})
                if kind == _GEOM_CAPSULE:  # the rounded ends
                    for end in (-1.0, 1.0):
                        centre = xpos[g] + end * size[1] * rot[:, 2]
                        spheres.append({"pose": _pose(centre, rot), "size": _vec((d, d, d)),
                                        "color": color})
        return {"timestamp": _time(t_ns), "frame_id": "world", "id": name,
                "lifetime": {"sec": 0, "nsec": 0}, "frame_locked": False, "metadata": [],
                "arrows": [], "cubes": cubes, "spheres": spheres, "cylinders": cylinders,
                "lines": [], "triangles": [], "texts": [], "models": []}

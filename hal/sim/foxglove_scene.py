"""The simulated robot as Foxglove messages (foxglove-sdk), for the live view and the MCAP log.

:class:`SimScene` reads a :class:`~hal.sim.world.MujocoWorld`:

- :meth:`SimScene.snapshot` (control loop, cheap): copies of every body's world position and
  orientation;
- :meth:`SimScene.transforms` (``foxglove.FrameTransforms``): ``world`` → ``base`` (the trunk) and
  every other body in its parent's frame, so the joints move the links in Foxglove's 3D panel;
- :meth:`SimScene.scene_update` (``foxglove.SceneUpdate``): entity ``terrain`` (the scene's boxes,
  in ``world``) and one frame-locked entity per robot body (its geoms as cubes, spheres and
  cylinders — a capsule is a cylinder and two spheres — in the body's frame). On a terrain
  (:mod:`hal.sim.terrains`, a height field) entity ``terrain_grid`` carries its heights as cubes
  on a 0.1 m grid (:func:`terrain_cubes`). The geometry never changes, so it is sent rarely; the
  transforms move it.

:class:`SimSceneRecorder` writes ``/sim/tf`` and ``/sim/scene`` into a ``--record`` log through the
same builders: the loop's share is the snapshot, the messages are built and encoded on the
recorder's writer thread.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hal.live import messages as fm
from hal.live.sdk import foxglove_sdk
from hal.sim.scenes import SCENE_GEOM_GROUP

__all__ = ["SimScene", "SimSceneRecorder", "TF_TOPIC", "SCENE_TOPIC", "BASE_FRAME",
           "terrain_cubes", "quaternion_multiply_wxyz", "quaternion_conjugate_wxyz"]

TF_TOPIC = "/sim/tf"
SCENE_TOPIC = "/sim/scene"
BASE_FRAME = "base"
_GEOM_SPHERE, _GEOM_CAPSULE, _GEOM_CYLINDER, _GEOM_BOX = 2, 3, 5, 6  # mjtGeom


def quaternion_conjugate_wxyz(q: np.ndarray) -> np.ndarray:
    """Conjugates of (..., 4) w-first quaternions."""
    out = np.array(q, dtype=np.float64, copy=True)
    out[..., 1:] *= -1.0
    return out


def quaternion_multiply_wxyz(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton products a ⊗ b of (..., 4) w-first quaternions."""
    aw, ax, ay, az = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    bw, bx, by, bz = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz,
                     aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw], axis=-1)


def _rotate_inverse(q_wxyz: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate (N, 3) vectors by the inverse of (N, 4) quaternions (world → parent frame)."""
    qv = np.concatenate([np.zeros((len(v), 1)), v], axis=1)
    conj = quaternion_conjugate_wxyz(q_wxyz)
    return quaternion_multiply_wxyz(quaternion_multiply_wxyz(conj, qv), q_wxyz)[:, 1:]


def terrain_cubes(terrain: Any, stride: int = 2) -> list[tuple[tuple[float, float, float],
                                                               tuple[float, float, float]]]:
    """A terrain's height grid as (centre, size) boxes from its floor up, every ``stride``-th
    point, runs of equal height (to 1 cm) along x merged."""
    heights = np.round(terrain.heights_m[::stride, ::stride], 2)
    step = terrain.cell_m * stride
    floor = terrain.floor_z_m
    x0, y0 = terrain.origin_m
    boxes = []
    for j in range(heights.shape[1]):
        column = heights[:, j]
        starts = np.flatnonzero(np.r_[True, column[1:] != column[:-1]])
        ends = np.r_[starts[1:], len(column)]
        for a, b in zip(starts, ends):
            top = float(column[a])
            boxes.append(((x0 + (a + b - 1) * step / 2, y0 + j * step, (top + floor) / 2),
                          ((b - a) * step, step, max(top - floor, 1e-3))))
    return boxes


class SimScene:
    """Foxglove views of a MuJoCo world (see the module doc).

    Args:
        world: the :class:`~hal.sim.world.MujocoWorld`.
    """

    def __init__(self, world: Any) -> None:
        self.world = world
        model = world.model
        self._trunk = int(world._trunk)
        names = [model.body(i).name or f"body{i}" for i in range(model.nbody)]
        self.frames = ["world" if i == 0 else BASE_FRAME if i == self._trunk else names[i]
                       for i in range(model.nbody)]
        parents = np.asarray(model.body_parentid)
        # Every body of the robot below the trunk, with its parent (the trunk's parent is world).
        self._links = np.array([i for i in range(1, model.nbody) if i != self._trunk], dtype=int)
        self._parents = parents[self._links]
        groups, types = np.asarray(model.geom_group), np.asarray(model.geom_type)
        shapes = np.isin(types, (_GEOM_SPHERE, _GEOM_CAPSULE, _GEOM_CYLINDER, _GEOM_BOX))
        self._robot_geoms = np.flatnonzero(shapes & (groups != SCENE_GEOM_GROUP))
        self._terrain_geoms = np.flatnonzero(shapes & (groups == SCENE_GEOM_GROUP))
        self._types = types.copy()
        self._sizes = np.asarray(model.geom_size).copy()
        self._rgba = np.asarray(model.geom_rgba).copy()
        self._geom_body = np.asarray(model.geom_bodyid).copy()
        self._geom_pos = np.asarray(model.geom_pos).copy()  # in the body's frame
        self._geom_quat = np.asarray(model.geom_quat).copy()
        data = world.data
        self._terrain_xpos = np.asarray(data.geom_xpos).copy()  # the terrain never moves
        self._terrain_xmat = np.asarray(data.geom_xmat).copy()
        terrain = getattr(world, "terrain", None)
        self._grid = terrain_cubes(terrain) if terrain is not None else []

    # -- loop thread -------------------------------------------------------------------------------

    def snapshot(self) -> np.ndarray:
        """(nbody, 7): every body's world position and w-first orientation, copied now."""
        data = self.world.data
        return np.concatenate([data.xpos, data.xquat], axis=1)

    # -- any thread (from a snapshot) --------------------------------------------------------------

    def base_pose(self, snap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position m, quaternion wxyz) of the trunk in the world."""
        return snap[self._trunk, :3], snap[self._trunk, 3:]

    def transforms(self, stamp_ns: int, snap: np.ndarray) -> Any:
        """``foxglove.FrameTransforms``: world → base, and each link in its parent's frame."""
        child, parent = snap[self._links], snap[self._parents]
        rel_pos = _rotate_inverse(parent[:, 3:], child[:, :3] - parent[:, :3])
        rel_quat = quaternion_multiply_wxyz(quaternion_conjugate_wxyz(parent[:, 3:]),
                                            child[:, 3:])
        frames = self.frames
        transforms = [fm.frame_transform(stamp_ns, "world", BASE_FRAME, *self.base_pose(snap))]
        transforms += [fm.frame_transform(stamp_ns, frames[p], frames[c], pos, quat)
                       for c, p, pos, quat in zip(self._links, self._parents, rel_pos, rel_quat)]
        return fm.frame_transforms(transforms)

    def scene_update(self, stamp_ns: int) -> Any:
        """``foxglove.SceneUpdate``: the terrain in ``world`` and each body's geoms in its frame."""
        m = foxglove_sdk().messages
        entities = [self._entity(m, stamp_ns, "terrain", "world", False, [
            (g, self._terrain_xpos[g], self._terrain_xmat[g].reshape(3, 3))
            for g in self._terrain_geoms])]
        by_body: dict[int, list] = {}
        for g in self._robot_geoms:
            rot = _matrix_from_wxyz(self._geom_quat[g])
            by_body.setdefault(int(self._geom_body[g]), []).append((g, self._geom_pos[g], rot))
        for body, geoms in by_body.items():
            entities.append(self._entity(m, stamp_ns, f"robot/{self.frames[body]}",
                                         self.frames[body], True, geoms))
        if self._grid:
            color = m.Color(r=0.62, g=0.58, b=0.5, a=1.0)
            level = fm.quaternion_xyzw(0.0, 0.0, 0.0, 1.0)
            cubes = [m.CubePrimitive(pose=m.Pose(position=fm.vector3(centre), orientation=level),
                                     size=fm.vector3(size), color=color)
                     for centre, size in self._grid]
            entities.append(m.SceneEntity(timestamp=fm.timestamp(stamp_ns), frame_id="world",
                                          id="terrain_grid", frame_locked=False, cubes=cubes))
        return m.SceneUpdate(entities=entities)

    def _entity(self, m: Any, stamp_ns: int, name: str, frame: str, locked: bool,
                geoms: list) -> Any:
        cubes, spheres, cylinders = [], [], []
        for g, pos, rot in geoms:
            kind, size = self._types[g], self._sizes[g]
            r, gr, b, a = (float(c) for c in self._rgba[g])
            color = m.Color(r=r, g=gr, b=b, a=a)
            pose = _pose(m, pos, rot)
            if kind == _GEOM_BOX:
                cubes.append(m.CubePrimitive(pose=pose, size=fm.vector3(2.0 * size), color=color))
            elif kind == _GEOM_SPHERE:
                d = 2.0 * size[0]
                spheres.append(m.SpherePrimitive(pose=pose, size=fm.vector3((d, d, d)),
                                                 color=color))
            else:
                d, length = 2.0 * size[0], 2.0 * size[1]
                cylinders.append(m.CylinderPrimitive(pose=pose, size=fm.vector3((d, d, length)),
                                                     bottom_scale=1.0, top_scale=1.0, color=color))
                if kind == _GEOM_CAPSULE:  # the rounded ends
                    for end in (-1.0, 1.0):
                        centre = np.asarray(pos) + end * size[1] * rot[:, 2]
                        spheres.append(m.SpherePrimitive(pose=_pose(m, centre, rot),
                                                         size=fm.vector3((d, d, d)), color=color))
        return m.SceneEntity(timestamp=fm.timestamp(stamp_ns), frame_id=frame, id=name,
                             frame_locked=locked, cubes=cubes, spheres=spheres,
                             cylinders=cylinders)


def _matrix_from_wxyz(q: np.ndarray) -> np.ndarray:
    w, x, y, z = (float(v) for v in q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _pose(m: Any, pos: Any, rot: np.ndarray) -> Any:
    x, y, z, w = fm.quaternion_xyzw_from_matrix(rot)
    return m.Pose(position=fm.vector3(pos), orientation=fm.quaternion_xyzw(x, y, z, w))


class SimSceneRecorder:
    """Tick listener writing ``/sim/tf`` (every tick) and ``/sim/scene`` (at ``scene_rate_hz`` of
    simulated time) into a file recorder, as protobuf Foxglove messages.

    Args:
        world: the :class:`~hal.sim.world.MujocoWorld`.
        recorder: a :class:`~hal.recorder.file_recorder.FileRecorder`.
        scene_rate_hz: scene updates per second of simulated time.
    """

    def __init__(self, world: Any, recorder: Any, scene_rate_hz: float = 1.0) -> None:
        self.world, self.recorder = world, recorder
        self.scene = SimScene(world)
        messages = foxglove_sdk().messages
        self._period_ns = int(round(1e9 / scene_rate_hz))
        self._next_ns = 0
        recorder.add_foxglove_channel("sim.tf", TF_TOPIC, messages.FrameTransforms)
        recorder.add_foxglove_channel("sim.scene", SCENE_TOPIC, messages.SceneUpdate)

    def __call__(self, record: Any) -> None:
        snap = self.scene.snapshot()
        scene = self.scene
        self.recorder.accept_message("sim.tf", record.tick_ns, record.seq,
                                     lambda t: scene.transforms(t, snap))
        sim_ns = int(round(self.world.sim_time_s * 1e9))
        if sim_ns >= self._next_ns:
            self._next_ns += self._period_ns * (1 + (sim_ns - self._next_ns) // self._period_ns)
            self.recorder.accept_message("sim.scene", record.tick_ns, record.seq,
                                         scene.scene_update)

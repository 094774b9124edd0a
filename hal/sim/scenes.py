"""Scenes the simulated robot stands in, as MJCF fragments of static geoms.

Every scene geom is static (attached to the world body) and in geom group
:data:`SCENE_GEOM_GROUP`; the robot's geoms live in another group, so the depth camera's rays see
the scene and never the robot. Scenes are picked by name (:data:`SCENES`); :class:`SceneBox`
adds obstacles to any of them (tests put a box in front of the camera this way).

The ``parkour`` course, along +x from the robot's start at the origin (all heights in metres):

=================  ================  ===========
part               x range (m)       top z (m)
=================  ================  ===========
start slab         -3.0 … 1.0        0.0
box step           1.0 … 1.8         0.15
gap (a pit)        1.8 … 2.2         -0.5 (pit floor)
landing slab       2.2 … 6.0         0.15
=================  ================  ===========

The slabs are 3 m wide (y from -1.5 to 1.5); beyond them the pit floor stretches everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["SCENES", "SCENE_GEOM_GROUP", "TERRAIN_GEOM_GROUP", "LIGHT_XML", "SceneBox",
           "ParkourCourse", "PARKOUR_COURSE", "scene_xml"]

SCENES: tuple[str, ...] = ("flat", "parkour")
"""Scene names :func:`scene_xml` (and ``MujocoWorldConfig.scene``) accept."""

SCENE_GEOM_GROUP = 0
"""Geom group of every scene geom; the depth camera's rays see only this group."""

TERRAIN_GEOM_GROUP = 2
"""Geom group of a terrain's height field: MuJoCo's rays skip it, the simulator casts the camera's
and the scan's rays at it itself (:mod:`hal.sim.terrains.raycast`)."""

LIGHT_XML = '<light name="sun" pos="0 0 4" dir="0.3 0.2 -1" directional="true"/>'
"""The scene's light (every scene, terrains too)."""

_FLOOR_RGBA = "0.45 0.47 0.5 1"
_OBSTACLE_RGBA = "0.75 0.55 0.35 1"


@dataclass(frozen=True)
class SceneBox:
    """A static box obstacle added to a scene.

    Attributes:
        name: geom name (unique in the model).
        center_m: (x, y, z) of the box centre in the world frame.
        half_size_m: half extents along x, y, z (all > 0).
        yaw_deg: rotation about the world z axis.
    """

    name: str
    center_m: tuple[float, float, float]
    half_size_m: tuple[float, float, float]
    yaw_deg: float = 0.0

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ValueError(f"SceneBox name {self.name!r}: use letters, digits and '_'")
        if len(self.center_m) != 3 or not all(math.isfinite(v) for v in self.center_m):
            raise ValueError(f"SceneBox {self.name!r}: center_m must be 3 finite numbers, "
                             f"found {self.center_m!r}")
        if len(self.half_size_m) != 3 or not all(math.isfinite(v) and v > 0 for v in self.half_size_m):
            raise ValueError(f"SceneBox {self.name!r}: half_size_m must be 3 positive numbers, "
                             f"found {self.half_size_m!r}")

    def to_xml(self) -> str:
        half_yaw = math.radians(self.yaw_deg) / 2.0
        quat = f"{math.cos(half_yaw):.9g} 0 0 {math.sin(half_yaw):.9g}"
        return (f'<geom name="{self.name}" type="box" pos="{_fmt(self.center_m)}" '
                f'size="{_fmt(self.half_size_m)}" quat="{quat}" group="{SCENE_GEOM_GROUP}" '
                f'rgba="{_OBSTACLE_RGBA}"/>')


@dataclass(frozen=True)
class ParkourCourse:
    """Dimensions of the ``parkour`` scene (see the module docstring)."""

    start_x_m: float = -3.0
    step_x_m: float = 1.0
    step_height_m: float = 0.15
    gap_x_m: float = 1.8
    gap_length_m: float = 0.4
    end_x_m: float = 6.0
    half_width_m: float = 1.5
    pit_depth_m: float = 0.5

    def boxes(self) -> tuple[SceneBox, ...]:
        """The course as boxes; each slab reaches down to the pit floor."""
        bottom = -self.pit_depth_m
        landing_x = self.gap_x_m + self.gap_length_m
        hw = self.half_width_m

        def slab(name: str, x0: float, x1: float, top: float) -> SceneBox:
            return SceneBox(name, ((x0 + x1) / 2, 0.0, (top + bottom) / 2),
                            ((x1 - x0) / 2, hw, (top - bottom) / 2))

        return (
            slab("start_slab", self.start_x_m, self.step_x_m, 0.0),
            slab("box_step", self.step_x_m, self.gap_x_m, self.step_height_m),
            slab("landing_slab", landing_x, self.end_x_m, self.step_height_m),
        )


PARKOUR_COURSE = ParkourCourse()


def _fmt(values: tuple[float, ...]) -> str:
    return " ".join(f"{v:.9g}" for v in values)


def scene_xml(scene: str, extra_boxes: tuple[SceneBox, ...] = ()) -> str:
    """The ``<worldbody>`` children (static geoms and a light) of a named scene.

    Raises:
        ValueError: ``scene`` is not one of :data:`SCENES`.
    """
    if scene not in SCENES:
        raise ValueError(f"unknown scene {scene!r}; valid scenes: {', '.join(SCENES)}")
    lines = [LIGHT_XML]
    if scene == "flat":
        floor_z = 0.0
    else:
        floor_z = -PARKOUR_COURSE.pit_depth_m
    lines.append(f'<geom name="floor" type="plane" pos="0 0 {floor_z:.9g}" size="0 0 0.05" '
                 f'material="floor" group="{SCENE_GEOM_GROUP}"/>')
    if scene == "parkour":
        lines.extend(box.to_xml() for box in PARKOUR_COURSE.boxes())
    names = [b.name for b in extra_boxes]
    if len(set(names)) != len(names):
        raise ValueError(f"extra_boxes have duplicate names: {names}")
    lines.extend(box.to_xml() for box in extra_boxes)
    return "\n".join(lines)

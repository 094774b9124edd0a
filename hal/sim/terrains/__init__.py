"""Training's terrains as simulator scenes: ``--scene TYPE[:DIFFICULTY]`` or ``--scene FILE``.

:func:`build_terrain` draws one terrain of a type (:data:`TERRAIN_TYPES`) at a difficulty in
[0, 1] from a seed; :func:`parse_scene` reads a scene argument. The generators follow
extreme-parkour's (:mod:`hal.sim.terrains.parkour`, :mod:`hal.sim.terrains.classic`); a course
file is described in :mod:`hal.sim.terrains.course_file`. The legacy scenes ``flat`` and
``parkour`` (:mod:`hal.sim.scenes`) are still there under their bare names.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np

from hal.sim.terrains.classic import (
    add_roughness,
    flat_terrain,
    rough_terrain,
    slope_terrain,
    stairs_terrain,
)
from hal.sim.terrains.course_file import CourseFileError, load_course
from hal.sim.terrains.grid import CELL_M, Terrain, x_edge_mask
from hal.sim.terrains.parkour import (
    START_OFFSET_M,
    WIDTH_M,
    Draw,
    gap_terrain,
    hurdle_terrain,
    step_terrain,
    stones_terrain,
)

__all__ = ["TERRAIN_TYPES", "DEFAULT_DIFFICULTY", "LEGACY_SCENES", "Terrain", "CourseFileError",
           "build_terrain", "parse_scene", "resolve_scene", "load_course", "x_edge_mask"]

DEFAULT_DIFFICULTY = 0.5
START_PAD_M = 0.7
"""Half side of the level square around the start that training's roughness leaves out."""
LEGACY_SCENES = ("flat", "parkour")
"""Bare scene names that keep their original meaning (:mod:`hal.sim.scenes`, no goals)."""

_GENERATORS: dict[str, Callable[[Draw, float], dict]] = {
    "gap": gap_terrain,
    "hurdle": hurdle_terrain,
    "step": step_terrain,
    "stones": stones_terrain,
    "stairs_up": lambda draw, d: stairs_terrain(draw, d, down=False),
    "stairs_down": lambda draw, d: stairs_terrain(draw, d, down=True),
    "slope": slope_terrain,
    "rough": rough_terrain,
    "flat": flat_terrain,
}
TERRAIN_TYPES: tuple[str, ...] = tuple(_GENERATORS)
_PARKOUR = ("gap", "hurdle", "step", "stones")


def build_terrain(kind: str, difficulty: float = DEFAULT_DIFFICULTY, seed: int = 0,
                  roughness: bool = True) -> Terrain:
    """Draw one terrain of ``kind`` at ``difficulty`` from ``seed`` (training's generator).

    Args:
        kind: one of :data:`TERRAIN_TYPES`.
        difficulty: in [0, 1].
        seed: the terrain's random draws (positions, depths, ...) come from it.
        roughness: add training's roughness (every type but ``flat``).

    Raises:
        ValueError: an unknown type or a difficulty outside [0, 1].
    """
    if kind not in _GENERATORS:
        raise ValueError(f"unknown terrain {kind!r}; valid terrains: {', '.join(TERRAIN_TYPES)}")
    if not (isinstance(difficulty, (int, float)) and math.isfinite(difficulty)
            and 0.0 <= difficulty <= 1.0):
        raise ValueError(f"terrain difficulty must be in [0, 1], found {difficulty!r}")
    draw = Draw(np.random.default_rng([int(seed) & 0xFFFFFFFF, TERRAIN_TYPES.index(kind), 7]))
    params = _GENERATORS[kind](draw, float(difficulty))
    if kind in _PARKOUR:
        draw.pad_edges()
    base = draw.heights_m()
    if roughness and kind != "flat":
        before = draw.raw.copy()
        params["roughness_m"] = add_roughness(draw, difficulty if kind == "rough" else 1.0)
        # the robot is set down on level ground (the appliance's entry gate wants a stand pose
        # it can hold): no roughness within START_PAD_M of the start
        pad = round(START_PAD_M / CELL_M)
        i0, j0 = round(START_OFFSET_M / CELL_M), draw.ny // 2
        draw.raw[i0 - pad:i0 + pad + 1, j0 - pad:j0 + pad + 1] = \
            before[i0 - pad:i0 + pad + 1, j0 - pad:j0 + pad + 1]
    heights = draw.heights_m()
    origin = (-START_OFFSET_M, -WIDTH_M / 2)
    goals = draw.goals * CELL_M + np.array(origin)
    floor = min(float(heights.min()) - 0.5, -1.0)
    return Terrain(kind=kind, difficulty=float(difficulty), heights_m=heights, origin_m=origin,
                   goals_m=goals, cell_m=CELL_M, floor_z_m=floor, params=params,
                   base_heights_m=base)


def parse_scene(scene: str) -> tuple[str, float | None]:
    """``TYPE[:DIFFICULTY]`` → (type, difficulty or None when not given); a legacy name or a
    course file comes back as it is with None.

    Raises:
        ValueError: an unknown type, a course file that does not exist, or a bad difficulty.
    """
    text = scene.strip()
    if text.lower().endswith(".toml"):
        if not Path(text).is_file():
            raise ValueError(f"--scene {scene}: no such course file")
        return text, None
    kind, sep, level = text.partition(":")
    if kind not in _GENERATORS and kind not in LEGACY_SCENES:
        raise ValueError(f"unknown scene {scene!r}; valid scenes: flat, parkour (the original "
                         f"two), a terrain TYPE or TYPE:DIFFICULTY (difficulty in [0, 1]) with "
                         f"TYPE one of {', '.join(TERRAIN_TYPES)}, or a course file FILE.toml")
    if not sep:
        return kind, None
    try:
        difficulty = float(level)
    except ValueError:
        raise ValueError(f"scene {scene!r}: difficulty {level!r} is not a number in "
                         f"[0, 1]") from None
    if not (math.isfinite(difficulty) and 0.0 <= difficulty <= 1.0) or kind == "parkour":
        raise ValueError(f"scene {scene!r}: difficulty must be in [0, 1] and the legacy "
                         f"'parkour' course takes none (use 'stones:{level}' for training's)")
    return kind, difficulty


def resolve_scene(scene: str, seed: int = 0, roughness: bool = True) -> Terrain | None:
    """The terrain a scene argument names; None for a legacy scene (``flat``, ``parkour``)."""
    kind, difficulty = parse_scene(scene)
    if kind.lower().endswith(".toml"):
        return load_course(kind)
    if difficulty is None:
        if kind in LEGACY_SCENES:
            return None
        difficulty = DEFAULT_DIFFICULTY
    return build_terrain(kind, difficulty, seed, roughness)

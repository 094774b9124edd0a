"""A :class:`~hal.sim.terrains.grid.Terrain` in MuJoCo: one height field geom over a floor plane.

The height field's data is written after the model compiled (:func:`write_hfield`), so the MJCF
stays small. Its geom is in the scene group: the depth camera and the height scan see it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hal.sim.terrains.grid import Terrain

__all__ = ["HFIELD_NAME", "terrain_assets_xml", "terrain_body_xml", "write_hfield"]

HFIELD_NAME = "terrain"
_BASE_THICKNESS_M = 0.1


def _layout(terrain: Terrain) -> tuple[np.ndarray, float, float, tuple[float, float],
                                      tuple[float, float]]:
    fine, low, span = terrain.hfield()
    sx, sy = terrain.size_m
    centre = (terrain.origin_m[0] + sx / 2, terrain.origin_m[1] + sy / 2)
    return fine, low, span, (sx / 2, sy / 2), centre


def terrain_assets_xml(terrain: Terrain) -> str:
    """The ``<hfield>`` asset (sizes only; the data comes from :func:`write_hfield`)."""
    fine, low, span, (rx, ry), _ = _layout(terrain)
    nx, ny = fine.shape
    return (f'<hfield name="{HFIELD_NAME}" nrow="{ny}" ncol="{nx}" '
            f'size="{rx:.9g} {ry:.9g} {span:.9g} {_BASE_THICKNESS_M:.9g}"/>')


def terrain_body_xml(terrain: Terrain, group: int, hfield_group: int) -> str:
    """The floor plane (in ``group``) and the height field geom (in ``hfield_group``)."""
    _, low, _, _, (cx, cy) = _layout(terrain)
    return "\n".join([
        f'<geom name="floor" type="plane" pos="0 0 {terrain.floor_z_m:.9g}" size="0 0 0.05" '
        f'material="floor" group="{group}"/>',
        f'<geom name="{HFIELD_NAME}" type="hfield" hfield="{HFIELD_NAME}" '
        f'pos="{cx:.9g} {cy:.9g} {low:.9g}" group="{hfield_group}" rgba="0.62 0.58 0.5 1"/>'])


def write_hfield(mujoco: Any, model: Any, terrain: Terrain) -> None:
    """Fill the compiled model's height field with the terrain's heights."""
    fine, low, span, _, _ = _layout(terrain)
    hid = int(mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_HFIELD, HFIELD_NAME))
    nrow, ncol = int(model.hfield_nrow[hid]), int(model.hfield_ncol[hid])
    if (ncol, nrow) != fine.shape:
        raise ValueError(f"height field is {ncol}x{nrow}, the terrain {fine.shape}")
    start = int(model.hfield_adr[hid])
    # MuJoCo's rows run along y (row 0 at -y), columns along x; values in [0, 1] of the span.
    model.hfield_data[start:start + nrow * ncol] = ((fine.T - low) / span).ravel()

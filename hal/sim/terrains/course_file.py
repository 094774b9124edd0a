"""A course a user describes: ``--scene my_course.toml``.

The file (TOML; every length in metres, world frame: the robot starts at the origin facing +x)::

    length_m = 10.0          # the course's extent along x, from start_x_m (required)
    width_m = 4.0            # across it, centred on y = 0 (default 4)
    start_x_m = -1.0         # where the grid begins (default -1: 1 m of ground behind the robot)
    floor_z_m = -1.0         # the plane beyond the grid (default: 1 m below the lowest point)
    height_map = "map.csv"   # optional: heights of the grid points, one row per x, columns
                             # along y, 0.05 m apart, relative to this file (or .npy)
    goals = [[2.0, 0.0], [4.5, 0.3], [7.0, 0.0]]   # (x, y) to run through, in order (>= 1)

    [[box]]                  # optional, repeatable: a block of ground at a height
    x = [1.0, 1.8]           # x range
    y = [-1.0, 1.0]          # y range (default: the whole width)
    height = 0.15            # top height (negative: a pit)

Boxes are applied in order, after the height map; the grid is 0.05 m (training's
``horizontal_scale``) and otherwise at height 0.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from hal.sim.terrains.grid import CELL_M, Terrain
from hal.toml_compat import tomllib


__all__ = ["CourseFileError", "load_course"]


class CourseFileError(ValueError):
    """A course file that cannot be read; the message names the file and the bad value."""


def _number(data: dict, key: str, path: Path, default: float | None = None) -> float:
    value = data.get(key, default)
    if value is None:
        raise CourseFileError(f"{path}: '{key}' is required (a number of metres)")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CourseFileError(f"{path}: '{key}' must be a finite number, found {value!r}")
    return float(value)


def _pair(box: dict, key: str, path: Path, n: int,
          default: tuple[float, float]) -> tuple[float, float]:
    value = box.get(key, list(default))
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)
            or value[0] >= value[1]):
        raise CourseFileError(f"{path}: box {n}: '{key}' must be [low, high] with low < high, "
                              f"found {value!r}")
    return float(value[0]), float(value[1])


def _height_map(path: Path, name: Any, shape: tuple[int, int]) -> np.ndarray:
    if not isinstance(name, str):
        raise CourseFileError(f"{path}: 'height_map' must be a file name, found {name!r}")
    file = (path.parent / name).resolve()
    try:
        grid = np.load(file) if file.suffix == ".npy" else np.loadtxt(file, delimiter=",", ndmin=2)
    except (OSError, ValueError) as exc:
        raise CourseFileError(f"{path}: height_map {file}: {exc}") from None
    if grid.shape != shape or not np.all(np.isfinite(grid)):
        raise CourseFileError(f"{path}: height_map {file} must hold {shape[0]} rows (x) of "
                              f"{shape[1]} finite heights (y), found shape {grid.shape}")
    return grid.astype(np.float64)


def load_course(path: str | Path) -> Terrain:
    """Read a course file (see the module docstring).

    Raises:
        CourseFileError: the file is missing, not TOML, or holds a bad value (named).
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise CourseFileError(f"course file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CourseFileError(f"course file {path} is not valid TOML: {exc}") from None
    known = {"length_m", "width_m", "start_x_m", "floor_z_m", "height_map", "goals", "box"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise CourseFileError(f"{path}: unknown keys {unknown}; valid: {sorted(known)}")
    length = _number(data, "length_m", path)
    width = _number(data, "width_m", path, 4.0)
    if length < 1.0 or width < 0.5:
        raise CourseFileError(f"{path}: length_m must be >= 1 and width_m >= 0.5, found "
                              f"{length}, {width}")
    start_x = _number(data, "start_x_m", path, -1.0)
    nx, ny = int(round(length / CELL_M)) + 1, int(round(width / CELL_M)) + 1
    heights = np.zeros((nx, ny))
    if "height_map" in data:
        heights = _height_map(path, data["height_map"], (nx, ny))
    xs = start_x + np.arange(nx) * CELL_M
    ys = -width / 2 + np.arange(ny) * CELL_M
    boxes = data.get("box", [])
    if not isinstance(boxes, list):
        raise CourseFileError(f"{path}: 'box' must be a table array ([[box]])")
    for n, box in enumerate(boxes, 1):
        x0, x1 = _pair(box, "x", path, n, (0.0, 0.0))
        y0, y1 = _pair(box, "y", path, n, (-width / 2, width / 2))
        top = _number(box, "height", path)
        rows = (xs >= x0 - 1e-9) & (xs <= x1 + 1e-9)
        cols = (ys >= y0 - 1e-9) & (ys <= y1 + 1e-9)
        heights[np.ix_(rows, cols)] = top
    goals = data.get("goals")
    if (not isinstance(goals, list) or not goals or not all(
            isinstance(g, list) and len(g) == 2
            and all(isinstance(v, (int, float)) and math.isfinite(v) for v in g) for g in goals)):
        raise CourseFileError(f"{path}: 'goals' must be a list of at least one [x, y], found "
                              f"{goals!r}")
    floor = _number(data, "floor_z_m", path, float(heights.min()) - 1.0)
    return Terrain(kind="file", difficulty=0.0, heights_m=heights, origin_m=(start_x, -width / 2),
                   goals_m=np.asarray(goals, dtype=np.float64), floor_z_m=floor,
                   params={"file": str(path)}, base_heights_m=heights.copy())

"""Base attitude from the IMU quaternion: roll, pitch and tilt (pure functions on Python floats).

The quaternion is ``(w, x, y, z)``, the orientation of the base in the world frame (z up). Plain
floats keep the per-tick cost to a few arithmetic operations and no array allocation.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["normalized_quaternion", "roll_pitch", "tilt_rad"]


def normalized_quaternion(quaternion_wxyz: np.ndarray) -> tuple[float, float, float, float] | None:
    """The unit quaternion as floats, or None when it is non-finite or has (near) zero norm."""
    w, x, y, z = (float(quaternion_wxyz[0]), float(quaternion_wxyz[1]),
                  float(quaternion_wxyz[2]), float(quaternion_wxyz[3]))
    norm = math.sqrt(w * w + x * x + y * y + z * z)
    if not math.isfinite(norm) or norm < 1e-6:
        return None
    return w / norm, x / norm, y / norm, z / norm


def roll_pitch(w: float, x: float, y: float, z: float) -> tuple[float, float]:
    """Roll and pitch (rad) of a unit quaternion, Z-Y-X (yaw-pitch-roll) convention."""
    roll = math.atan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    sin_pitch = 2.0 * (w * y - z * x)
    pitch = math.asin(max(-1.0, min(1.0, sin_pitch)))
    return roll, pitch


def tilt_rad(w: float, x: float, y: float, z: float) -> float:
    """Angle (rad, 0..pi) between the base's up axis and the world's up axis (unit quaternion)."""
    # World-frame z component of the body z axis: R[2, 2] = 1 - 2 (x^2 + y^2).
    cos_tilt = 1.0 - 2.0 * (x * x + y * y)
    return math.acos(max(-1.0, min(1.0, cos_tilt)))

"""Quaternions and the IMU-to-base mounting transform (pure numpy, no device).

Conventions: quaternions are Hamilton, scalar first (``wxyz``) unless a name says ``xyzw`` (the
ZED SDK's order). ``q_a_b`` rotates vectors from frame b into frame a. Roll/pitch/yaw are the
intrinsic Z-Y-X angles: ``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)``. The robot base frame is x forward,
y left, z up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "quat_xyzw_to_wxyz",
    "quat_normalize",
    "quat_conjugate",
    "quat_multiply",
    "quat_from_rpy",
    "quat_to_matrix",
    "quat_to_rpy",
    "ImuMounting",
]


def quat_xyzw_to_wxyz(q_xyzw) -> np.ndarray:
    """Reorder an ``(x, y, z, w)`` quaternion (ZED SDK order) to ``(w, x, y, z)``."""
    q = np.asarray(q_xyzw, dtype=np.float64)
    if q.shape != (4,):
        raise ValueError(f"expected a quaternion of 4 values, got shape {q.shape}")
    return np.array([q[3], q[0], q[1], q[2]])


def quat_normalize(q) -> np.ndarray:
    """Unit quaternion with a non-negative scalar part (q and -q are the same rotation)."""
    q = np.asarray(q, dtype=np.float64)
    norm = float(np.linalg.norm(q))
    if not math.isfinite(norm) or norm < 1e-9:
        raise ValueError(f"cannot normalize quaternion {q.tolist()} (norm {norm})")
    q = q / norm
    return -q if q[0] < 0 else q


def quat_conjugate(q) -> np.ndarray:
    """The inverse rotation of a unit quaternion."""
    q = np.asarray(q, dtype=np.float64)
    return np.array([q[0], -q[1], -q[2], -q[3]])


def quat_multiply(a, b) -> np.ndarray:
    """Hamilton product ``a ⊗ b`` (apply b, then a)."""
    aw, ax, ay, az = np.asarray(a, dtype=np.float64)
    bw, bx, by, bz = np.asarray(b, dtype=np.float64)
    return np.array([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ])


def quat_from_rpy(roll_rad: float, pitch_rad: float, yaw_rad: float) -> np.ndarray:
    """Quaternion of ``Rz(yaw) @ Ry(pitch) @ Rx(roll)``."""
    cr, sr = math.cos(roll_rad / 2), math.sin(roll_rad / 2)
    cp, sp = math.cos(pitch_rad / 2), math.sin(pitch_rad / 2)
    cy, sy = math.cos(yaw_rad / 2), math.sin(yaw_rad / 2)
    return np.array([
        cr * cp * cy + sr * sp * sy,
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
    ])


def quat_to_matrix(q) -> np.ndarray:
    """3×3 rotation matrix of a (normalised here) quaternion."""
    w, x, y, z = quat_normalize(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def quat_to_rpy(q) -> np.ndarray:
    """(roll, pitch, yaw) in radians of a quaternion (inverse of :func:`quat_from_rpy`)."""
    w, x, y, z = quat_normalize(q)
    roll = math.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2 * (w * y - z * x))))
    yaw = math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return np.array([roll, pitch, yaw])


@dataclass(frozen=True)
class ImuMounting:
    """How an IMU sits on the robot base: the rotation of the IMU frame in the base frame.

    ``rpy_deg`` are the roll/pitch/yaw (degrees) of the IMU's axes expressed in the base frame; a
    camera tilted 30° nose-down about the base's y axis has ``rpy_deg=(0, 30, 0)``. The position of
    the IMU is not used: angular velocity is the same everywhere on a rigid body, and the
    centripetal and tangential terms a lever arm adds to the acceleration are ignored (the policy
    observes only angular velocity and roll/pitch).
    """

    rpy_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    q_base_imu: np.ndarray = field(init=False, repr=False, compare=False)
    r_base_imu: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rpy = tuple(float(v) for v in self.rpy_deg)
        if len(rpy) != 3 or not all(math.isfinite(v) for v in rpy):
            raise ValueError(f"ImuMounting.rpy_deg must be 3 finite angles in degrees, got {self.rpy_deg!r}")
        object.__setattr__(self, "rpy_deg", rpy)
        q = quat_from_rpy(*np.radians(rpy))
        object.__setattr__(self, "q_base_imu", q)
        object.__setattr__(self, "r_base_imu", quat_to_matrix(q))

    @classmethod
    def from_quaternion(cls, q_base_imu_wxyz) -> "ImuMounting":
        """The mounting whose IMU-in-base rotation is ``q_base_imu_wxyz``."""
        return cls(tuple(float(v) for v in np.degrees(quat_to_rpy(q_base_imu_wxyz))))

    def followed_by(self, q_frame_imu_wxyz) -> "ImuMounting":
        """This mounting (of some frame in the base) composed with an IMU's rotation in that frame.

        With ``self`` the camera's mounting (``q_base_cam``) and ``q_frame_imu_wxyz`` the factory
        camera–IMU rotation (``q_cam_imu``), the result is ``q_base_imu = q_base_cam ⊗ q_cam_imu``.
        """
        return ImuMounting.from_quaternion(quat_multiply(self.q_base_imu, q_frame_imu_wxyz))

    @property
    def is_identity(self) -> bool:
        return self.rpy_deg == (0.0, 0.0, 0.0)

    def to_base(self, q_world_imu_wxyz, angular_velocity_imu, linear_acceleration_imu,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Express one IMU reading for the base.

        Returns:
            ``q_world_base`` (wxyz, unit, w >= 0), angular velocity and linear acceleration in
            the base frame. ``q_world_base = q_world_imu ⊗ q_base_imu⁻¹``; vectors rotate by
            ``R_base_imu``.
        """
        q_world_base = quat_normalize(quat_multiply(q_world_imu_wxyz, quat_conjugate(self.q_base_imu)))
        r = self.r_base_imu
        return (q_world_base,
                r @ np.asarray(angular_velocity_imu, dtype=np.float64),
                r @ np.asarray(linear_acceleration_imu, dtype=np.float64))

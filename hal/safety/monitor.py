"""Sensor health and the entry gate: the checks the safety layer runs on every tick's readings.

:meth:`SensorMonitor.fault` decides damping (joint state or IMU unusable or stale, tilt beyond the
limit); :meth:`SensorMonitor.gate_block` decides whether the policy may take over (depth fresh,
small roll and pitch, small tracking error, feet down). Both return ``None`` when all is well,
else a short reason code and a detail text with the numbers; no arrays are allocated on the good
path.
"""

from __future__ import annotations

import math

import numpy as np

from hal.devices.base import ContactSample, ImuSample, JointState
from hal.safety import events as ev
from hal.safety.attitude import normalized_quaternion, roll_pitch, tilt_rad
from hal.safety.config import SafetyConfig

__all__ = ["SensorMonitor", "imu_quaternion"]


def imu_quaternion(imu: ImuSample) -> tuple[float, float, float, float] | None:
    """The unit quaternion of a finite, well-formed IMU sample, else None."""
    try:
        if (len(imu.quaternion_wxyz) != 4 or len(imu.angular_velocity_rad_s) != 3
                or len(imu.linear_acceleration_m_s2) != 3):
            return None
        for v in (*imu.angular_velocity_rad_s, *imu.linear_acceleration_m_s2):
            if not math.isfinite(v):
                return None
        return normalized_quaternion(imu.quaternion_wxyz)
    except (TypeError, ValueError):
        return None


class SensorMonitor:
    """Health checks on the readings of one tick; keeps the last roll and pitch for the gate.

    Args:
        config: Thresholds.
        n_joints: Joints (hardware order length).
        n_feet: Feet with contact sensors.
        contact_threshold_n: Force above which a foot counts as down.
    """

    def __init__(self, config: SafetyConfig, n_joints: int, n_feet: int,
                 contact_threshold_n: float) -> None:
        self.config = config
        self.n_joints = n_joints
        self.roll_rad = 0.0
        self.pitch_rad = 0.0
        self._contact_threshold_n = float(contact_threshold_n)
        self._mask = np.zeros(n_joints, dtype=bool)
        self._work = np.zeros(n_joints)
        self._feet_mask = np.zeros(n_feet, dtype=bool)

    def joints_usable(self, joints: JointState) -> bool:
        """Position and velocity have shape (n,) and are finite."""
        n = self.n_joints
        q, dq = joints.position_rad, joints.velocity_rad_s
        if getattr(q, "shape", None) != (n,) or getattr(dq, "shape", None) != (n,):
            return False
        return bool(np.isfinite(q, out=self._mask).all() and np.isfinite(dq, out=self._mask).all())

    def fault(self, now_ns: int, joints: JointState, joints_usable: bool,
              imu: ImuSample) -> tuple[str, str] | None:
        """(reason, detail) of the first sensor problem, or None when the sensors are healthy.

        A timestamp further than the limit in the future counts as stale too (a broken clock).
        """
        cfg = self.config
        if not joints_usable:
            return ev.REASON_JOINTS_INVALID, (
                f"joint state must be finite with shape ({self.n_joints},); got position "
                f"{joints.position_rad!r}, velocity {joints.velocity_rad_s!r}")
        age_ms = (now_ns - joints.timestamp_ns) / 1e6
        if abs(age_ms) > cfg.joints_stale_ms:
            return ev.REASON_JOINTS_STALE, (f"encoder data {age_ms:.1f} ms old > "
                                            f"{cfg.joints_stale_ms} ms")
        quat = imu_quaternion(imu)
        if quat is None:
            return ev.REASON_IMU_INVALID, (
                f"IMU sample must be finite with a non-zero quaternion; got quaternion "
                f"{imu.quaternion_wxyz!r}, gyro {imu.angular_velocity_rad_s!r}, "
                f"accel {imu.linear_acceleration_m_s2!r}")
        age_ms = (now_ns - imu.timestamp_ns) / 1e6
        if abs(age_ms) > cfg.imu_stale_ms:
            return ev.REASON_IMU_STALE, f"IMU data {age_ms:.1f} ms old > {cfg.imu_stale_ms} ms"
        self.roll_rad, self.pitch_rad = roll_pitch(*quat)
        tilt = tilt_rad(*quat)
        if tilt > cfg.tilt_limit_rad:
            return ev.REASON_TILT, f"tilt {tilt:.3f} rad > {cfg.tilt_limit_rad} rad"
        return None

    def depth_fresh(self, now_ns: int, depth_timestamp_ns: int | None) -> bool:
        """True when the depth check is off, or depth arrived within ``depth_stale_ms``."""
        limit = self.config.depth_stale_ms
        if limit is None:
            return True
        if depth_timestamp_ns is None:
            return False
        return abs(now_ns - depth_timestamp_ns) <= limit * 1e6

    def depth_detail(self, now_ns: int, depth_timestamp_ns: int | None) -> str:
        """Why depth is stale, in words."""
        if depth_timestamp_ns is None:
            return "no depth received"
        return (f"depth {(now_ns - depth_timestamp_ns) / 1e6:.1f} ms old > "
                f"{self.config.depth_stale_ms} ms")

    def gate_block(self, now_ns: int, joints: JointState, contacts: ContactSample | None,
                   depth_timestamp_ns: int | None,
                   last_target: np.ndarray | None) -> tuple[str, str] | None:
        """Why the entry gate is closed (code, detail), or None when it is open.

        Call after :meth:`fault` returned None on the same tick (it sets roll and pitch).
        ``last_target`` is the previous applied position target (None if there was none).
        """
        cfg = self.config
        if not self.depth_fresh(now_ns, depth_timestamp_ns):
            return "depth_stale", self.depth_detail(now_ns, depth_timestamp_ns)
        if abs(self.roll_rad) > cfg.gate_max_roll_rad:
            return "roll", f"|roll| {abs(self.roll_rad):.3f} rad > {cfg.gate_max_roll_rad} rad"
        if abs(self.pitch_rad) > cfg.gate_max_pitch_rad:
            return "pitch", (f"|pitch| {abs(self.pitch_rad):.3f} rad > "
                             f"{cfg.gate_max_pitch_rad} rad")
        if last_target is None:
            return "tracking", "no target applied yet"
        np.subtract(joints.position_rad, last_target, out=self._work)
        np.abs(self._work, out=self._work)
        error = float(self._work.max())
        if error > cfg.gate_max_tracking_error_rad:
            return "tracking", (f"tracking error {error:.3f} rad > "
                                f"{cfg.gate_max_tracking_error_rad} rad")
        if cfg.gate_min_feet_down > 0:
            if contacts is None:
                return "feet", "no contact data (set gate_min_feet_down=0 for a robot without)"
            force = contacts.force_n
            if getattr(force, "shape", None) != self._feet_mask.shape:
                return "feet", (f"contact forces shape {getattr(force, 'shape', None)}, "
                                f"expected {self._feet_mask.shape}")
            if abs(now_ns - contacts.timestamp_ns) > cfg.joints_stale_ms * 1e6:
                return "feet", "contact data stale"
            if not np.isfinite(force, out=self._feet_mask).all():
                return "feet", f"contact forces not finite: {force!r}"
            np.greater(force, self._contact_threshold_n, out=self._feet_mask)
            down = int(np.count_nonzero(self._feet_mask))
            if down < cfg.gate_min_feet_down:
                return "feet", f"{down} feet down < {cfg.gate_min_feet_down}"
        return None

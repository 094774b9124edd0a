"""Sensor health and the entry gate: the checks the safety layer runs on every tick's readings.

:meth:`SensorMonitor.fault` decides damping (joint state or IMU unusable or stale, a measured
joint velocity or position beyond the robot's limits, tilt beyond the limit); :meth:`SensorMonitor.gate_block` decides whether the policy may take over (depth fresh,
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
from hal.safety.targets import all_of

__all__ = ["SensorMonitor", "imu_quaternion", "SMALL_JOINT_VALUE"]

SMALL_JOINT_VALUE = 1e6
"""|position| (rad) and |velocity| (rad/s) up to which a joint reading counts as small (see
:attr:`SensorMonitor.joints_small`); real readings are orders of magnitude below it."""


def imu_quaternion(imu: ImuSample) -> tuple[float, float, float, float] | None:
    """The unit quaternion of a finite, well-formed IMU sample, else None."""
    quat, gyro = imu.quaternion_wxyz, imu.angular_velocity_rad_s
    accel = imu.linear_acceleration_m_s2
    if (type(quat) is np.ndarray and type(gyro) is np.ndarray and type(accel) is np.ndarray
            and quat.shape == (4,) and gyro.shape == accel.shape == (3,)
            and quat.dtype.kind == gyro.dtype.kind == accel.dtype.kind == "f"):
        # The usual sample, read as Python floats in one tolist() per array: indexing or iterating
        # an ndarray makes a numpy scalar per value, which is slow when the code is cold. Same
        # values, same checks as below.
        for v in gyro.tolist() + accel.tolist():
            if not math.isfinite(v):
                return None
        return normalized_quaternion(quat.tolist())
    try:
        if len(quat) != 4 or len(gyro) != 3 or len(accel) != 3:
            return None
        for v in (*gyro, *accel):
            if not math.isfinite(v):
                return None
        return normalized_quaternion(quat)
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
        self._shape = (n_joints,)
        # The unit quaternion of the last healthy IMU sample; roll and pitch are worked out from
        # it only when asked (the entry gate), not on every tick.
        self._quat: tuple[float, float, float, float] | None = None
        self._roll_pitch: tuple[float, float] | None = (0.0, 0.0)
        self._contact_threshold_n = float(contact_threshold_n)
        self.joints_small = False  # see joints_usable
        self._abs = np.zeros((2, n_joints))
        self._abs_q, self._abs_dq = self._abs
        self._small_limit = np.full((2, n_joints), SMALL_JOINT_VALUE)
        self._small = np.zeros((2, n_joints), dtype=bool)
        self._mask = np.zeros(n_joints, dtype=bool)
        self._work = np.zeros(n_joints)
        self._feet_mask = np.zeros(n_feet, dtype=bool)
        self._velocity_limit: np.ndarray | None = None
        self._velocity_streak = 0
        self._position_streak = 0
        self._position_bounds: tuple[np.ndarray, np.ndarray] | None = None
        self._joint_names: tuple[str, ...] = tuple(f"joint {i}" for i in range(n_joints))

    def set_joint_limits(self, lower_rad: np.ndarray, upper_rad: np.ndarray,
                         velocity_limit_rad_s: np.ndarray, names: tuple[str, ...]) -> None:
        """The robot's measured-joint limits (hardware order), scaled and widened by the config;
        :meth:`fault` then damps on a reading beyond them."""
        cfg = self.config
        if cfg.joint_velocity_limit_scale is not None:
            self._velocity_limit = (np.asarray(velocity_limit_rad_s, dtype=np.float64)
                                    * cfg.joint_velocity_limit_scale)
        if cfg.joint_position_margin_rad is not None:
            margin = cfg.joint_position_margin_rad
            self._position_bounds = (np.asarray(lower_rad, dtype=np.float64) - margin,
                                     np.asarray(upper_rad, dtype=np.float64) + margin)
        self._joint_names = tuple(names)

    def _limit_fault(self, joints: JointState, starting: bool) -> tuple[str, str] | None:
        """A measured joint velocity or position beyond the robot's limits (no allocation when
        all is well). A position beyond them refuses a start at once; while running it must last
        ``joint_position_limit_ticks`` ticks (a stop hit at speed gives for an instant)."""
        mask = self._mask
        if self._velocity_limit is not None:
            np.abs(joints.velocity_rad_s, out=self._abs_dq, dtype=np.float64)
            if not np.greater(self._abs_dq, self._velocity_limit, out=mask).any():
                self._velocity_streak = 0
            else:
                self._velocity_streak += 1
            if self._velocity_streak >= self.config.joint_velocity_limit_ticks:
                i = int(np.argmax(mask))
                return ev.REASON_JOINT_VELOCITY, (
                    f"{self._joint_names[i]} measured at {float(joints.velocity_rad_s[i]):.2f} "
                    f"rad/s, limit {self._velocity_limit[i]:.2f} rad/s, "
                    f"{self._velocity_streak} ticks in a row")
        if self._position_bounds is not None:
            lower, upper = self._position_bounds
            q = joints.position_rad
            np.less(q, lower, out=mask)
            if not mask.any():
                np.greater(q, upper, out=mask)
            if not mask.any():
                self._position_streak = 0
                return None
            self._position_streak += 1
            if starting or self._position_streak >= self.config.joint_position_limit_ticks:
                i = int(np.argmax(mask))
                return ev.REASON_JOINT_POSITION, (
                    f"{self._joint_names[i]} measured at {float(q[i]):.3f} rad, outside "
                    f"[{lower[i]:.3f}, {upper[i]:.3f}] (limits widened by "
                    f"{self.config.joint_position_margin_rad} rad), "
                    f"{self._position_streak} ticks in a row")
        return None

    @property
    def roll_rad(self) -> float:
        """Roll (rad) of the last IMU sample :meth:`fault` found healthy (0 before any)."""
        return self._attitude()[0]

    @property
    def pitch_rad(self) -> float:
        """Pitch (rad) of the last IMU sample :meth:`fault` found healthy (0 before any)."""
        return self._attitude()[1]

    def _attitude(self) -> tuple[float, float]:
        if self._roll_pitch is None:
            self._roll_pitch = roll_pitch(*self._quat)
        return self._roll_pitch

    def joints_usable(self, joints: JointState) -> bool:
        """Position and velocity have shape (n,) and are finite.

        Also sets :attr:`joints_small`: True when every |position| and |velocity| is at most
        :data:`SMALL_JOINT_VALUE` (finite and small enough that no torque-window term can
        overflow; see :meth:`TargetFilter.apply`).
        """
        self.joints_small = False
        shape = self._shape
        q, dq = joints.position_rad, joints.velocity_rad_s
        if getattr(q, "shape", None) != shape or getattr(dq, "shape", None) != shape:
            return False
        # The usual reading: small values are finite, so one bound check (and one reduction)
        # answers both questions. Anything else (or any error) gets the exact check below.
        # (|x| in float64 even for integers, whose own abs wraps at the most negative value.)
        try:
            np.abs(q, out=self._abs_q, dtype=np.float64)
            np.abs(dq, out=self._abs_dq, dtype=np.float64)
            np.less_equal(self._abs, self._small_limit, out=self._small)
            if all_of(self._small, axis=None):
                self.joints_small = True
                return True
        except Exception:  # noqa: BLE001 - the exact check below raises what it raises
            pass
        return bool(np.isfinite(q, out=self._mask).all() and np.isfinite(dq, out=self._mask).all())

    def fault(self, now_ns: int, joints: JointState, joints_usable: bool,
              imu: ImuSample, starting: bool = False) -> tuple[str, str] | None:
        """(reason, detail) of the first sensor problem, or None when the sensors are healthy.

        A timestamp further than the limit in the future counts as stale too (a broken clock).
        ``starting``: the check before a start (a joint past its stop refuses it at once).
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
        limit_fault = self._limit_fault(joints, starting)
        if limit_fault is not None:
            return limit_fault
        quat = imu_quaternion(imu)
        if quat is None:
            return ev.REASON_IMU_INVALID, (
                f"IMU sample must be finite with a non-zero quaternion; got quaternion "
                f"{imu.quaternion_wxyz!r}, gyro {imu.angular_velocity_rad_s!r}, "
                f"accel {imu.linear_acceleration_m_s2!r}")
        age_ms = (now_ns - imu.timestamp_ns) / 1e6
        if abs(age_ms) > cfg.imu_stale_ms:
            return ev.REASON_IMU_STALE, f"IMU data {age_ms:.1f} ms old > {cfg.imu_stale_ms} ms"
        self._quat, self._roll_pitch = quat, None
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

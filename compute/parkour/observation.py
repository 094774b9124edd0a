"""Build the policy observation (753 for a 12-joint robot) from a hardware observation
(docs/architecture.md#the-observation-and-the-actions).

The builder writes straight into a caller-owned float32 buffer (the engine's input buffer), with
views into that buffer prepared once, and keeps the 10-frame history in a preallocated ring: a
step allocates no arrays. Per step::

    builder.build_into(engine_obs, hw_obs, command, yaw, last_action)
    builder.depth_proprio_into(engine_proprio)   # on depth ticks: proprio with [6:8] zeroed

``hw_obs`` carries the HAL's arrays in **hardware order** (``joint_position_rad``,
``joint_velocity_rad_s``, ``imu_quaternion_wxyz``, ``imu_angular_velocity_rad_s``,
``foot_force_n`` in the robot's foot order); the builder maps joints into the policy order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from hal.robot import RobotConfig

from compute.parkour.layout import ANG_VEL_SCALE, JOINT_VEL_SCALE, YAW_SCALE, ObservationLayout

__all__ = ["MODES", "HardwareObservation", "PolicyCommand", "ObservationBuilder",
           "roll_pitch_from_quaternion", "yaw_from_quaternion", "wrap_angle"]

MODES = ("parkour", "walk")
"""Command modes; one-hot at proprio [11] (parkour) and [12] (walk)."""


class HardwareObservation(Protocol):
    """What the builder reads from an observation slot (arrays in hardware order)."""

    joint_position_rad: np.ndarray
    joint_velocity_rad_s: np.ndarray
    imu_quaternion_wxyz: np.ndarray
    imu_angular_velocity_rad_s: np.ndarray
    foot_force_n: np.ndarray


@dataclass(frozen=True, slots=True)
class PolicyCommand:
    """The operator's command: forward speed (m/s, trained on 0–1.5), the terrain mode, and a
    yaw rate (rad/s, positive to the left) that turns the heading command of a policy that is
    steered by heading (a teacher)."""

    forward_speed_m_s: float = 0.0
    mode: str = "parkour"
    yaw_rate_rad_s: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"command mode {self.mode!r} is not one of {MODES}")
        for name in ("forward_speed_m_s", "yaw_rate_rad_s"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite, found {getattr(self, name)}")


def roll_pitch_from_quaternion(w: float, x: float, y: float, z: float) -> tuple[float, float]:
    """Roll and pitch (rad, ZYX Euler convention as in training) of a (normalised) quaternion."""
    norm = math.sqrt(w * w + x * x + y * y + z * z)
    if not norm > 1e-9:
        raise ValueError(f"IMU quaternion ({w}, {x}, {y}, {z}) has no orientation (norm {norm})")
    w, x, y, z = w / norm, x / norm, y / norm, z / norm
    roll = math.atan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2.0 * (w * y - z * x))))
    return roll, pitch


def yaw_from_quaternion(w: float, x: float, y: float, z: float) -> float:
    """Yaw (rad, ZYX Euler convention as in training's ``euler_from_quaternion``)."""
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def wrap_angle(angle_rad: float) -> float:
    """``angle_rad`` wrapped into [-pi, pi)."""
    return (angle_rad + math.pi) % (2.0 * math.pi) - math.pi


class ObservationBuilder:
    """Writes the policy observation for one robot into a caller-owned float32 buffer.

    Args:
        robot: joint order, default angles, foot count and contact threshold come from it.
    """

    def __init__(self, robot: RobotConfig) -> None:
        self.robot = robot
        self.layout = ObservationLayout.from_robot(robot)
        lay = self.layout
        self._hw_to_policy = np.ascontiguousarray(robot.hardware_to_policy, dtype=np.intp)
        self._feet_to_policy = np.ascontiguousarray(robot.feet_hardware_to_policy, dtype=np.intp)
        self._forces = np.zeros(robot.n_feet, dtype=np.float32)
        self._default = np.asarray(robot.default_angles, dtype=np.float32).copy()
        # Constants as 0-d float32 arrays: ufuncs then create no temporaries for them.
        self._threshold_n = np.array(robot.contact_force_threshold_n, dtype=np.float32)
        self._ang_vel_scale = np.array(ANG_VEL_SCALE, dtype=np.float32)
        self._joint_vel_scale = np.array(JOINT_VEL_SCALE, dtype=np.float32)
        self._yaw_scale = np.array(YAW_SCALE, dtype=np.float32)
        self._half = np.array(0.5, dtype=np.float32)
        self._clip_hi = np.array(lay.observation_clip, dtype=np.float32)
        self._clip_lo = np.array(-lay.observation_clip, dtype=np.float32)
        p, h = lay.proprio_dim, lay.history_len
        self._frame = np.zeros(p, dtype=np.float32)
        self._frame_masked = np.zeros(p, dtype=np.float32)
        # Every frame is written twice (rows i and i+h) so the newest h frames, oldest first, are
        # always the contiguous rows [head, head+h): one copy into the output, no reordering.
        self._ring = np.zeros((2 * h, p), dtype=np.float32)
        self._windows = [self._ring[i: i + h] for i in range(h)]
        self._ring_rows = [(self._ring[i], self._ring[i + h]) for i in range(h)]
        self._head = 0
        self._contact_now = np.zeros(lay.n_feet, dtype=bool)
        self._contact_last = np.zeros(lay.n_feet, dtype=bool)
        self._contact_filt = np.zeros(lay.n_feet, dtype=bool)
        f = self._frame
        self._f_ang_vel = f[slice(*lay.ang_vel)]
        self._f_yaw = f[slice(*lay.yaw)]
        self._f_joint_pos = f[slice(*lay.joint_pos)]
        self._f_joint_vel = f[slice(*lay.joint_vel)]
        self._f_last_action = f[slice(*lay.last_action)]
        self._f_contact = f[slice(*lay.contact)]
        self._m_yaw = self._frame_masked[slice(*lay.yaw)]
        self._bound: np.ndarray | None = None
        self._views: tuple[np.ndarray, ...] = ()
        self._own_out = np.zeros(lay.obs_dim, dtype=np.float32)
        self._started = False

    @property
    def obs_dim(self) -> int:
        return self.layout.obs_dim

    @property
    def proprio_dim(self) -> int:
        return self.layout.proprio_dim

    @property
    def proprio_masked(self) -> np.ndarray:
        """The latest proprio frame with the yaw terms [6:8] zeroed (read-only view)."""
        view = self._frame_masked.view()
        view.flags.writeable = False
        return view

    def reset(self) -> None:
        """Start a new episode: the next step refills the history and clears the contact filter."""
        self._started = False
        self._head = 0
        self._contact_last[:] = False
        self._frame[:] = 0.0
        self._frame_masked[:] = 0.0

    def _bind(self, out: np.ndarray) -> None:
        lay = self.layout
        if not isinstance(out, np.ndarray) or out.dtype != np.float32:
            raise TypeError(f"observation buffer must be a float32 numpy array, found "
                            f"{getattr(out, 'dtype', type(out).__name__)}")
        if out.size != lay.obs_dim or out.shape not in ((lay.obs_dim,), (1, lay.obs_dim)):
            raise ValueError(f"observation buffer has shape {out.shape}, expected "
                             f"({lay.obs_dim},) or (1, {lay.obs_dim})")
        if not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError("observation buffer must be C-contiguous and writeable")
        flat = out.reshape(-1)
        hist = flat[slice(*lay.history)].reshape(lay.history_len, lay.proprio_dim)
        self._views = (flat, flat[slice(*lay.proprio)], flat[lay.scan[0]: lay.history[0]], hist,
                       flat[slice(*lay.scan)])
        self._bound = out

    def build_into(self, out: np.ndarray, observation: HardwareObservation,
                   command: PolicyCommand, yaw: np.ndarray, last_action: np.ndarray,
                   heading: np.ndarray | None = None, scan: np.ndarray | None = None) -> None:
        """Write the full observation for this step into ``out`` and advance the history.

        Args:
            out: float32 buffer of shape (obs_dim,) or (1, obs_dim), C-contiguous; views into it
                are prepared the first time a buffer is seen, so pass the same buffer each step.
            observation: the hardware observation (arrays in hardware order, float32).
            command: forward speed and mode.
            yaw: the depth step's 2 yaw values (the builder writes 1.5 × yaw into [6:8]); zeros
                when there is no depth estimate (teacher).
            last_action: the previous raw policy action (policy order, before clip and scale).
            heading: when given, the two values for [6:8] as they are (a teacher's heading
                errors), instead of 1.5 × ``yaw``.
            scan: when given, the height-scan block's values (132 for the legged_gym grid);
                zeros otherwise.
        """
        if out is not self._bound:
            self._bind(out)
        flat, proprio, non_proprio, history, scan_block = self._views
        lay = self.layout
        f = self._frame

        np.multiply(observation.imu_angular_velocity_rad_s, self._ang_vel_scale,
                    out=self._f_ang_vel)
        q = observation.imu_quaternion_wxyz
        f[3], f[4] = roll_pitch_from_quaternion(float(q[0]), float(q[1]), float(q[2]), float(q[3]))
        f[5] = 0.0
        if heading is None:
            np.multiply(yaw, self._yaw_scale, out=self._f_yaw)
        else:
            np.copyto(self._f_yaw, heading)
        f[8] = 0.0
        f[9] = 0.0
        f[lay.forward_speed] = command.forward_speed_m_s
        parkour = command.mode == "parkour"
        f[lay.parkour_flag] = 1.0 if parkour else 0.0
        f[lay.walk_flag] = 0.0 if parkour else 1.0
        # ndarray.take with mode="clip" writes straight into ``out`` (mode="raise" buffers it);
        # the indices are a permutation, so clipping never changes them.
        observation.joint_position_rad.take(self._hw_to_policy, out=self._f_joint_pos, mode="clip")
        np.subtract(self._f_joint_pos, self._default, out=self._f_joint_pos)
        observation.joint_velocity_rad_s.take(self._hw_to_policy, out=self._f_joint_vel,
                                              mode="clip")
        np.multiply(self._f_joint_vel, self._joint_vel_scale, out=self._f_joint_vel)
        np.copyto(self._f_last_action, last_action)
        observation.foot_force_n.take(self._feet_to_policy, out=self._forces, mode="clip")
        np.greater(self._forces, self._threshold_n, out=self._contact_now)
        np.logical_or(self._contact_now, self._contact_last, out=self._contact_filt)
        np.copyto(self._contact_last, self._contact_now)
        np.copyto(self._f_contact, self._contact_filt)
        np.subtract(self._f_contact, self._half, out=self._f_contact)

        np.copyto(self._frame_masked, f)
        self._m_yaw.fill(0.0)
        # Clipping the stored frame equals clipping the output later; the depth step then sees
        # the clipped proprio, as in training.
        self._clip(self._frame_masked)
        if not self._started:
            self._ring[:] = self._frame_masked
            self._started = True

        np.copyto(proprio, f)
        non_proprio.fill(0.0)
        if scan is not None:
            np.copyto(scan_block, scan)
        np.copyto(history, self._windows[self._head])
        self._clip(flat)

        first, second = self._ring_rows[self._head]
        np.copyto(first, self._frame_masked)
        np.copyto(second, self._frame_masked)
        self._head = (self._head + 1) % lay.history_len

    def _clip(self, values: np.ndarray) -> None:
        np.minimum(values, self._clip_hi, out=values)
        np.maximum(values, self._clip_lo, out=values)

    def build(self, observation: HardwareObservation, command: PolicyCommand, yaw: np.ndarray,
              last_action: np.ndarray) -> np.ndarray:
        """Like :meth:`build_into` with an internal buffer (overwritten by the next call)."""
        self.build_into(self._own_out, observation, command, yaw, last_action)
        return self._own_out

    def resume_from(self, observation: np.ndarray) -> None:
        """Continue a run from one of its built observations (a replay that starts mid-run).

        The history window and the contact filter are set so that the next :meth:`build_into`
        on that step's hardware observation reproduces ``observation``: the history rows come
        from it, and the filter's "contact on the previous step" is its filtered contact (the
        step's own contact is a subset of it). The last action is the caller's (it is an input).
        """
        lay = self.layout
        history = np.asarray(observation, dtype=np.float32).reshape(-1)[slice(*lay.history)]
        history = history.reshape(lay.history_len, lay.proprio_dim)
        self.reset()
        self._ring[: lay.history_len] = history
        self._ring[lay.history_len:] = history
        self._head = 0
        self._started = True
        self._contact_last[:] = np.asarray(observation).reshape(-1)[slice(*lay.contact)] > 0.0

    def depth_proprio_into(self, out: np.ndarray) -> None:
        """Copy the latest proprio frame with [6:8] zeroed into ``out`` ((P,) or (1, P)).

        This is the depth step's ``proprio`` input (the training code zeroes the yaw terms
        before the depth encoder sees them). Call it after :meth:`build_into`.
        """
        np.copyto(out, self._frame_masked)

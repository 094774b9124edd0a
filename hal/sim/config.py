"""Configuration of the simulated world (:class:`MujocoWorldConfig`) and its orientation helper."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hal.sim.mjcf import QuadrupedGeometry
from hal.sim.scenes import SCENES, SceneBox

__all__ = ["MujocoWorldConfig", "quaternion_from_euler"]


@dataclass(frozen=True)
class MujocoWorldConfig:
    """How the simulated world is built and started.

    Attributes:
        scene: one of :data:`hal.sim.scenes.SCENES` (``flat``, ``parkour``).
        seed: seeds the sensor noise generator.
        physics_dt_s: MuJoCo timestep; 0.005 matches training, 0.002 is stiffer and 2.5x dearer.
        camera_fps: depth frames per second of simulated time; 0 disables the camera.
        camera_width, camera_height: frame size; None = the robot's training camera (106x60).
        camera_horizontal_fov_deg: None = the training camera's (87 degrees).
        camera_min_range_m: nearer depths read -inf (ZED "too close"); 0 disables.
        camera_max_range_m: farther depths and misses read +inf (ZED "too far").
        depth_noise_std_m, gyro_noise_std_rad_s, accel_noise_std_m_s2: Gaussian sensor noise.
        base_height_m: initial trunk height; None = lowest point of the robot on the ground.
        initial_roll_deg, initial_pitch_deg, initial_yaw_deg: initial trunk orientation
            (z-y-x Euler angles; positive pitch is nose down).
        initial_joint_positions_rad: hardware order; None = the robot's default angles.
        settle_s: simulated time the robot holds its initial pose (robot kp/kd) before the clock
            starts; 0 leaves it exactly as placed.
        fixed_base: weld the trunk in place (legs move in the air at ``base_height_m``).
        extra_boxes: static obstacles added to the scene.
        clock_origin_ns: timestamp of sim time 0; None = ``time.monotonic_ns()`` after settling.
        render_thread: cast depth frames on their own thread from a state snapshot (frames
            appear a cast's time after capture, like a real camera's; keeps the 1.5–2 ms cast
            off a real-time control loop). False casts synchronously inside ``advance``, which
            makes frame arrival deterministic for tests and ``--fast`` runs.
        height_scan_points_xy: (x, y) points of the yaw-aligned base frame at which the
            simulated height scanner measures the base's height above the terrain; None: no
            scanner.
        action_delay_s: a command takes effect this long (simulated time) after it was written,
            as a real robot's command latency delays it.
        geometry: link dimensions, mass properties and joint/contact parameters of the model;
            None = the robot's published geometry (:func:`hal.sim.mjcf.geometry_for`). For
            studies of the model (``benchmarks/gait_drift.py``, the symmetry tests).
    """

    scene: str = "flat"
    seed: int = 0
    physics_dt_s: float = 0.005
    camera_fps: float = 30.0
    camera_width: int | None = None
    camera_height: int | None = None
    camera_horizontal_fov_deg: float | None = None
    camera_min_range_m: float = 0.0
    camera_max_range_m: float = 10.0
    depth_noise_std_m: float = 0.0
    gyro_noise_std_rad_s: float = 0.0
    accel_noise_std_m_s2: float = 0.0
    base_height_m: float | None = None
    initial_roll_deg: float = 0.0
    initial_pitch_deg: float = 0.0
    initial_yaw_deg: float = 0.0
    initial_joint_positions_rad: tuple[float, ...] | None = None
    settle_s: float = 2.0
    fixed_base: bool = False
    extra_boxes: tuple[SceneBox, ...] = ()
    clock_origin_ns: int | None = None
    render_thread: bool = False
    height_scan_points_xy: tuple[tuple[float, float], ...] | None = None
    action_delay_s: float = 0.0
    geometry: QuadrupedGeometry | None = None

    def __post_init__(self) -> None:
        if self.scene not in SCENES:
            raise ValueError(f"scene {self.scene!r} is unknown; valid scenes: {', '.join(SCENES)}")
        if not 1e-4 <= self.physics_dt_s <= 0.01:
            raise ValueError(f"physics_dt_s must be in [0.0001, 0.01] s, found {self.physics_dt_s}")
        if abs(self.physics_dt_s * 1e9 - round(self.physics_dt_s * 1e9)) > 1e-3:
            raise ValueError("physics_dt_s must be a whole number of nanoseconds, "
                             f"found {self.physics_dt_s}")
        if not (math.isfinite(self.camera_fps) and self.camera_fps >= 0):
            raise ValueError(f"camera_fps must be >= 0 (0 disables the camera), found {self.camera_fps}")
        if (self.camera_width is None) != (self.camera_height is None):
            raise ValueError("set both camera_width and camera_height, or neither (training camera); "
                             f"found {self.camera_width}x{self.camera_height}")
        for name in ("depth_noise_std_m", "gyro_noise_std_rad_s", "accel_noise_std_m_s2", "settle_s",
                     "camera_min_range_m", "action_delay_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, found {value}")
        if not self.camera_max_range_m > self.camera_min_range_m:
            raise ValueError(f"camera_max_range_m ({self.camera_max_range_m}) must exceed "
                             f"camera_min_range_m ({self.camera_min_range_m})")
        if self.height_scan_points_xy is not None and not all(
                len(p) == 2 and all(math.isfinite(v) for v in p) for p in self.height_scan_points_xy):
            raise ValueError("height_scan_points_xy must be (x, y) pairs of finite numbers")
        if self.base_height_m is not None and not math.isfinite(self.base_height_m):
            raise ValueError(f"base_height_m must be finite or None, found {self.base_height_m}")


def quaternion_from_euler(roll_rad: float, pitch_rad: float, yaw_rad: float) -> np.ndarray:
    """(w, x, y, z) of R = Rz(yaw) Ry(pitch) Rx(roll)."""
    cr, sr = math.cos(roll_rad / 2), math.sin(roll_rad / 2)
    cp, sp = math.cos(pitch_rad / 2), math.sin(pitch_rad / 2)
    cy, sy = math.cos(yaw_rad / 2), math.sin(yaw_rad / 2)
    return np.array([cr * cp * cy + sr * sp * sy, sr * cp * cy - cr * sp * sy,
                     cr * sp * cy + sr * cp * sy, cr * cp * sy - sr * sp * cy])

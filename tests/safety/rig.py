"""A small driver for SafetyLayer tests: sensor readings on a clock, with the joints following the
applied targets (perfect tracking, up to the joint limits) unless told otherwise. No mocks: the layer is the real one."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hal.devices.base import CONTROL_MODE_POSITION, ContactSample, ImuSample, JointState
from hal.robot import load_robot
from hal.safety import SafetyConfig, SafetyLayer

DT_NS = 20_000_000  # 50 Hz
# The clamping torque window and an unprimed gate keep the per-tick checks in view; the default
# counting window and the priming time have tests of their own.
FAST = dict(stand_up_duration_s=0.4, blend_duration_s=0.1, stand_ramp_duration_s=0.2,
            gate_settle_ticks=2, torque_window="clamp", gate_min_ready_s=0.0)


def by_name(robot, values_policy_order):
    """Hardware-order array built by joint name (independent of the layer's index arrays)."""
    lookup = dict(zip(robot.joint_names_policy, values_policy_order, strict=True))
    return np.array([lookup[name] for name in robot.joint_names_hardware], dtype=np.float64)


def quat_rpy(roll: float = 0.0, pitch: float = 0.0) -> np.ndarray:
    """Quaternion (w, x, y, z) of roll about x then pitch about y: q = qy(pitch) * qx(roll)."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    return np.array([cp * cr, cp * sr, sp * cr, -sp * sr])


@dataclass
class Out:
    target: np.ndarray
    kp: np.ndarray
    kd: np.ndarray
    mode: int
    timestamp_ns: int


class Rig:
    def __init__(self, robot_name: str = "go2", **overrides):
        self.robot = load_robot(robot_name)
        values = dict(FAST)
        values.update(overrides)
        self.config = SafetyConfig(**values)
        self.layer = SafetyLayer(self.robot, self.config)
        self.n = self.robot.n_joints
        self.default = by_name(self.robot, self.robot.default_angles)
        self.lower = by_name(self.robot, self.robot.position_lower)
        self.upper = by_name(self.robot, self.robot.position_upper)
        self.tau = by_name(self.robot, self.robot.torque_limit)
        # The action range a trained policy may command: default ± clip × scale, with the
        # [control] values of hal/robots/go2.toml and a1.toml (action_clip 4.8, action_scale 0.25).
        # The layer accepts 1e-5 rad past either end (a float32 target's rounding).
        self.action_lo = self.default - 4.8 * 0.25 - 1e-5
        self.action_hi = self.default + 4.8 * 0.25 + 1e-5
        self.kp = by_name(self.robot, self.robot.kp)
        self.kd = by_name(self.robot, self.robot.kd)
        self.t = 10_000_000_000
        self.q = self.default.copy()
        self.dq = np.zeros(self.n)
        self.quat = np.array([1.0, 0.0, 0.0, 0.0])
        self.feet = np.full(self.robot.n_feet, 60.0)
        self.follow = True
        self.history: list[Out] = []

    def tick(self, targets=None, kp=None, kd=None, *, depth_age_ms: float | None = 0.0,
             joints_age_ms: float = 0.0, imu_age_ms: float = 0.0, contacts=True,
             q=None, dq=None, quat=None, gyro=None) -> Out:
        self.t += DT_NS
        joints = JointState(position_rad=self.q.copy() if q is None else q,
                            velocity_rad_s=self.dq.copy() if dq is None else dq,
                            torque_nm=np.zeros(self.n),
                            timestamp_ns=self.t - int(joints_age_ms * 1e6))
        imu = ImuSample(quaternion_wxyz=self.quat.copy() if quat is None else quat,
                        angular_velocity_rad_s=np.zeros(3) if gyro is None else gyro,
                        linear_acceleration_m_s2=np.array([0.0, 0.0, 9.81]),
                        timestamp_ns=self.t - int(imu_age_ms * 1e6))
        contact = ContactSample(self.feet.copy(), self.t) if contacts else None
        depth_ts = None if depth_age_ms is None else self.t - int(depth_age_ms * 1e6)
        cmd = self.layer.step(self.t, joints, imu, contacts=contact, depth_timestamp_ns=depth_ts,
                              policy_targets_hw=targets, policy_kp_hw=kp, policy_kd_hw=kd)
        out = Out(cmd.target_rad.copy(), cmd.kp.copy(), cmd.kd.copy(), cmd.mode, cmd.timestamp_ns)
        if self.follow and cmd.mode == CONTROL_MODE_POSITION:
            # Perfect tracking up to the joint's hard stop (a target past a limit pushes the
            # joint against its stop, as the simulator's and the robot's stops hold it).
            self.q = np.clip(out.target, self.lower, self.upper)
        self.history.append(out)
        return out

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The bounds of the last tick's target: the action range in ``policy`` (the default
        ``policy_targets_past_limits="pass"``), its overlap with the limits under "clamp", else
        the joint limits."""
        if self.layer.mode != "policy":
            return self.lower, self.upper
        if self.config.policy_targets_past_limits == "clamp":
            return np.maximum(self.action_lo, self.lower), np.minimum(self.action_hi, self.upper)
        return self.action_lo, self.action_hi

    def run_until(self, mode: str, max_ticks: int = 200, **kwargs) -> Out:
        for _ in range(max_ticks):
            out = self.tick(**kwargs)
            if self.layer.mode == mode:
                return out
        raise AssertionError(f"mode {mode!r} not reached in {max_ticks} ticks; at "
                             f"{self.layer.mode}; events {self.layer.events()}")

    def to_ready(self) -> None:
        assert self.layer.request_start()
        self.run_until("ready")

    def to_policy(self, targets=None, **kwargs) -> np.ndarray:
        targets = self.default.copy() if targets is None else targets
        self.to_ready()
        self.run_until("policy", targets=targets, **kwargs)
        return targets

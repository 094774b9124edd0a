"""The Go2's messages without a robot: motor slots, ``LowCmd_`` packing, ``LowState_`` unpacking,
the entry checks and the foot-pad calibration, as pure functions (used by
:mod:`hal.backends.unitree_go2`, which re-exports them; tested without the SDK).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hal.devices.base import CONTROL_MODE_DAMP, CONTROL_MODE_POSITION, JointCommand

if TYPE_CHECKING:
    from hal.backends.unitree_go2 import UnitreeGo2Config

__all__ = [
    "GO2_MOTOR_NAMES", "GO2_FOOT_NAMES", "GO2_MOTOR_SLOTS", "POS_STOP_F", "VEL_STOP_F", "SERVO_MODE",
    "LOW_CMD_HEAD", "LEVEL_LOW", "LowCmdArrays", "Go2State", "motor_slots", "low_cmd_arrays",
    "low_state_arrays", "lost_since", "foot_force_newton", "entry_problems",
]

# LowCmd_.motor_cmd / LowState_.motor_state slot of each leg joint (Unitree's FR_0 … RL_2).
GO2_MOTOR_NAMES: tuple[str, ...] = (
    "FR_hip_joint", "FR_thigh_joint", "FR_calf_joint",
    "FL_hip_joint", "FL_thigh_joint", "FL_calf_joint",
    "RR_hip_joint", "RR_thigh_joint", "RR_calf_joint",
    "RL_hip_joint", "RL_thigh_joint", "RL_calf_joint",
)
GO2_FOOT_NAMES: tuple[str, ...] = ("FR_foot", "FL_foot", "RR_foot", "RL_foot")  # LowState_.foot_force
GO2_MOTOR_SLOTS = 20
POS_STOP_F = 2.146e9  # "no position target" marker of Unitree's firmware
VEL_STOP_F = 16000.0  # "no velocity target" marker
SERVO_MODE = 0x01  # motor_cmd.mode: PMSM servo (0x00 is brake/off)
LOW_CMD_HEAD = (0xFE, 0xEF)
LEVEL_LOW = 0xFF



def motor_slots(joint_names: tuple[str, ...]) -> np.ndarray:
    """Motor slot of each joint in ``joint_names`` (hardware order → ``motor_cmd`` index).

    Raises:
        ValueError: a name is not a Go2 leg joint, or one repeats.
    """
    unknown = [n for n in joint_names if n not in GO2_MOTOR_NAMES]
    if unknown or len(set(joint_names)) != len(joint_names) or not joint_names:
        raise ValueError(f"joint names {list(joint_names)} must be distinct Go2 leg joints; unknown: "
                         f"{unknown}; valid: {list(GO2_MOTOR_NAMES)}")
    return np.array([GO2_MOTOR_NAMES.index(n) for n in joint_names], dtype=np.intp)


@dataclass(frozen=True)
class LowCmdArrays:
    """Per-slot values of one ``LowCmd_`` (all :data:`GO2_MOTOR_SLOTS` slots)."""

    mode: np.ndarray  # uint8
    q: np.ndarray
    dq: np.ndarray
    kp: np.ndarray
    kd: np.ndarray
    tau: np.ndarray


def low_cmd_arrays(command: JointCommand, slots: np.ndarray) -> LowCmdArrays:
    """Pack a hardware-order command into ``LowCmd_`` slot values.

    Position mode: ``q = target``, ``dq = 0`` (damping towards rest), the given gains, no
    feed-forward torque. Damp mode: ``kp = 0``, ``q = POS_STOP_F``, ``dq = 0``, the given ``kd``.
    Slots without a joint keep Unitree's "stopped" values (``q = POS_STOP_F``, ``dq = VEL_STOP_F``,
    no gains).
    """
    n = len(slots)
    target, kp, kd = (np.asarray(a, dtype=np.float64) for a in (command.target_rad, command.kp, command.kd))
    for name, arr in (("target_rad", target), ("kp", kp), ("kd", kd)):
        if arr.shape != (n,):
            raise ValueError(f"JointCommand.{name} must have shape ({n},), got {arr.shape}")
    out = LowCmdArrays(mode=np.full(GO2_MOTOR_SLOTS, SERVO_MODE, dtype=np.uint8),
                       q=np.full(GO2_MOTOR_SLOTS, POS_STOP_F), dq=np.full(GO2_MOTOR_SLOTS, VEL_STOP_F),
                       kp=np.zeros(GO2_MOTOR_SLOTS), kd=np.zeros(GO2_MOTOR_SLOTS), tau=np.zeros(GO2_MOTOR_SLOTS))
    out.dq[slots] = 0.0
    out.kd[slots] = kd
    if command.mode == CONTROL_MODE_POSITION:
        out.q[slots] = target
        out.kp[slots] = kp
    elif command.mode != CONTROL_MODE_DAMP:
        raise ValueError(f"JointCommand.mode {command.mode!r} is unknown; valid: {CONTROL_MODE_POSITION} "
                         f"(position), {CONTROL_MODE_DAMP} (damp)")
    return out


@dataclass(frozen=True)
class Go2State:
    """One ``LowState_`` unpacked into hardware-order arrays."""

    position_rad: np.ndarray
    velocity_rad_s: np.ndarray
    torque_nm: np.ndarray
    quaternion_wxyz: np.ndarray
    angular_velocity_rad_s: np.ndarray
    linear_acceleration_m_s2: np.ndarray
    foot_force_raw: np.ndarray
    tick: int
    motor_temperature_c: np.ndarray
    motor_lost: np.ndarray  # running lost-packet count per motor (uint32, wraps)


def low_state_arrays(msg: Any, slots: np.ndarray, foot_slots: np.ndarray) -> Go2State:
    """Read a ``LowState_`` (``motor_state[i].q/dq/tau_est/temperature/lost``,
    ``imu_state.quaternion`` (w, x, y, z), ``gyroscope``, ``accelerometer``, ``foot_force``,
    ``tick``) into :class:`Go2State`."""
    motors = msg.motor_state
    imu = msg.imu_state
    return Go2State(
        position_rad=np.array([motors[i].q for i in slots], dtype=np.float64),
        velocity_rad_s=np.array([motors[i].dq for i in slots], dtype=np.float64),
        torque_nm=np.array([motors[i].tau_est for i in slots], dtype=np.float64),
        quaternion_wxyz=np.array(imu.quaternion, dtype=np.float64),
        angular_velocity_rad_s=np.array(imu.gyroscope, dtype=np.float64),
        linear_acceleration_m_s2=np.array(imu.accelerometer, dtype=np.float64),
        foot_force_raw=np.array([msg.foot_force[i] for i in foot_slots], dtype=np.float64),
        tick=int(msg.tick),
        motor_temperature_c=np.array([motors[i].temperature for i in slots], dtype=np.float64),
        motor_lost=np.array([motors[i].lost for i in slots], dtype=np.int64),
    )


def lost_since(first: Go2State, last: Go2State) -> np.ndarray:
    return (last.motor_lost - first.motor_lost) % (1 << 32)  # the counters are uint32 and wrap


def entry_problems(first: Go2State, last: Go2State, seconds: float, config: UnitreeGo2Config) -> list[str]:
    """Why the robot must not start, from two states ``seconds`` apart (empty: fine).

    Names each motor hotter than ``max_motor_temperature_c`` and each whose lost-packet count
    rose faster than ``max_lost_per_s``.
    """
    problems = []
    for name, temp in zip(config.joint_names, last.motor_temperature_c):
        if temp >= config.max_motor_temperature_c:
            problems.append(f"{name} is at {temp:.0f} °C (limit {config.max_motor_temperature_c:.0f} °C)")
    rate = lost_since(first, last) / max(seconds, 1e-9)
    for name, per_s in zip(config.joint_names, rate):
        if per_s > config.max_lost_per_s:
            problems.append(f"{name} loses {per_s:.0f} packets/s (limit {config.max_lost_per_s:g}/s)")
    return problems


def foot_force_newton(raw: np.ndarray, offset: np.ndarray, scale_n: float) -> np.ndarray:
    """Calibrated foot-pad forces: ``max(0, (raw − offset) · scale)``."""
    return np.maximum(0.0, (np.asarray(raw, dtype=np.float64) - np.asarray(offset, dtype=np.float64)) * scale_n)

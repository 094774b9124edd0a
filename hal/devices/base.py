"""Abstract device bases: one per device kind, each with a connect/close lifecycle.

The HAL server talks only to these bases; every backend (MuJoCo simulator, ZED camera, serial motor
bus, recorded playback, Unitree SDK) lives in its own module and implements one or more of them.
Arrays are in **hardware order** (the order of ``RobotConfig.joint_names_hardware``); feet are in
``RobotConfig.foot_names`` order. Timestamps are ``time.monotonic_ns()`` of the moment the data was
measured (or the simulator's clock mapped onto it), so the server can detect stale data.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = [
    "DeviceError",
    "DeviceNotConnectedError",
    "Device",
    "ImuSample",
    "Imu",
    "JointState",
    "JointCommand",
    "JointDriver",
    "ContactSample",
    "FootContactSensor",
    "HeightScanSample",
    "HeightScanner",
    "CameraIntrinsics",
    "DepthFrameInfo",
    "DepthCamera",
    "Steppable",
    "CONTROL_MODE_POSITION",
    "CONTROL_MODE_DAMP",
]

CONTROL_MODE_POSITION = 0
"""PD position control: tau = kp (target - q) - kd dq."""
CONTROL_MODE_DAMP = 1
"""Damping only: kp = 0, kd > 0; targets are ignored."""


class DeviceError(RuntimeError):
    """A device could not be opened, or failed while running."""


class DeviceNotConnectedError(DeviceError):
    """A device was used before ``connect()`` or after ``close()``."""


class Device(abc.ABC):
    """Lifecycle shared by all devices: ``connect()``, ``close()``, and use as a context manager."""

    @property
    @abc.abstractmethod
    def is_connected(self) -> bool:
        """True between a successful ``connect()`` and ``close()``."""

    @abc.abstractmethod
    def connect(self) -> None:
        """Open the device. Raises :class:`DeviceError` with a message saying what to check."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the device. Safe to call twice and after a failed ``connect()``."""

    def __enter__(self):
        self.connect()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


@dataclass(slots=True)
class ImuSample:
    """One IMU reading in the base (body) frame."""

    quaternion_wxyz: np.ndarray  # (4,) float, orientation of the base in the world frame
    angular_velocity_rad_s: np.ndarray  # (3,) float, body frame
    linear_acceleration_m_s2: np.ndarray  # (3,) float, body frame, includes gravity (+9.81 up at rest)
    timestamp_ns: int


class Imu(Device):
    """An inertial measurement unit on the robot's base."""

    @abc.abstractmethod
    def read(self) -> ImuSample:
        """The newest sample (its timestamp tells how old it is); never blocks for long."""


@dataclass(slots=True)
class JointState:
    """Encoder readings in hardware order."""

    position_rad: np.ndarray  # (n,)
    velocity_rad_s: np.ndarray  # (n,)
    torque_nm: np.ndarray  # (n,) measured or estimated; zeros where the hardware has none
    timestamp_ns: int


@dataclass(slots=True)
class JointCommand:
    """What a joint driver applies, in hardware order. Only the safety layer builds these."""

    target_rad: np.ndarray  # (n,)
    kp: np.ndarray  # (n,)
    kd: np.ndarray  # (n,)
    mode: int = CONTROL_MODE_POSITION
    timestamp_ns: int = 0


class JointDriver(Device):
    """Motors with encoders: PD targets in, joint state out."""

    @property
    @abc.abstractmethod
    def joint_names(self) -> tuple[str, ...]:
        """Joint names in hardware order (must equal the robot definition's)."""

    @abc.abstractmethod
    def read(self) -> JointState:
        """The newest encoder readings."""

    @abc.abstractmethod
    def write(self, command: JointCommand) -> None:
        """Apply PD targets and gains. Backends must not alter values that passed the safety layer."""

    def damp(self, kd: np.ndarray) -> None:
        """Damping only (kp = 0): the safe state every fault and every shutdown ends in."""
        n = len(self.joint_names)
        self.write(JointCommand(target_rad=np.zeros(n), kp=np.zeros(n), kd=np.asarray(kd, float),
                                mode=CONTROL_MODE_DAMP))


@dataclass(slots=True)
class ContactSample:
    """Foot contact forces (N, normal component) in the robot definition's foot order."""

    force_n: np.ndarray  # (n_feet,)
    timestamp_ns: int


class FootContactSensor(Device):
    """Foot contact force sensors (Go2 foot pads, sim contacts)."""

    @abc.abstractmethod
    def read(self) -> ContactSample:
        """The newest forces."""


@dataclass(slots=True)
class HeightScanSample:
    """Height of the base above the terrain (m) at each of the scanner's sample points."""

    base_height_m: np.ndarray  # (n_points,)
    timestamp_ns: int


class HeightScanner(Device):
    """Measures the terrain under and around the base at fixed points of the yaw-aligned base
    frame (a simulator's ray casts; an elevation map on a robot that has one)."""

    @property
    @abc.abstractmethod
    def n_points(self) -> int:
        """Number of sample points (the length of every sample)."""

    @abc.abstractmethod
    def read(self) -> HeightScanSample:
        """The newest measurement."""


@dataclass(frozen=True, slots=True)
class CameraIntrinsics:
    """Pinhole intrinsics of a depth frame, in pixels of that frame."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @property
    def horizontal_fov_deg(self) -> float:
        return float(np.degrees(2.0 * np.arctan(self.width / (2.0 * self.fx))))

    @property
    def vertical_fov_deg(self) -> float:
        return float(np.degrees(2.0 * np.arctan(self.height / (2.0 * self.fy))))


@dataclass(frozen=True, slots=True)
class DepthFrameInfo:
    """What accompanies a depth frame written by :meth:`DepthCamera.read_into`."""

    seq: int  # increases by at least one per new frame, starts at 1
    timestamp_ns: int
    intrinsics: CameraIntrinsics = field(compare=False)


class DepthCamera(Device):
    """A metric depth camera. Frames are float32 metres; NaN/±inf/0 mark invalid pixels.

    Backends grab on their own thread (or are stepped by a simulator) and keep the newest frame;
    the server copies it once into the observation's depth slot with :meth:`read_into`.
    """

    @property
    @abc.abstractmethod
    def frame_shape(self) -> tuple[int, int]:
        """(height, width) of the frames this camera produces once connected."""

    @property
    @abc.abstractmethod
    def intrinsics(self) -> CameraIntrinsics:
        """Intrinsics of the frames (for the FOV crop to the training camera)."""

    @abc.abstractmethod
    def read_into(self, out: np.ndarray, newer_than_seq: int = 0) -> DepthFrameInfo | None:
        """Copy the newest frame into ``out`` (float32, ``frame_shape``) if its seq is newer.

        Returns the frame's info, or None (and leaves ``out`` untouched) when no frame newer than
        ``newer_than_seq`` exists yet.
        """


@runtime_checkable
class Steppable(Protocol):
    """A simulated world the server advances once per control tick (hardware needs none)."""

    def advance(self, duration_s: float) -> None:
        """Advance physics (and simulated sensors) by ``duration_s`` of simulated time."""

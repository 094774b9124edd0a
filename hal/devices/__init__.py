"""Device bases (one per device kind) and their backends (one per module).

Backends are registered by kind and name in :mod:`hal.devices.registry`; what some devices offer
beyond their base (health, a wrapped device) is typed in :mod:`hal.devices.protocols`.
"""

from hal.devices.base import (
    CONTROL_MODE_DAMP,
    CONTROL_MODE_POSITION,
    CameraIntrinsics,
    ContactSample,
    DepthCamera,
    DepthFrameInfo,
    Device,
    DeviceError,
    DeviceNotConnectedError,
    FootContactSensor,
    Imu,
    ImuSample,
    JointCommand,
    JointDriver,
    JointState,
    Steppable,
)

__all__ = [
    "CONTROL_MODE_DAMP",
    "CONTROL_MODE_POSITION",
    "CameraIntrinsics",
    "ContactSample",
    "DepthCamera",
    "DepthFrameInfo",
    "Device",
    "DeviceError",
    "DeviceNotConnectedError",
    "FootContactSensor",
    "Imu",
    "ImuSample",
    "JointCommand",
    "JointDriver",
    "JointState",
    "Steppable",
]

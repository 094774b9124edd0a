"""A fake ``pyzed.sl`` whose calls have pyzed's signatures (ZED SDK 4.x / 5.x Python API).

Signatures follow Stereolabs' ``pyzed/sl.pyx`` (zed-python-api) and the generated API docs:

- ``Transform.get_orientation(self) -> Orientation`` takes **no** argument (only
  ``Pose.get_orientation(self, py_orientation=Orientation())`` takes one);
- ``IMUData.get_pose(self, pose=Transform()) -> Transform``,
  ``IMUData.get_angular_velocity(self, angular_velocity_out=[0, 0, 0]) -> list`` (deg/s),
  ``IMUData.get_linear_acceleration(self, linear_acceleration_out=[0, 0, 0]) -> list``;
- ``Camera.get_sensors_data(self, py_sensors_data, time_reference=TIME_REFERENCE.CURRENT)``,
  ``Camera.retrieve_measure(self, py_mat, measure=MEASURE.DEPTH, type=MEM.CPU,
  resolution=Resolution(0, 0))``, ``Camera.grab(self, py_runtime=RuntimeParameters())``;
- ``CameraInformation.sensors_configuration.camera_imu_transform`` is a ``Transform``;
- ``Camera.get_sdk_version()`` is a static method returning ``"major.minor.patch"``;
- ``InitParameters.depth_stabilization`` is an int 0–100 (default 30) since SDK 4.0.

Which enum members exist depends on the SDK version, as in the real releases:
``DEPTH_MODE.NEURAL_LIGHT`` and ``RESOLUTION.HD1536`` only from 5.0, ``NEURAL_PLUS`` from 4.1.
"""

from __future__ import annotations

import enum
import types
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ZedScript", "make_pyzed"]


def _version_tuple(text: str) -> tuple[int, int]:
    major, minor = text.split(".")[:2]
    return int(major), int(minor)


@dataclass
class ZedScript:
    """What the fake camera reports; tests edit it."""

    sdk_version: str = "4.2.5"
    model: str = "ZED2i"
    width: int = 1280
    height: int = 720
    fx: float = 522.5
    cx: float = 641.3
    cy: float = 361.8
    open_status: str = "SUCCESS"
    imu_q_xyzw: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    gyro_deg_s: tuple[float, float, float] = (0.0, 0.0, 0.0)
    accel_m_s2: tuple[float, float, float] = (0.0, 0.0, 9.81)
    camera_imu_q_xyzw: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    imu_stamp_ns: int = 1_700_000_000_000_000_000
    depth_value_m: float = 2.0
    opened_with: list = field(default_factory=list)  # InitParameters given to open()
    calls: list = field(default_factory=list)


def make_pyzed(script: ZedScript) -> tuple[types.ModuleType, types.ModuleType]:
    """(``pyzed`` package, ``pyzed.sl`` module) behaving as ``script`` says."""
    version = _version_tuple(script.sdk_version)
    sl = types.ModuleType("pyzed.sl")

    class ERROR_CODE(enum.Enum):
        SUCCESS = 0
        FAILURE = 1
        CAMERA_NOT_DETECTED = 3

    resolutions = ["HD2K", "HD1080", "HD1200", "HD720", "SVGA", "VGA", "AUTO"]
    if version >= (5, 0):
        resolutions += ["HD4K", "QHDPLUS", "HD1536"]
    depth_modes = ["NONE", "PERFORMANCE", "QUALITY", "ULTRA", "NEURAL"]
    if version >= (4, 1):
        depth_modes.append("NEURAL_PLUS")
    if version >= (5, 0):
        depth_modes.append("NEURAL_LIGHT")
    RESOLUTION = enum.Enum("RESOLUTION", resolutions)
    DEPTH_MODE = enum.Enum("DEPTH_MODE", depth_modes)
    UNIT = enum.Enum("UNIT", ["MILLIMETER", "METER"])
    COORDINATE_SYSTEM = enum.Enum("COORDINATE_SYSTEM", ["IMAGE", "RIGHT_HANDED_Z_UP_X_FWD"])
    MODEL = enum.Enum("MODEL", ["ZED", "ZED_M", "ZED2", "ZED2i", "ZED_X"])
    TIME_REFERENCE = enum.Enum("TIME_REFERENCE", ["IMAGE", "CURRENT"])
    MEASURE = enum.Enum("MEASURE", ["DISPARITY", "DEPTH"])
    MEM = enum.Enum("MEM", ["CPU", "GPU"])

    class Orientation:
        def __init__(self, orientation=None):
            self._q = np.array([0.0, 0.0, 0.0, 1.0] if orientation is None else orientation)

        def get(self):
            return self._q.copy()

    class Matrix3f:
        def __init__(self, r):
            self.r = np.asarray(r, dtype=np.float64)

    class Transform:
        def __init__(self):
            self._q = np.array([0.0, 0.0, 0.0, 1.0])

        def get_orientation(self):  # no argument: the defect of issue 16
            return Orientation(self._q)

        def set_orientation(self, orientation):
            self._q = orientation.get()

    class Pose:
        def __init__(self):
            self._q = np.array([0.0, 0.0, 0.0, 1.0])

        def get_orientation(self, py_orientation=Orientation()):
            py_orientation._q = self._q.copy()
            return py_orientation

    class Timestamp:
        def __init__(self, ns=0):
            self._ns = int(ns)

        def get_nanoseconds(self):
            return self._ns

    class IMUData:
        def __init__(self):
            self.timestamp = Timestamp(script.imu_stamp_ns)

        def get_pose(self, pose=Transform()):
            pose._q = np.array(script.imu_q_xyzw, dtype=np.float64)
            return pose

        def get_angular_velocity(self, angular_velocity_out=[0, 0, 0]):  # noqa: B006 - pyzed's own default
            angular_velocity_out[:] = list(script.gyro_deg_s)
            return angular_velocity_out

        def get_linear_acceleration(self, linear_acceleration_out=[0, 0, 0]):  # noqa: B006
            linear_acceleration_out[:] = list(script.accel_m_s2)
            return linear_acceleration_out

    class SensorsData:
        def get_imu_data(self):
            return IMUData()

    class Resolution:
        def __init__(self, width=0, height=0):
            self.width, self.height = width, height

    class Mat:
        def __init__(self):
            self._data = None

        def get_data(self, memory_type=MEM.CPU, deep_copy=False):
            return self._data

    class RuntimeParameters:
        def __init__(self, enable_depth=True, enable_fill_mode=False, confidence_threshold=95,
                     texture_confidence_threshold=100, measure3D_reference_frame=None,
                     remove_saturated_areas=True):
            self.enable_depth = enable_depth

    class InitParameters:
        def __init__(self):
            self.camera_resolution = RESOLUTION.AUTO
            self.camera_fps = 0
            self.depth_mode = DEPTH_MODE.NEURAL
            self.depth_stabilization = 30  # SDK default: temporal filtering on
            self.coordinate_units = UNIT.MILLIMETER
            self.coordinate_system = COORDINATE_SYSTEM.IMAGE
            self.sdk_verbose = 1
            self.depth_minimum_distance = -1.0
            self.depth_maximum_distance = -1.0
            self.serial = None

        def set_from_serial_number(self, serial_number):
            self.serial = serial_number

    class Camera:
        def __init__(self):
            self._open = False

        @staticmethod
        def get_sdk_version():
            return script.sdk_version

        def open(self, py_init=InitParameters()):
            script.opened_with.append(py_init)
            self._open = getattr(ERROR_CODE, script.open_status) == ERROR_CODE.SUCCESS
            return getattr(ERROR_CODE, script.open_status)

        def close(self):
            self._open = False

        def get_camera_information(self, resizer=Resolution(0, 0)):
            left = types.SimpleNamespace(fx=script.fx, fy=script.fx, cx=script.cx, cy=script.cy)
            camera_imu = Transform()
            camera_imu._q = np.array(script.camera_imu_q_xyzw, dtype=np.float64)
            return types.SimpleNamespace(
                camera_model=getattr(MODEL, script.model), serial_number=12345,
                camera_configuration=types.SimpleNamespace(
                    resolution=Resolution(script.width, script.height),
                    calibration_parameters=types.SimpleNamespace(left_cam=left)),
                sensors_configuration=types.SimpleNamespace(camera_imu_transform=camera_imu))

        def grab(self, py_runtime=RuntimeParameters()):
            script.calls.append("grab")
            return ERROR_CODE.SUCCESS

        def retrieve_measure(self, py_mat, measure=MEASURE.DEPTH, type=MEM.CPU,  # noqa: A002
                             resolution=Resolution(0, 0)):
            w = resolution.width or script.width
            h = resolution.height or script.height
            py_mat._data = np.full((h, w), script.depth_value_m, dtype=np.float32)
            return ERROR_CODE.SUCCESS

        def get_timestamp(self, time_reference):
            return Timestamp(script.imu_stamp_ns)

        def get_sensors_data(self, py_sensors_data, time_reference=TIME_REFERENCE.CURRENT):
            script.calls.append("get_sensors_data")
            return ERROR_CODE.SUCCESS

    for name, value in list(locals().items()):
        if isinstance(value, type) and name not in ("script",):
            setattr(sl, name, value)
    pyzed = types.ModuleType("pyzed")
    pyzed.sl = sl
    return pyzed, sl

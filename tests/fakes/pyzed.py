"""A fake ``pyzed.sl`` whose calls have pyzed's signatures (ZED SDK 4.x / 5.x Python API).

It stays a fake because pyzed needs the ZED SDK, CUDA and a camera, none of which CI has.

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
``DEPTH_MODE.NEURAL_LIGHT`` and ``RESOLUTION.HD1536`` only from 5.0, ``NEURAL_PLUS`` from 4.1,
``RESOLUTION.HD4K``/``QHDPLUS`` from 4.2 (per the audit in issue 24; the 4.0 ``src/pyzed/sl_c.pxd``,
read, has neither, and a 5.x one has both beside HD1536).

``ERROR_CODE`` (what was read, in stereolabs/zed-python-api and stereolabs/zed-c-api):

- values: ``zed-c-api`` ``include/sl/c_api/types_c.h`` gives the C++ enum's integers explicitly:
  SENSOR_CONFIGURATION_CHANGED -6, POTENTIAL_CALIBRATION_ISSUE -5, CONFIGURATION_FALLBACK -4,
  SENSORS_DATA_REQUIRED -3, CORRUPTED_FRAME -2, CAMERA_REBOOTING -1, SUCCESS 0, FAILURE 1,
  NO_GPU_COMPATIBLE 2, NOT_ENOUGH_GPU_MEMORY 3, CAMERA_NOT_DETECTED 4, ...; ``sl.pyx`` makes each
  member ``<int>c_ERROR_CODE.X``, so ``.value`` is that integer (a plain ``enum.Enum``, not an
  IntEnum: ``int(code)`` fails);
- members by release: the 4.0 ``src/pyzed/sl_c.pxd`` has CAMERA_REBOOTING as its only negative
  code; a 5.0.x ``src/pyzed/sl.pyx`` has CONFIGURATION_FALLBACK, SENSORS_DATA_REQUIRED,
  CORRUPTED_FRAME and CAMERA_REBOOTING (4.2 has the same four, per the audit in issue 24); a later
  ``sl_c.pxd`` adds POTENTIAL_CALIBRATION_ISSUE (here from 5.1), and the newest C API
  SENSOR_CONFIGURATION_CHANGED (here from 5.2; the release is not recorded in what was read);
- ordering: that 5.0.x ``sl.pyx`` defines ``__lt__``/``__le__``/``__gt__``/``__ge__`` comparing
  ``.value``; 4.2 and 5.0.0 have none (a plain Enum: ``<`` raises TypeError). Here from 5.0.1;
- ``__str__``/``__repr__`` return the SDK's ``toString`` sentence, not the member name (a
  sample compares ``str(err)`` with ``'POTENTIAL CALIBRATION ISSUE'``); the fake returns the name
  with spaces, so code that logs ``str(code)`` instead of ``code.name`` shows here.
"""

from __future__ import annotations

import enum
import operator
import types
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ERROR_CODES", "ORDERED_ERROR_CODES_FROM", "ZedScript", "make_pyzed"]


def _version_tuple(text: str) -> tuple[int, int, int]:
    parts = [int(p) for p in text.split(".")[:3]]
    return tuple(parts + [0] * (3 - len(parts)))  # type: ignore[return-value]


#: (first release, name, value) of each ERROR_CODE member the fake knows; see the module docstring.
ERROR_CODES = (
    ((5, 2, 0), "SENSOR_CONFIGURATION_CHANGED", -6),
    ((5, 1, 0), "POTENTIAL_CALIBRATION_ISSUE", -5),
    ((4, 2, 0), "CONFIGURATION_FALLBACK", -4),
    ((4, 2, 0), "SENSORS_DATA_REQUIRED", -3),
    ((4, 2, 0), "CORRUPTED_FRAME", -2),
    ((0, 0, 0), "CAMERA_REBOOTING", -1),
    ((0, 0, 0), "SUCCESS", 0),
    ((0, 0, 0), "FAILURE", 1),
    ((0, 0, 0), "NO_GPU_COMPATIBLE", 2),
    ((0, 0, 0), "NOT_ENOUGH_GPU_MEMORY", 3),
    ((0, 0, 0), "CAMERA_NOT_DETECTED", 4),
    ((0, 0, 0), "SENSORS_NOT_INITIALIZED", 5),
    ((0, 0, 0), "SENSORS_NOT_AVAILABLE", 6),
    ((0, 0, 0), "INVALID_RESOLUTION", 7),
    ((0, 0, 0), "LOW_USB_BANDWIDTH", 8),
)
#: The first release whose ERROR_CODE has ordering operators (a later 5.0.x; 5.0.0 has none).
ORDERED_ERROR_CODES_FROM = (5, 0, 1)


def _sdk_sentence(code: enum.Enum) -> str:
    return code.name.replace("_", " ")


def _ordered(op):
    def compare(self, other):
        if isinstance(other, type(self)):
            return op(self.value, other.value)
        return NotImplemented
    return compare


def _error_code_enum(version: tuple[int, int, int]) -> type[enum.Enum]:
    """``sl.ERROR_CODE`` of that release: its members, its str/repr and (from 5.0.1) its ordering."""
    namespace = enum.EnumMeta.__prepare__("ERROR_CODE", (enum.Enum,))
    for since, name, value in ERROR_CODES:
        if version >= since:
            namespace[name] = value
    namespace["__str__"] = namespace["__repr__"] = _sdk_sentence
    if version >= ORDERED_ERROR_CODES_FROM:
        for dunder, op in (("__lt__", operator.lt), ("__le__", operator.le),
                           ("__gt__", operator.gt), ("__ge__", operator.ge)):
            namespace[dunder] = _ordered(op)
    return enum.EnumMeta("ERROR_CODE", (enum.Enum,), namespace)


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
    # Statuses returned by successive calls (by name), then SUCCESS once the list is used up.
    grab_statuses: list = field(default_factory=list)
    retrieve_statuses: list = field(default_factory=list)
    sensors_statuses: list = field(default_factory=list)
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

    ERROR_CODE = _error_code_enum(version)

    def status(queue: list):
        return getattr(ERROR_CODE, queue.pop(0) if queue else "SUCCESS")

    resolutions = ["HD2K", "HD1080", "HD1200", "HD720", "SVGA", "VGA", "AUTO"]
    if version >= (4, 2):
        resolutions += ["HD4K", "QHDPLUS"]
    if version >= (5, 0):
        resolutions += ["HD1536"]
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
            self._grabs = 0

        @staticmethod
        def get_sdk_version():
            return script.sdk_version

        def open(self, py_init=InitParameters()):
            script.opened_with.append(py_init)
            code = getattr(ERROR_CODE, script.open_status)
            self._open = code.value <= 0  # a warning opens the camera ("did success with a fallback")
            return code

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
            self._grabs += 1
            return status(script.grab_statuses)

        def retrieve_measure(self, py_mat, measure=MEASURE.DEPTH, type=MEM.CPU,  # noqa: A002
                             resolution=Resolution(0, 0)):
            w = resolution.width or script.width
            h = resolution.height or script.height
            py_mat._data = np.full((h, w), script.depth_value_m, dtype=np.float32)
            return status(script.retrieve_statuses)

        def get_timestamp(self, time_reference):
            # Each grab is a new image, 1/60 s after the previous one.
            return Timestamp(script.imu_stamp_ns + self._grabs * 16_666_667)

        def get_sensors_data(self, py_sensors_data, time_reference=TIME_REFERENCE.CURRENT):
            script.calls.append("get_sensors_data")
            return status(script.sensors_statuses)

    for name, value in list(locals().items()):
        if isinstance(value, type) and name not in ("script",):
            setattr(sl, name, value)
    pyzed = types.ModuleType("pyzed")
    pyzed.sl = sl
    return pyzed, sl

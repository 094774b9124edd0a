"""ZED depth camera backend (ZED SDK 4/5 through ``pyzed``).

A :class:`ZedSession` opens the ``sl.Camera`` once; :class:`ZedDepthCamera` (here) and
:class:`~hal.jetson.zed_imu.ZedImu` share it, since a ZED can be opened by one ``sl.Camera`` only.
The camera grabs on its own thread (``grab``/``retrieve_measure`` release the GIL from SDK 5.0) through the
same :class:`~hal.devices.grab_loop.GrabLoop` as the recorded backend, so everything but the pyzed
calls in :class:`ZedDepthSource` is exercised without a camera.

Depth comes out in metres (``coordinate_units = METER``) as float32, with the SDK's invalid
markers left in place for the preprocessing: NaN (occlusion), −inf (too close), +inf (too far).
It is retrieved into CPU memory (``MEM.CPU``) because the observation slot it lands in is host
memory (pinned when CUDA is present); :meth:`ZedDepthCamera.read_into` is the one copy into it.
Timestamps are the SDK's image timestamps (``TIME_REFERENCE.IMAGE``, system clock) moved onto
``time.monotonic_ns``.

Depth is opened with ``depth_stabilization = 0``: the SDK default (30) filters depth over time
(which the policy never saw in training) and switches positional tracking on.

Which resolutions and depth modes exist depends on the installed SDK (``NEURAL_LIGHT`` and
``HD1536`` only from ZED SDK 5.0): :func:`sdk_options` lists them and opening a camera with one the
SDK lacks fails naming those it has. pyzed releases the GIL in ``grab``/``retrieve_measure`` from
SDK 5.0 and in ``get_sensors_data`` from 5.1, in none of them before: with an older SDK every grab
holds the interpreter for its whole duration, which stalls the control loop; the session warns,
and the README says to use ZED SDK >= 5.1.

Status codes count by meaning (:mod:`hal.jetson.zed_status`): a warning at ``open`` is logged by
name and the camera used; a ``CORRUPTED_FRAME`` from ``grab`` is dropped and counted (a run of them
ages the depth into stale), other warnings are logged at a limited rate and the frame used.

Every pyzed call goes through ``hal.optional.require("pyzed.sl")``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from hal.config.fields import setting
from hal.devices.base import CameraIntrinsics, DeviceError
from hal.devices.grab_loop import FrameDropped, GrabError
from hal.devices.threaded import DepthFrameSource, ThreadedDepthCamera
from hal.jetson import zed_status
from hal.jetson.intrinsics import intrinsics_from_calibration, scale_intrinsics
from hal.log_limit import RateLimitedLog
from hal.optional import require

__all__ = [
    "ZED_RESOLUTIONS",
    "ZED_FPS",
    "ZED_DEPTH_MODES",
    "ZED_DEPRECATED_DEPTH_MODES",
    "ZedConfig",
    "GIL_RELEASED_FROM",
    "realtime_to_monotonic_ns",
    "sdk_version",
    "sdk_options",
    "ZedSession",
    "ZedDepthSource",
    "ZedDepthCamera",
]

log = logging.getLogger(__name__)

# Nominal (width, height) of one image of the pair; AUTO lets the SDK pick per camera model.
ZED_RESOLUTIONS: dict[str, tuple[int, int] | None] = {
    "HD4K": (3840, 2160),
    "QHDPLUS": (3200, 1800),
    "HD2K": (2208, 1242),
    "HD1536": (1920, 1536),
    "HD1200": (1920, 1200),
    "HD1080": (1920, 1080),
    "HD720": (1280, 720),
    "SVGA": (960, 600),
    "VGA": (672, 376),
    "AUTO": None,
}
ZED_FPS = (15, 30, 60, 100, 120)
ZED_DEPTH_MODES = ("NEURAL_LIGHT", "NEURAL", "NEURAL_PLUS")
ZED_DEPRECATED_DEPTH_MODES = ("PERFORMANCE", "QUALITY", "ULTRA")
#: The first ZED SDK whose pyzed releases the GIL in grab, retrieve_measure and get_sensors_data.
GIL_RELEASED_FROM = (5, 1)


def sdk_version(sl: Any) -> tuple[int, int, int]:
    """``sl.Camera.get_sdk_version()`` as numbers (``"4.2.5"`` -> (4, 2, 5))."""
    parts = [int("".join(c for c in p if c.isdigit()) or 0)
             for p in str(sl.Camera.get_sdk_version()).split(".")[:3]]
    return tuple(parts + [0] * (3 - len(parts)))  # type: ignore[return-value]


def sdk_options(sl: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(resolutions, depth modes) of :data:`ZED_RESOLUTIONS` / our depth modes that this SDK has."""
    resolutions = tuple(r for r in ZED_RESOLUTIONS if hasattr(sl.RESOLUTION, r))
    modes = tuple(m for m in ZED_DEPTH_MODES + ZED_DEPRECATED_DEPTH_MODES if hasattr(sl.DEPTH_MODE, m))
    return resolutions, modes


@dataclass(frozen=True)
class ZedConfig:
    """Settings of the ZED camera and its IMU.

    Attributes:
        resolution: ``sl.RESOLUTION`` name (see :data:`ZED_RESOLUTIONS`).
        fps: Camera frame rate; the camera model decides which rates a resolution supports.
        depth_mode: ``NEURAL_LIGHT`` (fastest on a Jetson), ``NEURAL`` (default) or
            ``NEURAL_PLUS``. ``PERFORMANCE``/``QUALITY``/``ULTRA`` still open but are deprecated
            by Stereolabs and warn.
        serial_number: Open this camera (None: the first one found).
        depth_width, depth_height: Retrieve depth resized by the SDK (on the GPU) to this size;
            None keeps the camera's resolution. Both or neither. Intrinsics follow the resize.
        depth_minimum_distance_m, depth_maximum_distance_m: SDK depth range (None: SDK default).
        stale_after_ms: Depth older than this is reported stale.
        first_frame_timeout_ms: ``connect()`` fails if no depth frame arrives within this.
        imu_mount_rpy_deg: Roll/pitch/yaw (degrees) of the ZED's IMU axes (x forward along the
            optical axis, y left, z up) in the robot base frame; a camera tilted 30° nose-down
            is ``(0, 30, 0)``.
        imu_stale_after_ms: IMU samples older than this are reported stale.
        sdk_verbose: ``InitParameters.sdk_verbose``.
    """

    section: ClassVar[str] = "zed"
    title: ClassVar[str] = "ZED camera (--camera zed)"

    resolution: str = setting("HD720", flag="--zed-resolution",
                              help="sl.RESOLUTION name: " + ", ".join(ZED_RESOLUTIONS))
    fps: int = setting(60, flag="--zed-fps", help="camera frame rate: one of "
                                                   + ", ".join(map(str, ZED_FPS)))
    depth_mode: str = setting("NEURAL", flag="--zed-depth-mode",
                              help="NEURAL_LIGHT (fastest on a Jetson), NEURAL or NEURAL_PLUS")
    serial_number: int | None = None
    depth_width: int | None = None
    depth_height: int | None = None
    depth_minimum_distance_m: float | None = None
    depth_maximum_distance_m: float | None = None
    stale_after_ms: float = 200.0
    first_frame_timeout_ms: float = 5000.0
    imu_mount_rpy_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    imu_stale_after_ms: float = 50.0
    sdk_verbose: int = 0

    def __post_init__(self) -> None:
        if self.resolution not in ZED_RESOLUTIONS:
            raise ValueError(f"ZedConfig.resolution {self.resolution!r} is not a ZED resolution; "
                             f"valid: {', '.join(ZED_RESOLUTIONS)}")
        if self.fps not in ZED_FPS:
            raise ValueError(f"ZedConfig.fps {self.fps!r} is not a ZED frame rate; valid: {ZED_FPS}")
        if self.depth_mode in ZED_DEPRECATED_DEPTH_MODES:
            message = (f"ZED depth_mode {self.depth_mode} is deprecated since ZED SDK 5 and gives "
                       f"worse depth than the neural modes; use NEURAL_LIGHT or NEURAL")
            warnings.warn(message, DeprecationWarning, stacklevel=3)
            log.warning(message)
        elif self.depth_mode not in ZED_DEPTH_MODES:
            raise ValueError(f"ZedConfig.depth_mode {self.depth_mode!r} is not a depth mode; valid: "
                             f"{', '.join(ZED_DEPTH_MODES + ZED_DEPRECATED_DEPTH_MODES)} "
                             f"(the last three are deprecated)")
        if self.serial_number is not None and (not isinstance(self.serial_number, int)
                                               or self.serial_number <= 0):
            raise ValueError(f"ZedConfig.serial_number must be a positive integer or None, "
                             f"got {self.serial_number!r}")
        if (self.depth_width is None) != (self.depth_height is None):
            raise ValueError("ZedConfig.depth_width and depth_height must be given together "
                             f"(got {self.depth_width!r} x {self.depth_height!r})")
        if self.depth_width is not None:
            if self.depth_width <= 0 or self.depth_height <= 0:
                raise ValueError(f"ZedConfig depth size must be positive, got "
                                 f"{self.depth_width}x{self.depth_height}")
            native = ZED_RESOLUTIONS[self.resolution]
            if native is not None and (self.depth_width > native[0] or self.depth_height > native[1]):
                raise ValueError(f"ZedConfig depth size {self.depth_width}x{self.depth_height} exceeds "
                                 f"the {self.resolution} image ({native[0]}x{native[1]}); the SDK "
                                 "only downsamples")
        for name in ("depth_minimum_distance_m", "depth_maximum_distance_m"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"ZedConfig.{name} must be a positive number or None, got {value!r}")
        if (self.depth_minimum_distance_m is not None and self.depth_maximum_distance_m is not None
                and self.depth_minimum_distance_m >= self.depth_maximum_distance_m):
            raise ValueError(f"ZedConfig depth range is empty: minimum {self.depth_minimum_distance_m} m "
                             f">= maximum {self.depth_maximum_distance_m} m")
        for name in ("stale_after_ms", "imu_stale_after_ms"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ZedConfig.{name} must be positive, got {getattr(self, name)!r}")
        if self.first_frame_timeout_ms < 0:
            raise ValueError(f"ZedConfig.first_frame_timeout_ms must be >= 0, got {self.first_frame_timeout_ms}")
        rpy = tuple(self.imu_mount_rpy_deg)
        if len(rpy) != 3 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in rpy):
            raise ValueError(f"ZedConfig.imu_mount_rpy_deg must be 3 finite angles, got {self.imu_mount_rpy_deg!r}")
        object.__setattr__(self, "imu_mount_rpy_deg", tuple(float(v) for v in rpy))


def realtime_to_monotonic_ns(realtime_ns: int, realtime_now_ns: int, monotonic_now_ns: int) -> int:
    """Move a system-clock timestamp onto the monotonic clock, given both clocks read together."""
    return int(realtime_ns) - (int(realtime_now_ns) - int(monotonic_now_ns))


def _monotonic_from_realtime(realtime_ns: int) -> int:
    # time.time_ns is read only to learn the offset between the clocks, never for an interval.
    return realtime_to_monotonic_ns(realtime_ns, time.time_ns(), time.monotonic_ns())


class ZedSession:
    """The one opened ``sl.Camera``, reference-counted between the depth camera and the IMU."""

    def __init__(self, config: ZedConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._users = 0
        self._sl: Any = None
        self._camera: Any = None
        #: Name of the warning ``open`` returned (``CONFIGURATION_FALLBACK``...), None when SUCCESS.
        self.open_warning: str | None = None

    @property
    def sl(self) -> Any:
        """The ``pyzed.sl`` module (valid while acquired)."""
        return self._sl

    @property
    def camera(self) -> Any:
        """The opened ``sl.Camera`` (valid while acquired)."""
        if self._camera is None:
            raise DeviceError("ZED session is not open")
        return self._camera

    def acquire(self) -> None:
        """Open the camera on the first acquire; later ones share it."""
        with self._lock:
            if self._users == 0:
                self._open()
            self._users += 1

    def release(self) -> None:
        """Close the camera when the last user releases it."""
        with self._lock:
            if self._users == 0:
                return
            self._users -= 1
            if self._users == 0 and self._camera is not None:
                self._camera.close()
                self._camera = None

    def _open(self) -> None:
        sl = require("pyzed.sl", "the ZED camera backend")
        cfg = self.config
        version = sdk_version(sl)
        resolutions, modes = sdk_options(sl)
        text = ".".join(map(str, version))
        if cfg.resolution not in resolutions:
            raise DeviceError(f"ZED SDK {text} has no resolution {cfg.resolution}; it offers "
                              f"{', '.join(resolutions)} (HD1536 needs ZED SDK >= 5.0)")
        if cfg.depth_mode not in modes:
            raise DeviceError(f"ZED SDK {text} has no depth mode {cfg.depth_mode}; it offers "
                              f"{', '.join(modes)} (NEURAL_LIGHT needs ZED SDK >= 5.0)")
        if version[:2] < GIL_RELEASED_FROM:
            log.warning("ZED SDK %s: pyzed holds the GIL during grab/retrieve_measure/"
                        "get_sensors_data (released from 5.1), which stalls the control loop "
                        "for each grab; install ZED SDK >= 5.1", text)
        init = sl.InitParameters()
        init.camera_resolution = getattr(sl.RESOLUTION, cfg.resolution)
        init.camera_fps = cfg.fps
        init.depth_mode = getattr(sl.DEPTH_MODE, cfg.depth_mode)
        # No temporal filtering: training saw each frame's depth alone (and 30, the default,
        # also switches positional tracking on).
        init.depth_stabilization = 0
        init.coordinate_units = sl.UNIT.METER
        # x forward, y left, z up: the robot base convention, so the IMU needs only the mount tilt.
        init.coordinate_system = sl.COORDINATE_SYSTEM.RIGHT_HANDED_Z_UP_X_FWD
        init.sdk_verbose = cfg.sdk_verbose
        if cfg.depth_minimum_distance_m is not None:
            init.depth_minimum_distance = cfg.depth_minimum_distance_m
        if cfg.depth_maximum_distance_m is not None:
            init.depth_maximum_distance = cfg.depth_maximum_distance_m
        if cfg.serial_number is not None:
            init.set_from_serial_number(cfg.serial_number)
        camera = sl.Camera()
        status = camera.open(init)
        which = f"serial {cfg.serial_number}" if cfg.serial_number else "the first ZED found"
        meaning = zed_status.classify(status)
        if meaning == zed_status.ERROR:
            camera.close()
            raise DeviceError(f"ZED camera ({which}, {cfg.resolution}@{cfg.fps}, {cfg.depth_mode}) did "
                              f"not open: {zed_status.code_name(status)} ({status}). Check the cable and "
                              f"power, that no other process holds the camera, and run ZED_Diagnostic.")
        self._sl, self._camera = sl, camera
        self.open_warning = zed_status.code_name(status) if meaning == zed_status.WARNING else None
        if self.open_warning:
            log.warning("ZED camera (%s) opened with warning %s (%s); using it", which,
                        self.open_warning, status)
        log.info("ZED opened: %s", self.describe())

    def describe(self) -> str:
        """Model, serial number and SDK version of the open camera."""
        info = self.camera.get_camera_information()
        return (f"{info.camera_model} serial {info.serial_number}, ZED SDK "
                f"{self._sl.Camera.get_sdk_version()}")


class ZedDepthSource(DepthFrameSource):
    """Grabs depth from an acquired :class:`ZedSession` (the only pyzed code on the grab path)."""

    def __init__(self, session: ZedSession) -> None:
        self.session = session
        self._intrinsics: CameraIntrinsics | None = None
        self._acquired = False
        #: Warning codes ``grab``/``retrieve_measure`` returned, by name (CORRUPTED_FRAME included).
        self.warnings: Counter[str] = Counter()
        self._log = RateLimitedLog(log, zed_status.WARNING_LOG_INTERVAL_S)

    @property
    def corrupted_frames(self) -> int:
        """Frames dropped because ``grab`` returned ``CORRUPTED_FRAME``."""
        return self.warnings[zed_status.CORRUPTED_FRAME]

    def _check(self, call: str, status: Any) -> None:
        """Raise for an error code, drop a corrupted frame, log any other warning (rate-limited)."""
        meaning = zed_status.classify(status)
        if meaning == zed_status.SUCCESS:
            return
        name = zed_status.code_name(status)
        if meaning == zed_status.ERROR:
            raise GrabError(f"ZED {call} returned {name} ({status})")
        self.warnings[name] += 1
        if name == zed_status.CORRUPTED_FRAME:
            raise FrameDropped(f"ZED {call} returned CORRUPTED_FRAME: frame dropped "
                               f"({self.warnings[name]} so far)")
        self._log.warning(f"{call}:{name}", "ZED %s returned warning %s (%s); frame used", call, name, status)

    @property
    def intrinsics(self) -> CameraIntrinsics:
        if self._intrinsics is None:
            raise DeviceError("ZED depth source is not open")
        return self._intrinsics

    def open(self) -> tuple[tuple[int, ...], np.dtype]:
        self.session.acquire()
        self._acquired = True
        sl = self.session.sl
        cam_config = self.session.camera.get_camera_information().camera_configuration
        width, height = int(cam_config.resolution.width), int(cam_config.resolution.height)
        intrinsics = intrinsics_from_calibration(cam_config.calibration_parameters.left_cam, width, height)
        cfg = self.session.config
        if cfg.depth_width is not None:
            if cfg.depth_width > width or cfg.depth_height > height:
                raise DeviceError(f"ZED depth size {cfg.depth_width}x{cfg.depth_height} exceeds the "
                                  f"camera's {width}x{height}")
            intrinsics = scale_intrinsics(intrinsics, cfg.depth_width, cfg.depth_height)
            self._resize = sl.Resolution(cfg.depth_width, cfg.depth_height)
        else:
            self._resize = sl.Resolution(0, 0)  # 0x0: the camera's own resolution
        self._intrinsics = intrinsics
        self._mat = sl.Mat()
        self._runtime = sl.RuntimeParameters()
        return (intrinsics.height, intrinsics.width), np.dtype(np.float32)

    def grab(self, out: np.ndarray) -> int:
        sl, camera = self.session.sl, self.session.camera
        self._check("grab", camera.grab(self._runtime))
        self._check("retrieve_measure(DEPTH)",
                    camera.retrieve_measure(self._mat, sl.MEASURE.DEPTH, sl.MEM.CPU, self._resize))
        depth = self._mat.get_data()
        if depth.shape != out.shape:
            raise GrabError(f"ZED depth has shape {depth.shape}, expected {out.shape}")
        np.copyto(out, depth)
        image_ns = camera.get_timestamp(sl.TIME_REFERENCE.IMAGE).get_nanoseconds()
        return _monotonic_from_realtime(image_ns)

    def close(self) -> None:
        if self._acquired:
            self._acquired = False
            self.session.release()


class ZedDepthCamera(ThreadedDepthCamera):
    """The ZED's left-aligned metric depth, grabbed on its own thread.

    Args:
        config: Camera settings.
        session: Share an open session (with :class:`~hal.jetson.zed_imu.ZedImu`); one is made
            from ``config`` when omitted.
    """

    def __init__(self, config: ZedConfig | None = None, session: ZedSession | None = None) -> None:
        if session is not None and config is not None and config != session.config:
            raise ValueError("ZedDepthCamera: pass either a config or a session, not two that differ")
        self.session = session or ZedSession(config or ZedConfig())
        self.config = self.session.config
        super().__init__("zed-depth", self.config.stale_after_ms, self.config.first_frame_timeout_ms)

    def _make_source(self) -> ZedDepthSource:
        return ZedDepthSource(self.session)

    def report(self) -> dict[str, Any]:
        """The run report's camera section, plus ``open``'s warning and grab warnings by name."""
        source = self._source
        warnings_by_name = dict(source.warnings) if isinstance(source, ZedDepthSource) else {}
        return {**super().report(), "open_warning": self.session.open_warning,
                "corrupted_frames": warnings_by_name.get(zed_status.CORRUPTED_FRAME, 0),
                "warnings": warnings_by_name}

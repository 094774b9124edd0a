"""The IMU of a ZED 2 / 2i / X / X Mini, read through the camera's shared :class:`ZedSession`.

The SDK reports the IMU's fused orientation as an ``(x, y, z, w)`` quaternion in a gravity-aligned
world frame, angular velocity in **degrees** per second and linear acceleration (with gravity) in
m/s², in the axes of the **IMU** (Stereolabs: sensor data is given in the IMU frame; the rotation
to the left camera is ``sensors_configuration.camera_imu_transform``), using the coordinate
convention chosen at open (x forward, y left, z up with ``RIGHT_HANDED_Z_UP_X_FWD``). At open the
source composes that factory camera–IMU rotation with the configured camera mounting, so
:func:`zed_imu_vector` turns a sample into the base frame the policy expects (wxyz, rad/s, m/s²);
it is pure and tested without a camera.

A polling thread (the same :class:`~hal.devices.grab_loop.GrabLoop` the cameras use) asks the SDK
for the current sample (``get_sensors_data`` with ``TIME_REFERENCE.CURRENT``, which releases the
GIL from ZED SDK 5.1) and publishes each one whose timestamp is new; the ZED 2/2i IMU runs at about 400 Hz.
A warning code from ``get_sensors_data`` (negative, :mod:`hal.jetson.zed_status`) is counted and
logged at a limited rate and the sample is used; an error code fails that poll.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

import numpy as np

from hal.devices.base import DeviceError
from hal.devices.grab_loop import FrameSource, GrabError
from hal.devices.threaded import IMU_VECTOR_SIZE, ThreadedImu, imu_vector
from hal.jetson import zed_status
from hal.jetson.transforms import ImuMounting, quat_xyzw_to_wxyz
from hal.jetson.zed_camera import ZedConfig, ZedSession, _monotonic_from_realtime
from hal.log_limit import RateLimitedLog

__all__ = ["zed_imu_vector", "ZedImuSource", "ZedImu"]

log = logging.getLogger(__name__)

# The ZED IMU rate is 400 Hz (ZED 2/2i) or more; polling faster than that only burns a core.
_POLL_PERIOD_S = 0.5e-3


def zed_imu_vector(q_xyzw, angular_velocity_deg_s, linear_acceleration_m_s2, mounting: ImuMounting,
                   out: np.ndarray | None = None) -> np.ndarray:
    """One ZED IMU reading, in the base frame, packed as :func:`~hal.devices.threaded.imu_vector`.

    Args:
        q_xyzw: Orientation from ``IMUData.get_pose().get_orientation().get()`` (x, y, z, w).
        angular_velocity_deg_s: ``IMUData.get_angular_velocity()`` (deg/s, camera axes).
        linear_acceleration_m_s2: ``IMUData.get_linear_acceleration()`` (m/s², camera axes).
        mounting: Rotation of the IMU's axes in the base frame (camera mounting composed with
            the camera–IMU rotation, see :meth:`ImuMounting.followed_by`).
    """
    q_world_imu = quat_xyzw_to_wxyz(q_xyzw)
    gyro_rad_s = np.radians(np.asarray(angular_velocity_deg_s, dtype=np.float64))
    q_world_base, gyro_base, acc_base = mounting.to_base(q_world_imu, gyro_rad_s, linear_acceleration_m_s2)
    return imu_vector(q_world_base, gyro_base, acc_base, out)


class ZedImuSource(FrameSource):
    """Polls the ZED's sensors and yields each new IMU sample as a base-frame vector."""

    def __init__(self, session: ZedSession, mounting: ImuMounting, no_sample_timeout_ms: float) -> None:
        self.session = session
        self.camera_mounting = mounting
        self.mounting = mounting  # camera mounting ⊗ camera–IMU rotation, set at open
        self._no_sample_timeout_s = no_sample_timeout_ms / 1e3
        self._wake = threading.Event()
        self._acquired = False
        self._last_ns = -1
        #: Warning codes ``get_sensors_data`` returned, by name.
        self.warnings: Counter[str] = Counter()
        self._log = RateLimitedLog(log, zed_status.WARNING_LOG_INTERVAL_S)

    def open(self) -> tuple[tuple[int, ...], np.dtype]:
        self.session.acquire()
        self._acquired = True
        sl = self.session.sl
        info = self.session.camera.get_camera_information()
        model = info.camera_model
        if model == sl.MODEL.ZED:
            raise DeviceError("this ZED (first generation) has no IMU; use a ZED 2/2i/X or another IMU")
        self._data = sl.SensorsData()
        self._pose = sl.Transform()
        q_cam_imu = quat_xyzw_to_wxyz(
            info.sensors_configuration.camera_imu_transform.get_orientation().get())
        self.mounting = self.camera_mounting.followed_by(q_cam_imu)
        return (IMU_VECTOR_SIZE,), np.dtype(np.float64)

    def grab(self, out: np.ndarray) -> int:
        sl, camera = self.session.sl, self.session.camera
        waited_s = 0.0
        while True:
            status = camera.get_sensors_data(self._data, sl.TIME_REFERENCE.CURRENT)
            meaning = zed_status.classify(status)
            if meaning == zed_status.ERROR:
                raise GrabError(f"ZED get_sensors_data returned {zed_status.code_name(status)} ({status})")
            if meaning == zed_status.WARNING:
                name = zed_status.code_name(status)
                self.warnings[name] += 1
                self._log.warning(name, "ZED get_sensors_data returned warning %s (%s); sample used",
                                  name, status)
            imu = self._data.get_imu_data()
            stamp_ns = int(imu.timestamp.get_nanoseconds())
            if stamp_ns != self._last_ns:
                break
            if waited_s >= self._no_sample_timeout_s:
                raise GrabError(f"no new ZED IMU sample for {waited_s * 1e3:.0f} ms")
            if self._wake.wait(_POLL_PERIOD_S):
                raise GrabError("interrupted")
            waited_s += _POLL_PERIOD_S
        self._last_ns = stamp_ns
        # Transform.get_orientation() takes no argument (only Pose.get_orientation does).
        q_xyzw = imu.get_pose(self._pose).get_orientation().get()
        gyro_deg_s = imu.get_angular_velocity([0.0, 0.0, 0.0])
        accel = imu.get_linear_acceleration([0.0, 0.0, 0.0])
        zed_imu_vector(q_xyzw, gyro_deg_s, accel, self.mounting, out)
        return _monotonic_from_realtime(stamp_ns)

    def interrupt(self) -> None:
        self._wake.set()

    def close(self) -> None:
        if self._acquired:
            self._acquired = False
            self.session.release()


class ZedImu(ThreadedImu):
    """The ZED's IMU as the robot's :class:`~hal.devices.base.Imu` (base frame).

    Args:
        session: The session the depth camera uses (``ZedDepthCamera(...).session``), so both
            share one opened camera. Its config's ``imu_mount_rpy_deg`` and
            ``imu_stale_after_ms`` apply.
        first_sample_timeout_ms: ``connect()`` fails if no sample arrives within this.
    """

    def __init__(self, session: ZedSession | None = None, first_sample_timeout_ms: float = 2000.0) -> None:
        self.session = session or ZedSession(ZedConfig())
        self.config = self.session.config
        self.mounting = ImuMounting(self.config.imu_mount_rpy_deg)
        super().__init__("zed-imu", self.config.imu_stale_after_ms, first_sample_timeout_ms)

    def _make_source(self) -> ZedImuSource:
        self._source = ZedImuSource(self.session, self.mounting,
                                    no_sample_timeout_ms=self.config.imu_stale_after_ms)
        return self._source

    def warnings(self) -> dict[str, int]:
        """Warning codes ``get_sensors_data`` returned so far, by name."""
        source: ZedImuSource | None = getattr(self, "_source", None)
        return dict(source.warnings) if source is not None else {}

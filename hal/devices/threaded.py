"""Device bases for backends whose data arrives on a grab thread (live ZED or recorded playback).

:class:`ThreadedDepthCamera` and :class:`ThreadedImu` implement the device contracts of
:mod:`hal.devices.base` on top of a :class:`~hal.devices.grab_loop.GrabLoop`; a backend only says
which :class:`~hal.devices.grab_loop.FrameSource` feeds it. The live ZED camera and the recorded
camera therefore share every line that is not a pyzed call.

An IMU sample travels through the grab loop as one float64 vector of :data:`IMU_VECTOR_SIZE`
(``[qw, qx, qy, qz, wx, wy, wz, ax, ay, az]``, base frame, rad/s and m/s²).
"""

from __future__ import annotations

import abc
import logging
from dataclasses import asdict
from typing import Any

import numpy as np

from hal.devices.base import (
    CameraIntrinsics,
    DepthCamera,
    DepthFrameInfo,
    DeviceError,
    DeviceNotConnectedError,
    Imu,
    ImuSample,
)
from hal.devices.grab_loop import FrameSource, GrabHealth, GrabLoop

__all__ = [
    "IMU_VECTOR_SIZE",
    "DepthFrameSource",
    "ThreadedDepthCamera",
    "ThreadedImu",
    "imu_vector",
    "imu_sample_from_vector",
]

log = logging.getLogger(__name__)

IMU_VECTOR_SIZE = 10


def imu_vector(quaternion_wxyz: np.ndarray, angular_velocity_rad_s: np.ndarray,
               linear_acceleration_m_s2: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Pack one IMU sample into the vector the grab loop carries."""
    out = np.empty(IMU_VECTOR_SIZE, dtype=np.float64) if out is None else out
    out[0:4] = quaternion_wxyz
    out[4:7] = angular_velocity_rad_s
    out[7:10] = linear_acceleration_m_s2
    return out


def imu_sample_from_vector(vector: np.ndarray, timestamp_ns: int) -> ImuSample:
    """Unpack :func:`imu_vector` (new arrays, so the sample owns its data)."""
    return ImuSample(
        quaternion_wxyz=vector[0:4].copy(),
        angular_velocity_rad_s=vector[4:7].copy(),
        linear_acceleration_m_s2=vector[7:10].copy(),
        timestamp_ns=int(timestamp_ns),
    )


class DepthFrameSource(FrameSource):
    """A frame source of float32 depth images (metres) that knows their intrinsics."""

    @property
    @abc.abstractmethod
    def intrinsics(self) -> CameraIntrinsics:
        """Intrinsics of the frames :meth:`grab` writes; valid after :meth:`open`."""


def _start_loop(source: FrameSource, name: str, stale_after_ms: float, first_timeout_ms: float,
                what: str, expected_shape: tuple[int, ...] | None = None) -> GrabLoop:
    """Start a grab loop and wait up to ``first_timeout_ms`` (0: not at all) for its first item.

    Raises:
        DeviceError: the source produces another shape, or nothing arrives in time.
    """
    loop = GrabLoop(source, name, stale_after_ms)
    loop.start()
    if expected_shape is not None and loop.frame_shape != expected_shape:
        loop.stop()
        raise DeviceError(f"{name}: source produces {loop.frame_shape}, expected {expected_shape}")
    if first_timeout_ms > 0 and not loop.wait_for_frame(first_timeout_ms / 1e3):
        summary = loop.health().summary()
        loop.stop()
        raise DeviceError(f"{name}: no {what} within {first_timeout_ms:.0f} ms of opening ({summary})")
    return loop


class ThreadedDepthCamera(DepthCamera):
    """A depth camera fed by a :class:`DepthFrameSource` on its own grab thread.

    Args:
        name: Device name for the thread, logs and errors.
        stale_after_ms: Newest frame older than this → :attr:`stale`.
        first_frame_timeout_ms: ``connect()`` waits this long for the first frame and fails if
            none comes (0: do not wait).
    """

    def __init__(self, name: str, stale_after_ms: float, first_frame_timeout_ms: float) -> None:
        if not stale_after_ms > 0:
            raise ValueError(f"{name}: stale_after_ms must be positive, got {stale_after_ms}")
        if first_frame_timeout_ms < 0:
            raise ValueError(f"{name}: first_frame_timeout_ms must be >= 0, got {first_frame_timeout_ms}")
        self.name = name
        self._stale_after_ms = float(stale_after_ms)
        self._first_frame_timeout_ms = float(first_frame_timeout_ms)
        self._loop: GrabLoop | None = None
        self._source: DepthFrameSource | None = None

    @abc.abstractmethod
    def _make_source(self) -> DepthFrameSource:
        """A fresh, unopened source (called by every ``connect()``)."""

    @property
    def is_connected(self) -> bool:
        return self._loop is not None

    def connect(self) -> None:
        if self._loop is not None:
            return
        source = self._make_source()
        loop = _start_loop(source, self.name, self._stale_after_ms, self._first_frame_timeout_ms,
                           "depth frame")
        self._source, self._loop = source, loop
        intr = source.intrinsics
        log.info("%s: streaming %dx%d depth, horizontal FOV %.1f deg", self.name, intr.width,
                 intr.height, intr.horizontal_fov_deg)

    def close(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.stop()

    def _require(self) -> GrabLoop:
        if self._loop is None:
            raise DeviceNotConnectedError(f"{self.name}: not connected (call connect() first)")
        return self._loop

    @property
    def frame_shape(self) -> tuple[int, int]:
        shape = self._require().frame_shape
        return int(shape[0]), int(shape[1])

    @property
    def intrinsics(self) -> CameraIntrinsics:
        self._require()
        assert self._source is not None
        return self._source.intrinsics

    def read_into(self, out: np.ndarray, newer_than_seq: int = 0) -> DepthFrameInfo | None:
        loop = self._require()
        if out.shape != loop.frame_shape or out.dtype != np.float32:
            raise ValueError(f"{self.name}: read_into needs a float32 array of shape {loop.frame_shape}, "
                             f"got {out.dtype} {out.shape}")
        got = loop.read_into(out, newer_than_seq)
        if got is None:
            return None
        seq, timestamp_ns = got
        return DepthFrameInfo(seq=seq, timestamp_ns=timestamp_ns, intrinsics=self.intrinsics)

    def health(self) -> GrabHealth:
        """Counters and freshness of the grab thread."""
        return self._require().health()

    @property
    def stale(self) -> bool:
        """True when the newest frame is older than ``stale_after_ms`` (or there is none)."""
        return self._loop is None or self._loop.health().stale

    def report(self) -> dict[str, Any]:
        """The run report's camera section: the device and its grab thread's counters."""
        return {"device": self.name,
                "health": asdict(self._loop.health()) if self._loop is not None else None}


class ThreadedImu(Imu):
    """An IMU fed by a frame source of :func:`imu_vector` samples on its own thread.

    ``connect()`` waits up to ``first_sample_timeout_ms`` for the first sample, so :meth:`read`
    always has one; a sample that stops changing shows as an old ``timestamp_ns`` and :attr:`stale`.
    """

    def __init__(self, name: str, stale_after_ms: float, first_sample_timeout_ms: float) -> None:
        if not stale_after_ms > 0:
            raise ValueError(f"{name}: stale_after_ms must be positive, got {stale_after_ms}")
        if not first_sample_timeout_ms > 0:
            raise ValueError(f"{name}: first_sample_timeout_ms must be positive, got {first_sample_timeout_ms}")
        self.name = name
        self._stale_after_ms = float(stale_after_ms)
        self._first_sample_timeout_ms = float(first_sample_timeout_ms)
        self._loop: GrabLoop | None = None

    @abc.abstractmethod
    def _make_source(self) -> FrameSource:
        """A fresh, unopened source of IMU vectors."""

    @property
    def is_connected(self) -> bool:
        return self._loop is not None

    def connect(self) -> None:
        if self._loop is not None:
            return
        loop = _start_loop(self._make_source(), self.name, self._stale_after_ms,
                           self._first_sample_timeout_ms, "IMU sample",
                           expected_shape=(IMU_VECTOR_SIZE,))
        self._loop = loop

    def close(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.stop()

    def read(self) -> ImuSample:
        if self._loop is None:
            raise DeviceNotConnectedError(f"{self.name}: not connected (call connect() first)")
        vector = np.empty(IMU_VECTOR_SIZE, dtype=np.float64)  # per call: read() may run on any thread
        got = self._loop.read_into(vector)
        if got is None:  # connect() waited for the first sample, so this is a broken source
            raise DeviceError(f"{self.name}: no IMU sample available")
        return imu_sample_from_vector(vector, got[1])

    def health(self) -> GrabHealth:
        if self._loop is None:
            raise DeviceNotConnectedError(f"{self.name}: not connected (call connect() first)")
        return self._loop.health()

    @property
    def stale(self) -> bool:
        return self._loop is None or self._loop.health().stale

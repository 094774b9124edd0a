"""Device wrappers the fault drills fail on purpose (:mod:`hal.server.sim.faults`).

Each wraps the real simulated device and passes everything through until the drill fires; then it
fails the way the hardware would: an IMU stream that stops (the last sample repeats, timestamp
frozen), a camera that delivers no new frame.
"""

from __future__ import annotations

import numpy as np

from hal.devices.base import CameraIntrinsics, DepthCamera, DepthFrameInfo, Imu, ImuSample

__all__ = ["FreezableImu", "DroppableDepthCamera", "FaultyEngine"]


class FreezableImu(Imu):
    """The real IMU, whose samples stop updating after :meth:`freeze` (drill ``drop-imu``).

    After the freeze, :meth:`read` repeats the last sample it returned, timestamp included, like a
    driver whose IMU stream stopped.
    """

    def __init__(self, inner: Imu) -> None:
        self.inner = inner
        self.frozen = False
        self._last: ImuSample | None = None

    @property
    def is_connected(self) -> bool:
        return self.inner.is_connected

    def connect(self) -> None:
        self.inner.connect()

    def close(self) -> None:
        self.inner.close()

    def freeze(self) -> None:
        """From now on, repeat the last sample."""
        self.frozen = True

    def read(self) -> ImuSample:
        last = self._last
        if self.frozen and last is not None:
            return ImuSample(last.quaternion_wxyz.copy(), last.angular_velocity_rad_s.copy(),
                             last.linear_acceleration_m_s2.copy(), last.timestamp_ns)
        sample = self.inner.read()
        self._last = sample
        return sample


class DroppableDepthCamera(DepthCamera):
    """The real depth camera, which delivers no new frame after :meth:`drop` (``drop-depth``)."""

    def __init__(self, inner: DepthCamera) -> None:
        self.inner = inner
        self.dropped = False

    @property
    def is_connected(self) -> bool:
        return self.inner.is_connected

    def connect(self) -> None:
        self.inner.connect()

    def close(self) -> None:
        self.inner.close()

    @property
    def frame_shape(self) -> tuple[int, int]:
        return self.inner.frame_shape

    @property
    def intrinsics(self) -> CameraIntrinsics:
        return self.inner.intrinsics

    def drop(self) -> None:
        """From now on, deliver no frame."""
        self.dropped = True

    def read_into(self, out: np.ndarray, newer_than_seq: int = 0) -> DepthFrameInfo | None:
        if self.dropped:
            return None
        return self.inner.read_into(out, newer_than_seq)


class FaultyEngine:
    """An engine whose output a drill may corrupt or delay: ``run()`` runs the real engine, then
    hands the named output buffer to ``after_run`` (drills ``stall-inference``, ``nan-actions``,
    ``wild-actions``). Inputs and outputs are the real engine's buffers."""

    def __init__(self, inner, output: str, after_run) -> None:
        self.inner = inner
        self.inputs = inner.inputs
        self.outputs = inner.outputs
        self._output = inner.outputs[output]
        self._after_run = after_run

    def run(self) -> None:
        self.inner.run()
        self._after_run(self._output)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

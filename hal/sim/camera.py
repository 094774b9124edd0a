"""Simulated depth camera: Z-depth frames ray-cast at the training camera's pose and FOV."""

from __future__ import annotations

import numpy as np

from hal.devices.base import CameraIntrinsics, DepthCamera, DepthFrameInfo, DeviceError
from hal.sim.device import SimDeviceMixin
from hal.sim.world import MujocoWorld

__all__ = ["SimDepthCamera"]


class SimDepthCamera(SimDeviceMixin, DepthCamera):
    """The depth camera of a :class:`MujocoWorld`.

    The world renders a frame every ``1 / camera_fps`` of simulated time (not every tick), with
    ``mj_multiRay`` from the camera mount (``robot.depth_camera.position_m``/``pitch_deg``) and the
    robot's own geoms excluded. Frames are float32 metres; +inf = no hit or beyond
    ``camera_max_range_m``, -inf = nearer than ``camera_min_range_m`` (the ZED's convention).
    """

    def __init__(self, world: MujocoWorld) -> None:
        super().__init__(world)

    def connect(self) -> None:
        if self.world.camera_intrinsics is None:
            raise DeviceError("SimDepthCamera: the world's camera is off (camera_fps is 0); "
                              "build the MujocoWorld with camera_fps > 0")
        super().connect()

    @property
    def intrinsics(self) -> CameraIntrinsics:
        intrinsics = self.world.camera_intrinsics
        if intrinsics is None:
            raise DeviceError("SimDepthCamera: the world's camera is off (camera_fps is 0)")
        return intrinsics

    @property
    def frame_shape(self) -> tuple[int, int]:
        return (self.intrinsics.height, self.intrinsics.width)

    def read_into(self, out: np.ndarray, newer_than_seq: int = 0) -> DepthFrameInfo | None:
        """Copy the newest frame into ``out`` if its seq exceeds ``newer_than_seq``.

        Raises:
            ValueError: ``out`` is not a float32 array of ``frame_shape``.
        """
        self._require_connected()
        if out.dtype != np.float32 or out.shape != self.frame_shape:
            raise ValueError(f"out must be float32 of shape {self.frame_shape}, "
                             f"found {out.dtype} {out.shape}")
        return self.world.read_depth_into(out, newer_than_seq)

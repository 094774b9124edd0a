"""Simulated IMU: MuJoCo frame-quaternion, gyro and accelerometer sensors at the trunk's IMU site."""

from __future__ import annotations

from hal.devices.base import Imu, ImuSample
from hal.sim.device import SimDeviceMixin
from hal.sim.world import MujocoWorld

__all__ = ["SimImu"]


class SimImu(SimDeviceMixin, Imu):
    """The trunk IMU of a :class:`MujocoWorld`: orientation in the world frame, body-frame rates.

    The accelerometer measures specific force (+9.81 m/s² up at rest), like a real one. Noise, if
    any, is set by ``MujocoWorldConfig.gyro_noise_std_rad_s`` / ``accel_noise_std_m_s2``.
    """

    def __init__(self, world: MujocoWorld) -> None:
        super().__init__(world)

    def read(self) -> ImuSample:
        self._require_connected()
        return self.world.imu_sample()

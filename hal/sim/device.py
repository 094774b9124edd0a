"""The lifecycle every simulated device shares: a view of one :class:`~hal.sim.world.MujocoWorld`."""

from __future__ import annotations

from hal.devices.base import DeviceError, DeviceNotConnectedError
from hal.sim.world import MujocoWorld

__all__ = ["SimDeviceMixin"]


class SimDeviceMixin:
    """``connect``/``close``/``is_connected`` for a device that reads a shared world.

    Connecting checks the world is still open; closing the device leaves the world running
    (other devices share it): close the world itself when done.
    """

    def __init__(self, world: MujocoWorld) -> None:
        if not isinstance(world, MujocoWorld):
            raise TypeError(f"{type(self).__name__} needs a MujocoWorld, found {type(world).__name__}")
        self.world = world
        self._connected = False

    @property
    def is_connected(self) -> bool:
        return self._connected and not self.world.closed

    def connect(self) -> None:
        if self.world.closed:
            raise DeviceError(f"{type(self).__name__}: its MujocoWorld is closed; build a new world")
        self._connected = True

    def close(self) -> None:
        self._connected = False

    def _require_connected(self) -> None:
        if not self.is_connected:
            raise DeviceNotConnectedError(
                f"{type(self).__name__} used before connect() or after close() (or its world closed)")

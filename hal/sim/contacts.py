"""Simulated foot contact sensors: the normal force on each foot geom, summed over its contacts."""

from __future__ import annotations

from hal.devices.base import ContactSample, FootContactSensor
from hal.sim.device import SimDeviceMixin
from hal.sim.world import MujocoWorld

__all__ = ["SimFootContacts"]


class SimFootContacts(SimDeviceMixin, FootContactSensor):
    """Foot normal forces (N) of a :class:`MujocoWorld`, in the robot's ``foot_names`` order.

    Forces come from MuJoCo's constraint solver (``mj_contactForce``, normal component) for every
    contact between a foot sphere and the scene; a foot in the air reads 0.
    """

    def __init__(self, world: MujocoWorld) -> None:
        super().__init__(world)

    def read(self) -> ContactSample:
        self._require_connected()
        return self.world.contact_sample()

"""Simulated motors with encoders: torque-driven MuJoCo joints under a Python PD law."""

from __future__ import annotations

import numpy as np

from hal.devices.base import JointCommand, JointDriver, JointState
from hal.sim.device import SimDeviceMixin
from hal.sim.world import MujocoWorld

__all__ = ["SimJointDriver"]


class SimJointDriver(SimDeviceMixin, JointDriver):
    """The robot's 12 joints in a :class:`MujocoWorld`, hardware order.

    ``write`` sets the PD command the world applies at every physics step from then on:
    ``tau = kp (target - q) - kd dq`` (``kp`` forced to 0 in damping mode), clamped to the
    robot's torque limits. ``close`` leaves the joints damped (robot ``kd``), like a real driver.
    """

    def __init__(self, world: MujocoWorld) -> None:
        super().__init__(world)

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.world.robot.joint_names_hardware

    def read(self) -> JointState:
        self._require_connected()
        return self.world.joint_state()

    def write(self, command: JointCommand) -> None:
        """Apply ``command`` from the next physics step on.

        Raises:
            ValueError: wrong sizes, non-finite values, negative gains or an unknown mode.
        """
        self._require_connected()
        self.world.set_command(command)

    def close(self) -> None:
        if self.is_connected:
            robot = self.world.robot
            self.damp(np.asarray(robot.to_hardware(robot.kd), dtype=np.float64))
        super().close()

"""Simulated HAL servers for the recorder tests."""

from __future__ import annotations

import itertools
import os

from hal.devices.base import JointCommand, JointDriver
from hal.server.base import HalDevices, HalServer, HalServerConfig
from hal.sim import MujocoWorldConfig, make_sim_devices

__all__ = ["KeptJoints", "make_sim_server"]

_endpoint_counter = itertools.count()


class KeptJoints(JointDriver):
    """The real simulated joint driver; every command written to it is also kept (a copy)."""

    def __init__(self, inner: JointDriver) -> None:
        self.inner = inner
        self.written: list[JointCommand] = []

    @property
    def is_connected(self) -> bool:
        return self.inner.is_connected

    @property
    def joint_names(self):
        return self.inner.joint_names

    def connect(self) -> None:
        self.inner.connect()

    def close(self) -> None:
        self.inner.close()

    def read(self):
        return self.inner.read()

    def write(self, command: JointCommand) -> None:
        self.written.append(JointCommand(command.target_rad.copy(), command.kp.copy(),
                                         command.kd.copy(), command.mode, command.timestamp_ns))
        self.inner.write(command)


def make_sim_server(robot, rate_hz: float = 50.0, realtime: bool = True,
                    budget_ms: float | None = None) -> tuple[HalServer, KeptJoints]:
    """A MuJoCo-backed HAL server on unique inproc endpoints (not started)."""
    sim = make_sim_devices(robot, MujocoWorldConfig(scene="flat", settle_s=0.3))
    joints = KeptJoints(sim.joints)
    n = next(_endpoint_counter)
    config = HalServerConfig(control_rate_hz=rate_hz,
                             latency_budget_ms=budget_ms if budget_ms else 400.0 / rate_hz,
                             observation_endpoint=f"inproc://rec_obs_{os.getpid()}_{n}",
                             command_endpoint=f"inproc://rec_cmd_{os.getpid()}_{n}",
                             realtime=realtime)
    devices = HalDevices(joints, sim.imu, sim.contacts, sim.camera, sim.world)
    return HalServer(robot, devices, config), joints

"""MuJoCo simulator backend: a hardware-free quadruped with joints, IMU, foot contacts and depth.

One :class:`MujocoWorld` holds the physics; the devices are views of it::

    from hal.robot import load_robot
    from hal.sim import MujocoWorldConfig, make_sim_devices

    sim = make_sim_devices(load_robot("go2"), MujocoWorldConfig(scene="parkour"))
    with sim:                     # connects every device, closes them and the world at the end
        sim.joints.write(command)
        sim.world.advance(0.01)   # once per control tick
        state = sim.joints.read()

``mujoco`` is imported lazily through :func:`hal.optional.require` when a world is built.
"""

from __future__ import annotations

from dataclasses import dataclass

from hal.devices.base import Device
from hal.robot import RobotConfig
from hal.sim.camera import SimDepthCamera
from hal.sim.config import MujocoWorldConfig
from hal.sim.contacts import SimFootContacts
from hal.sim.imu import SimImu
from hal.sim.joints import SimJointDriver
from hal.sim.mjcf import build_mjcf
from hal.sim.scenes import SCENES, SceneBox
from hal.sim.world import MujocoWorld

__all__ = [
    "SCENES",
    "SceneBox",
    "MujocoWorld",
    "MujocoWorldConfig",
    "SimJointDriver",
    "SimImu",
    "SimFootContacts",
    "SimDepthCamera",
    "SimDevices",
    "make_sim_devices",
    "build_mjcf",
]


@dataclass
class SimDevices:
    """One world and its four devices. ``camera`` is None when ``camera_fps`` is 0."""

    world: MujocoWorld
    joints: SimJointDriver
    imu: SimImu
    contacts: SimFootContacts
    camera: SimDepthCamera | None

    @property
    def devices(self) -> list[Device]:
        """The devices that exist (the camera only when it is on)."""
        return [d for d in (self.joints, self.imu, self.contacts, self.camera) if d is not None]

    def connect(self) -> None:
        """Connect every device."""
        for device in self.devices:
            device.connect()

    def close(self) -> None:
        """Close every device (the joints end damped), then the world. Safe to call twice."""
        for device in self.devices:
            device.close()
        self.world.close()

    def __enter__(self) -> SimDevices:
        self.connect()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def make_sim_devices(robot: RobotConfig, config: MujocoWorldConfig | None = None) -> SimDevices:
    """Build a world for ``robot`` (standing, settled) and its devices (not yet connected).

    Raises:
        hal.optional.MissingDependencyError: mujoco is not installed.
        ValueError: the robot is not a 12-joint quadruped, or a config value is bad.
    """
    world = MujocoWorld(robot, config)
    camera = SimDepthCamera(world) if world.camera_intrinsics is not None else None
    return SimDevices(world, SimJointDriver(world), SimImu(world), SimFootContacts(world), camera)

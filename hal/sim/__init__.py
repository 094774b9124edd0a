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

from hal.devices.aggregate import HalDevices
from hal.robot import RobotConfig
from hal.sim.camera import SimDepthCamera
from hal.sim.config import MujocoWorldConfig
from hal.sim.contacts import SimFootContacts
from hal.sim.height_scanner import SimHeightScanner
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
    "SimHeightScanner",
    "SimDevices",
    "make_sim_devices",
    "build_mjcf",
]


SimDevices = HalDevices
"""The simulator's devices are a :class:`~hal.devices.aggregate.HalDevices` like any robot's."""


def make_sim_devices(robot: RobotConfig, config: MujocoWorldConfig | None = None) -> HalDevices:
    """Build a world for ``robot`` (standing, settled) and its devices (not yet connected).

    The devices' clock is the world's simulated clock; closing the devices closes the world.

    Raises:
        hal.optional.MissingDependencyError: mujoco is not installed.
        ValueError: the robot is not a 12-joint quadruped, or a config value is bad.
    """
    world = MujocoWorld(robot, config)
    camera = SimDepthCamera(world) if world.camera_intrinsics is not None else None
    points = world.config.height_scan_points_xy
    scanner = SimHeightScanner(world, points) if points is not None else None
    return HalDevices(joints=SimJointDriver(world), imu=SimImu(world),
                      contacts=SimFootContacts(world), camera=camera, world=world,
                      height_scanner=scanner, clock_ns=world.now_ns)

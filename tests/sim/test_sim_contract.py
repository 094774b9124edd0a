"""The simulator built from the training contract: the height scan against the parkour course's
analytic heights, the depth camera's pose and rays against the contract's mount, foot contact as
the norm of the contact force, and the actuation delay."""

from __future__ import annotations

import math

import numpy as np
import pytest

from compute.parkour.contract import TrainingContract
from compute.parkour.layout import scan_points_xy
from hal.devices.base import JointCommand
from hal.sim.scenes import PARKOUR_COURSE

mujoco = pytest.importorskip("mujoco")

from hal.sim import MujocoWorldConfig, make_sim_devices  # noqa: E402


def course_height(x: float, y: float) -> float:
    """The parkour course's terrain height at (x, y), from its documented dimensions."""
    c = PARKOUR_COURSE
    if abs(y) > c.half_width_m or x < c.start_x_m or x > c.end_x_m:
        return -c.pit_depth_m
    if x < c.step_x_m:
        return 0.0
    if x < c.gap_x_m:
        return c.step_height_m
    if x < c.gap_x_m + c.gap_length_m:
        return -c.pit_depth_m
    return c.step_height_m


def place_base(world, x: float, y: float, yaw: float) -> None:
    """Move the free base (test set-up only) and recompute the kinematics."""
    d = world.data
    d.qpos[0], d.qpos[1] = x, y
    d.qpos[3:7] = (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
    mujoco.mj_kinematics(world.model, d)


@pytest.mark.parametrize("x, y, yaw", [(0.0, 0.0, 0.0), (1.3, 0.1, 0.0), (1.45, -0.2, 0.35),
                                        (2.0, 0.4, -0.5)])
def test_height_scan_matches_the_course(go2, x, y, yaw):
    points = scan_points_xy()
    devices = make_sim_devices(go2, MujocoWorldConfig(
        scene="parkour", camera_fps=0, settle_s=0.0,
        height_scan_points_xy=tuple(map(tuple, points.tolist()))))
    with devices:
        world = devices.world
        place_base(world, x, y, yaw)
        base_z = float(world.data.xpos[world._trunk][2])
        sample = devices.height_scanner.read()
        assert sample.base_height_m.shape == (132,)
        checked = 0
        for (px, py), measured in zip(points, sample.base_height_m):
            wx = x + math.cos(yaw) * px - math.sin(yaw) * py
            wy = y + math.sin(yaw) * px + math.cos(yaw) * py
            edges = (PARKOUR_COURSE.step_x_m, PARKOUR_COURSE.gap_x_m,
                     PARKOUR_COURSE.gap_x_m + PARKOUR_COURSE.gap_length_m)
            if min(abs(wx - e) for e in edges) < 1e-3:
                continue  # exactly on an edge either height is right
            assert measured == pytest.approx(base_z - course_height(wx, wy), abs=1e-4), (px, py)
            checked += 1
        assert checked >= 110  # at most one row of 11 points lies on an edge


def test_the_scan_sees_the_box_and_the_gap(go2):
    """In front of the box the far points rise by its height; over the gap they drop."""
    points = scan_points_xy()
    devices = make_sim_devices(go2, MujocoWorldConfig(
        scene="parkour", camera_fps=0, settle_s=0.0,
        height_scan_points_xy=tuple(map(tuple, points.tolist()))))
    with devices:
        place_base(devices.world, 0.3, 0.0, 0.0)
        ahead = devices.height_scanner.read().base_height_m.reshape(12, 11)[:, 5]
        assert ahead[-1] == pytest.approx(ahead[0] - PARKOUR_COURSE.step_height_m, abs=1e-4)
        place_base(devices.world, 1.4, 0.0, 0.0)
        ahead = devices.height_scanner.read().base_height_m.reshape(12, 11)[:, 5]
        drop = PARKOUR_COURSE.step_height_m + PARKOUR_COURSE.pit_depth_m
        assert ahead[7] == pytest.approx(ahead[5] + drop, abs=1e-4)  # x 2.0 (gap) vs 1.7 (box)
        assert ahead[-1] == pytest.approx(ahead[5], abs=1e-4)  # x 2.6: the landing, box height


@pytest.mark.parametrize("convention", ["legged_gym", "isaac_lab"])
def test_camera_pose_and_rays_follow_the_contract(go2, convention):
    contract = TrainingContract.from_robot(go2, convention)
    robot = contract.apply(go2)
    devices = make_sim_devices(robot, MujocoWorldConfig(scene="flat", camera_fps=30.0,
                                                        settle_s=0.0, fixed_base=True,
                                                        base_height_m=0.5))
    with devices:
        world = devices.world
        cam = contract.camera
        site = world._raycaster._site
        trunk_pos = world.data.xpos[world._trunk]
        position = world.data.site_xpos[site] - trunk_pos
        np.testing.assert_allclose(position, cam.position_m, atol=1e-9)
        rot = world.data.site_xmat[site].reshape(3, 3)
        pitch = math.radians(cam.pitch_deg)
        # Optical frame: z forward (pitched down), x right (-y of the base), y down.
        np.testing.assert_allclose(rot[:, 2], [math.cos(pitch), 0.0, -math.sin(pitch)], atol=1e-9)
        np.testing.assert_allclose(rot[:, 0], [0.0, -1.0, 0.0], atol=1e-9)
        k = devices.camera.intrinsics
        assert k.width == cam.width and k.height == cam.height
        assert k.horizontal_fov_deg == pytest.approx(cam.horizontal_fov_deg)
        frame = np.empty((k.height, k.width), np.float32)
        assert devices.camera.read_into(frame) is not None
        cam_z = 0.5 + cam.position_m[2]
        # A pixel at row v looks down at pitch + atan((v - cy) / fy); its ray meets the floor at
        # range cam_z / sin(angle), and its z-depth is that range times cos(atan((v-cy)/fy)).
        u = int(round(k.cx))
        for v in range(int(k.cy), k.height, 7):
            off = math.atan((v - k.cy) / k.fy)
            if pitch + off <= 0.05:
                continue
            along_ray = cam_z / math.sin(pitch + off)
            z_depth = along_ray * math.cos(off) / math.sqrt(1 + ((u - k.cx) / k.fx) ** 2)
            assert frame[v, u] == pytest.approx(z_depth, rel=1e-4), v


def test_foot_contact_is_the_norm_of_the_contact_force(go2):
    """Standing still the four contact forces carry the robot's weight."""
    devices = make_sim_devices(go2, MujocoWorldConfig(scene="flat", camera_fps=0, settle_s=1.0))
    with devices:
        forces = devices.contacts.read().force_n
        weight = float(np.sum(devices.world.model.body_mass)) * 9.81
        assert forces.sum() == pytest.approx(weight, rel=0.05)


def test_action_delay_holds_the_previous_command(go2):
    devices = make_sim_devices(go2, MujocoWorldConfig(scene="flat", camera_fps=0, settle_s=0.5,
                                                      fixed_base=True, base_height_m=0.6,
                                                      action_delay_s=0.04))
    with devices:
        joints = devices.joints
        start = joints.read().position_rad.copy()
        target = start + 0.4
        n = go2.n_joints
        joints.write(JointCommand(target, np.full(n, 40.0), np.full(n, 1.0)))
        devices.world.advance(0.03)  # inside the delay: the joints still hold their pose
        assert np.abs(joints.read().position_rad - start).max() < 0.02
        devices.world.advance(0.1)
        assert np.all(joints.read().position_rad - start > 0.2)

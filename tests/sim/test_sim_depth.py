"""The simulated depth camera against ray/box/plane geometry computed here (real MuJoCo)."""

from __future__ import annotations

import math

import numpy as np
import pytest

mujoco = pytest.importorskip("mujoco")  # the [sim] extra

from hal.sim import MujocoWorldConfig, SceneBox, make_sim_devices  # noqa: E402
from hal.sim.mjcf import CAMERA_SITE, ROBOT_GEOM_GROUP  # noqa: E402
from hal.sim.raycast import DepthRaycaster, pinhole_intrinsics  # noqa: E402
from hal.sim.scenes import PARKOUR_COURSE  # noqa: E402


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def camera_rays(world, robot, width=106, height=60, hfov_deg=87.0):
    """Camera origin, unit ray per pixel (world frame, row-major) and each ray's cosine to the axis.

    Built from the trunk pose and the mount in the robot definition, not from the model's site.
    """
    rot_base = quat_to_matrix(world.base_quaternion_wxyz)
    cam = robot.depth_camera
    origin = world.base_position_m + rot_base @ np.asarray(cam.position_m)
    p = math.radians(cam.pitch_deg)
    forward = rot_base @ [math.cos(p), 0.0, -math.sin(p)]  # pitched down from the base's x axis
    right = rot_base @ [0.0, -1.0, 0.0]
    down = np.cross(forward, right)
    # Pixel centres spread evenly over the horizontal FOV's image plane at unit depth.
    half_w = math.tan(math.radians(hfov_deg) / 2)
    pixel = 2 * half_w / width
    xs = (np.arange(width) - (width - 1) / 2) * pixel
    ys = (np.arange(height) - (height - 1) / 2) * pixel
    x, y = np.meshgrid(xs, ys)
    dirs = forward + x[..., None] * right + y[..., None] * down
    norms = np.linalg.norm(dirs, axis=-1, keepdims=True)
    return origin, (dirs / norms).reshape(-1, 3), (1.0 / norms).reshape(-1)


def hit_plane_z(origin, dirs, z0):
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (z0 - origin[2]) / dirs[:, 2]
    return np.where(t > 0, t, np.inf)


def hit_box(origin, dirs, center, half):
    """Slab-method ray/axis-aligned box intersection: the entry distance, inf on a miss."""
    lo, hi = np.asarray(center) - half, np.asarray(center) + half
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (lo - origin) / dirs
        t2 = (hi - origin) / dirs
    t_near = np.max(np.minimum(t1, t2), axis=1)
    t_far = np.min(np.maximum(t1, t2), axis=1)
    return np.where((t_near <= t_far) & (t_near > 0), t_near, np.inf)


def expected_depth(ranges, cos_axis, shape, max_range_m=MujocoWorldConfig.camera_max_range_m):
    """Z-depth of each ray; beyond the camera's range (MujocoWorldConfig's default) +inf."""
    depth = (ranges * cos_axis).reshape(shape)
    return np.where(depth > max_range_m, np.inf, depth)


def assert_depth_matches(image, expected, tol_m=1e-4, max_bad_fraction=0.005):
    """Equal within tol, except a few rays that graze an edge (and then pick the other surface)."""
    with np.errstate(invalid="ignore"):  # inf - inf
        close = (image == expected) | (np.abs(image - expected) < tol_m)
    assert np.mean(~close) <= max_bad_fraction, (np.argwhere(~close)[:10], image[~close][:10],
                                                 expected[~close][:10])


def test_intrinsics_are_consistent_with_the_fov():
    k = pinhole_intrinsics(106, 60, 87.0)
    assert k.horizontal_fov_deg == pytest.approx(87.0)
    assert k.fx == k.fy
    # Pixel edges at -0.5 and W-0.5 sit at ±tan(FOV/2) on the unit image plane.
    assert (-0.5 - k.cx) / k.fx == pytest.approx(-math.tan(math.radians(43.5)))
    assert (105.5 - k.cx) / k.fx == pytest.approx(math.tan(math.radians(43.5)))
    half_v = math.tan(math.radians(43.5)) * 60 / 106
    assert k.vertical_fov_deg == pytest.approx(2 * math.degrees(math.atan(half_v)))


def test_camera_sees_a_box_in_front_at_the_right_distance(go2):
    box_center, box_half = (0.65, 0.0, 0.1), (0.05, 0.25, 0.1)
    target = SceneBox("target", box_center, box_half)
    sim = make_sim_devices(go2, MujocoWorldConfig(extra_boxes=(target,)))
    with sim:
        assert sim.camera.frame_shape == (60, 106)
        image = np.zeros(sim.camera.frame_shape, np.float32)
        info = sim.camera.read_into(image)
        assert info is not None and info.intrinsics == pinhole_intrinsics(106, 60, 87.0)
        origin, dirs, cos_axis = camera_rays(sim.world, go2)
    box_hits = hit_box(origin, dirs, box_center, np.array(box_half))
    ranges = np.minimum(hit_plane_z(origin, dirs, 0.0), box_hits)
    expected = expected_depth(ranges, cos_axis, image.shape)
    on_box = np.isfinite(box_hits).reshape(image.shape)
    assert on_box.mean() > 0.1  # the box fills a good part of the view
    assert_depth_matches(image, expected)
    # Back-project the image: every pixel in range has its 3-D point on the ground, on the box's
    # front face (x = 0.60) or on its top (z = 0.20), and the front face is seen. (Rays near the
    # horizon meet the ground beyond the camera's range: +inf, checked against `expected` above.)
    assert image.dtype == np.float32
    seen = np.isfinite(image.reshape(-1))
    assert seen.mean() > 0.8
    points = origin + (image.reshape(-1)[seen] / cos_axis[seen])[:, None] * dirs[seen]
    x, y, z = points.T
    tol = 1e-4
    on_face = (np.abs(x - 0.60) < tol) & (np.abs(y) <= 0.25 + tol) & (z > -tol) & (z < 0.2 + tol)
    on_top = (np.abs(z - 0.20) < tol) & (np.abs(x - 0.65) <= 0.05 + tol) & (np.abs(y) <= 0.25 + tol)
    on_ground = np.abs(z) < tol
    assert on_face.sum() > 100
    assert np.mean(on_face | on_top | on_ground) > 0.995


def test_parkour_course_is_seen_where_the_geometry_puts_it(go2):
    sim = make_sim_devices(go2, MujocoWorldConfig(scene="parkour", camera_max_range_m=3.0))
    with sim:
        image = np.zeros(sim.camera.frame_shape, np.float32)
        sim.camera.read_into(image)
        origin, dirs, cos_axis = camera_rays(sim.world, go2)
    ranges = hit_plane_z(origin, dirs, -PARKOUR_COURSE.pit_depth_m)
    step_hits = None
    for box in PARKOUR_COURSE.boxes():
        hits = hit_box(origin, dirs, box.center_m, np.array(box.half_size_m))
        ranges = np.minimum(ranges, hits)
        if box.name == "box_step":
            step_hits = hits
    expected = expected_depth(ranges, cos_axis, image.shape)
    expected[expected > 3.0] = np.inf
    assert np.mean(np.isfinite(step_hits) & (step_hits <= ranges)) > 0.02  # the step is in view
    assert_depth_matches(image, expected)


def test_robot_is_invisible_to_its_own_camera(go2):
    """A front leg swung up into the view: rays that see the robot would hit it."""
    q = go2.to_hardware(go2.default_angles).astype(float)
    q[go2.joint_names_hardware.index("FR_thigh_joint")] = -1.2
    q[go2.joint_names_hardware.index("FR_calf_joint")] = -0.9
    sim = make_sim_devices(go2, MujocoWorldConfig(fixed_base=True, base_height_m=0.32,
                                                  initial_joint_positions_rad=tuple(q), settle_s=0.0))
    with sim:
        image = np.zeros(sim.camera.frame_shape, np.float32)
        sim.camera.read_into(image)
        world = sim.world
        site = mujoco.mj_name2id(world.model, mujoco.mjtObj.mjOBJ_SITE, CAMERA_SITE)
        groups = np.ones(6, np.uint8)  # every group, the robot's included
        seeing_all = DepthRaycaster(mujoco, world.model, site, pinhole_intrinsics(106, 60, 87.0), groups)
        with_robot = np.zeros_like(image)
        seeing_all.render(world.data, with_robot)
        origin, dirs, cos_axis = camera_rays(world, go2)
    assert groups[ROBOT_GEOM_GROUP] == 1
    assert np.mean(with_robot < image - 0.01) > 0.01  # the leg is in front of the camera
    assert_depth_matches(image, expected_depth(hit_plane_z(origin, dirs, 0.0), cos_axis, image.shape))


def test_frames_come_at_the_camera_rate_not_every_tick(go2):
    sim = make_sim_devices(go2, MujocoWorldConfig(camera_fps=30.0, clock_origin_ns=0))
    with sim:
        image = np.zeros(sim.camera.frame_shape, np.float32)
        first = sim.camera.read_into(image)
        assert first.seq == 1 and first.timestamp_ns == 0
        assert sim.camera.read_into(image, newer_than_seq=first.seq) is None
        image[:] = -1.0
        seqs, stamps = [first.seq], [first.timestamp_ns]
        for _ in range(100):  # 1 s of 10 ms ticks
            sim.world.advance(0.01)
            info = sim.camera.read_into(image, newer_than_seq=seqs[-1])
            if info is not None:
                seqs.append(info.seq)
                stamps.append(info.timestamp_ns)
        with pytest.raises(ValueError, match="float32"):
            sim.camera.read_into(np.zeros((60, 106), np.float64))
    assert seqs == list(range(1, 32))  # 30 new frames in 1 s, none skipped or repeated
    period, dt = 1e9 / 30, 5_000_000
    for k, stamp in enumerate(stamps):  # frame k is taken at the first physics step at or after k/30 s
        assert k * period <= stamp < k * period + dt + 1
    assert np.all(image > 0)  # the newest frame was copied over the -1 fill


def test_resolution_fov_and_range_are_configurable(go2):
    config = MujocoWorldConfig(camera_width=64, camera_height=32, camera_horizontal_fov_deg=110.0,
                               camera_max_range_m=0.5, camera_min_range_m=0.38)
    sim = make_sim_devices(go2, config)
    with sim:
        assert sim.camera.frame_shape == (32, 64)
        assert sim.camera.intrinsics.horizontal_fov_deg == pytest.approx(110.0)
        image = np.zeros((32, 64), np.float32)
        sim.camera.read_into(image)
        origin, dirs, cos_axis = camera_rays(sim.world, go2, 64, 32, 110.0)
    expected = expected_depth(hit_plane_z(origin, dirs, 0.0), cos_axis, image.shape)
    expected[expected > 0.5] = np.inf
    expected[expected < 0.38] = -np.inf
    assert np.any(np.isposinf(image)) and np.any(np.isneginf(image))
    assert_depth_matches(image, expected)


def test_render_thread_frames_match_synchronous_ones(go2):
    """A frame cast on the render thread equals the synchronous frame of the same instant (the
    state is snapshotted at capture), carries the capture time, and arrives a cast later."""
    box = SceneBox("target", (0.8, 0.0, 0.15), (0.05, 0.4, 0.15))
    frames = {}
    for threaded in (False, True):
        cfg = MujocoWorldConfig(camera_fps=30.0, clock_origin_ns=0, extra_boxes=(box,),
                                render_thread=threaded)
        sim = make_sim_devices(go2, cfg)
        with sim:
            image = np.zeros(sim.camera.frame_shape, np.float32)
            got = []
            for _ in range(40):
                sim.world.advance(0.01)
                if threaded:
                    sim.world._renderer.wait_idle()
                info = sim.camera.read_into(image, newer_than_seq=got[-1][0] if got else 0)
                if info is not None:
                    got.append((info.seq, info.timestamp_ns, image.copy()))
            frames[threaded] = got
    sync, threaded = frames[False], frames[True]
    assert [s for s, _, _ in threaded] == [s for s, _, _ in sync]
    for (_, t_sync, f_sync), (_, t_thr, f_thr) in zip(sync, threaded):
        assert t_thr == t_sync
        np.testing.assert_array_equal(f_thr, f_sync)
    assert np.isfinite(sync[-1][2]).any()

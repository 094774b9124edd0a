"""ZED backend logic that needs no camera: config validation, intrinsics from calibration and
their rescaling, the training-FOV check, clock mapping, IMU frame conversion, and the pyzed gate."""

from __future__ import annotations

import math
import types
import warnings

import numpy as np
import pytest

from hal.devices.base import CameraIntrinsics
from hal.jetson.intrinsics import intrinsics_from_calibration, scale_intrinsics, training_fov_margins_px
from hal.jetson.transforms import ImuMounting, quat_from_rpy, quat_multiply, quat_to_matrix, quat_to_rpy
from hal.jetson.zed_camera import ZedConfig, ZedDepthCamera, realtime_to_monotonic_ns
from hal.jetson.zed_imu import ZedImu, zed_imu_vector
from hal.optional import MissingDependencyError, available
from hal.robot import DepthCameraModel

# A ZED 2i left camera at HD720 (rectified): ~104 deg horizontal field of view.
ZED2I_HD720 = types.SimpleNamespace(fx=522.5, fy=522.5, cx=641.3, cy=361.8)


# -- config -------------------------------------------------------------------------------------

def test_config_defaults_are_valid_and_neural():
    cfg = ZedConfig()
    assert cfg.depth_mode == "NEURAL" and cfg.resolution == "HD720"


@pytest.mark.parametrize("kwargs, words", [
    ({"resolution": "HD999"}, ["HD999", "HD720", "VGA"]),
    ({"fps": 45}, ["45", "60"]),
    ({"depth_mode": "NONE"}, ["NONE", "NEURAL_LIGHT"]),
    ({"depth_width": 320}, ["together"]),
    ({"depth_width": 2000, "depth_height": 100}, ["exceeds", "1280x720"]),
    ({"depth_minimum_distance_m": 3.0, "depth_maximum_distance_m": 2.0}, ["empty"]),
    ({"serial_number": -4}, ["serial_number"]),
    ({"stale_after_ms": 0}, ["stale_after_ms"]),
    ({"imu_mount_rpy_deg": (0, float("nan"), 0)}, ["imu_mount_rpy_deg"]),
])
def test_config_rejects_bad_values_naming_them(kwargs, words):
    with pytest.raises(ValueError) as err:
        ZedConfig(**kwargs)
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize("mode", ["PERFORMANCE", "QUALITY", "ULTRA"])
def test_deprecated_depth_modes_still_open_but_warn(mode):
    with pytest.warns(DeprecationWarning, match=mode):
        assert ZedConfig(depth_mode=mode).depth_mode == mode


@pytest.mark.parametrize("mode", ["NEURAL_LIGHT", "NEURAL", "NEURAL_PLUS"])
def test_neural_modes_do_not_warn(mode):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ZedConfig(depth_mode=mode)


# -- intrinsics ---------------------------------------------------------------------------------

def test_intrinsics_from_zed_calibration():
    intr = intrinsics_from_calibration(ZED2I_HD720, 1280, 720)
    assert (intr.width, intr.height, intr.fx, intr.cy) == (1280, 720, 522.5, 361.8)
    # Independent: hfov = 2 atan(w / 2fx).
    assert intr.horizontal_fov_deg == pytest.approx(math.degrees(2 * math.atan(640 / 522.5)))


@pytest.mark.parametrize("calib, words", [
    (types.SimpleNamespace(fx=500.0, fy=500.0, cx=641.3), ["cy"]),
    (types.SimpleNamespace(fx=0.0, fy=500.0, cx=640.0, cy=360.0), ["focal"]),
    (types.SimpleNamespace(fx=500.0, fy=500.0, cx=1900.0, cy=360.0), ["outside", "1280x720"]),
    (types.SimpleNamespace(fx=float("nan"), fy=500.0, cx=640.0, cy=360.0), ["fx", "finite"]),
])
def test_intrinsics_from_calibration_rejects_bad_calibration(calib, words):
    with pytest.raises(ValueError) as err:
        intrinsics_from_calibration(calib, 1280, 720)
    for word in words:
        assert word in str(err.value)


def _project(intr: CameraIntrinsics, point) -> np.ndarray:
    x, y, z = point
    return np.array([intr.fx * x / z + intr.cx, intr.fy * y / z + intr.cy])


def test_scaled_intrinsics_project_points_where_the_resampled_image_has_them():
    intr = intrinsics_from_calibration(ZED2I_HD720, 1280, 720)
    small = scale_intrinsics(intr, 160, 90)
    for point in [(0.3, -0.2, 1.5), (-1.0, 0.4, 2.0), (0.0, 0.0, 1.0)]:
        u, v = _project(intr, point)
        # Pixel-centre convention: continuous coordinate u + 0.5 scales by the size ratio.
        expected = np.array([(u + 0.5) * 160 / 1280 - 0.5, (v + 0.5) * 90 / 720 - 0.5])
        np.testing.assert_allclose(_project(small, point), expected, rtol=0, atol=1e-9)
    assert small.horizontal_fov_deg == pytest.approx(intr.horizontal_fov_deg)
    assert small.vertical_fov_deg == pytest.approx(intr.vertical_fov_deg)


def test_training_fov_margins_match_ray_projection():
    model = DepthCameraModel()
    intr = intrinsics_from_calibration(ZED2I_HD720, 1280, 720)
    margins = training_fov_margins_px(intr, model)
    # Independent: the ray at half the training FOV lands at u = cx + fx tan(hfov/2); the image's
    # right edge is at width - 0.5 in pixel-index coordinates.
    u_right = intr.cx + intr.fx * math.tan(math.radians(87.0 / 2))
    u_left = intr.cx - intr.fx * math.tan(math.radians(87.0 / 2))
    assert margins.right == pytest.approx((1280 - 0.5) - u_right)
    assert margins.left == pytest.approx(u_left - (-0.5))
    vfov = 2 * math.atan(math.tan(math.radians(87.0 / 2)) * 60 / 106)
    assert margins.bottom == pytest.approx((720 - 0.5) - (intr.cy + intr.fy * math.tan(vfov / 2)))
    assert margins.covered and "covers" in margins.describe()


def test_a_narrow_camera_does_not_cover_the_training_fov():
    narrow = CameraIntrinsics(width=640, height=480, fx=800.0, fy=800.0, cx=319.5, cy=239.5)
    margins = training_fov_margins_px(narrow, DepthCameraModel())
    assert not margins.covered
    assert "left" in margins.describe() and "right" in margins.describe()
    off_centre = CameraIntrinsics(width=1280, height=720, fx=522.5, fy=522.5, cx=200.0, cy=360.0)
    m = training_fov_margins_px(off_centre, DepthCameraModel())
    assert m.left < 0 < m.right and "left" in m.describe() and "right" not in m.describe()


def test_realtime_to_monotonic_keeps_the_offset_between_clocks():
    assert realtime_to_monotonic_ns(1_700_000_000_500, 1_700_000_001_000, 2_000) == 1_500


# -- IMU frames ---------------------------------------------------------------------------------

def test_zed_quaternion_order_and_degrees_are_converted():
    theta = 0.7
    q_xyzw = [0.0, 0.0, math.sin(theta / 2), math.cos(theta / 2)]  # yaw by theta
    vec = zed_imu_vector(q_xyzw, [90.0, -180.0, 45.0], [0.1, 0.2, 9.8], ImuMounting())
    np.testing.assert_allclose(vec[0:4], [math.cos(theta / 2), 0, 0, math.sin(theta / 2)], atol=1e-12)
    np.testing.assert_allclose(vec[4:7], [math.pi / 2, -math.pi, math.pi / 4], atol=1e-12)
    np.testing.assert_allclose(vec[7:10], [0.1, 0.2, 9.8])


def test_camera_tilted_nose_down_on_a_level_robot_reports_a_level_base():
    tilt = math.radians(30.0)
    mounting = ImuMounting((0.0, 30.0, 0.0))
    # The camera's orientation in the world is its mounting when the base is level (yaw 0).
    q_world_imu = quat_from_rpy(0.0, tilt, 0.0)
    q_xyzw = [q_world_imu[1], q_world_imu[2], q_world_imu[3], q_world_imu[0]]
    # Gravity reaction seen in the camera axes, by hand: R_y(tilt)^T (0, 0, g).
    g = 9.81
    acc_cam = [-math.sin(tilt) * g, 0.0, math.cos(tilt) * g]
    # A yaw rate of the base (about base z) seen in camera axes: R_y(tilt)^T (0, 0, w).
    w = 0.5
    gyro_cam_deg = np.degrees([-math.sin(tilt) * w, 0.0, math.cos(tilt) * w])
    vec = zed_imu_vector(q_xyzw, gyro_cam_deg, acc_cam, mounting)
    np.testing.assert_allclose(vec[0:4], [1, 0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(vec[4:7], [0, 0, w], atol=1e-12)
    np.testing.assert_allclose(vec[7:10], [0, 0, g], atol=1e-12)


def test_base_roll_pitch_survive_the_mounting_transform():
    mounting = ImuMounting((2.0, 25.0, -3.0))
    q_world_base = quat_from_rpy(0.1, -0.2, 1.3)
    q_world_imu = quat_multiply(q_world_base, mounting.q_base_imu)
    q_base, _, _ = mounting.to_base(q_world_imu, np.zeros(3), np.zeros(3))
    np.testing.assert_allclose(quat_to_rpy(q_base), [0.1, -0.2, 1.3], atol=1e-12)
    # Matrix check, independent of the quaternion product: R_wb = R_wi R_bi^T.
    r_expected = quat_to_matrix(q_world_imu) @ quat_to_matrix(mounting.q_base_imu).T
    np.testing.assert_allclose(quat_to_matrix(q_base), r_expected, atol=1e-12)


def test_rpy_quaternion_matches_rotation_matrices():
    roll, pitch, yaw = 0.3, -0.4, 2.0
    rx = np.array([[1, 0, 0], [0, math.cos(roll), -math.sin(roll)], [0, math.sin(roll), math.cos(roll)]])
    ry = np.array([[math.cos(pitch), 0, math.sin(pitch)], [0, 1, 0], [-math.sin(pitch), 0, math.cos(pitch)]])
    rz = np.array([[math.cos(yaw), -math.sin(yaw), 0], [math.sin(yaw), math.cos(yaw), 0], [0, 0, 1]])
    np.testing.assert_allclose(quat_to_matrix(quat_from_rpy(roll, pitch, yaw)), rz @ ry @ rx, atol=1e-12)


# -- gating -------------------------------------------------------------------------------------

@pytest.mark.skipif(available("pyzed.sl"), reason="pyzed is installed here")
def test_connect_without_pyzed_names_the_zed_sdk_installer():
    camera = ZedDepthCamera(ZedConfig())
    with pytest.raises(MissingDependencyError, match="ZED SDK"):
        camera.connect()
    assert not camera.is_connected
    imu = ZedImu(camera.session)
    with pytest.raises(MissingDependencyError, match="get_python_api"):
        imu.connect()
    camera.close()
    imu.close()


@pytest.mark.skipif(not available("pyzed.sl"), reason="needs the ZED SDK (pyzed) and a ZED camera")
def test_live_zed_streams_depth_and_imu():  # pragma: no cover - hardware only
    camera = ZedDepthCamera(ZedConfig(resolution="HD720", fps=30, depth_width=320, depth_height=180))
    imu = ZedImu(camera.session)
    with camera, imu:
        out = np.empty(camera.frame_shape, np.float32)
        assert camera.read_into(out) is not None
        assert training_fov_margins_px(camera.intrinsics, DepthCameraModel()).covered
        sample = imu.read()
        assert np.linalg.norm(sample.linear_acceleration_m_s2) == pytest.approx(9.81, abs=1.0)

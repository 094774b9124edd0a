"""The ZED backend against a fake ``pyzed.sl`` with pyzed's real call signatures (tests/fakes).

These run the pyzed calls themselves (open, IMU poll, depth grab) without a camera, so a wrong
argument count or a member the installed SDK lacks fails here rather than on the robot.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from hal.devices.base import DeviceError
from hal.jetson.zed_camera import ZedConfig, ZedDepthCamera
from hal.jetson.zed_imu import ZedImu
from tests.fakes import install
from tests.fakes.pyzed import ZedScript, make_pyzed


@pytest.fixture
def zed(monkeypatch):
    def make(**fields) -> ZedScript:
        script = ZedScript(**fields)
        pyzed, sl = make_pyzed(script)
        install(monkeypatch, {"pyzed": pyzed, "pyzed.sl": sl})
        return script

    return make


def _connected_imu(config: ZedConfig) -> ZedImu:
    camera = ZedDepthCamera(config)
    imu = ZedImu(camera.session, first_sample_timeout_ms=2000.0)
    imu.connect()
    return imu


def test_imu_sample_goes_through_transform_get_orientation_without_arguments(zed):
    theta = 0.6  # yaw of the IMU in the world
    zed(imu_q_xyzw=(0.0, 0.0, math.sin(theta / 2), math.cos(theta / 2)),
        gyro_deg_s=(0.0, 0.0, 90.0), accel_m_s2=(0.0, 0.0, 9.81))
    imu = _connected_imu(ZedConfig())
    try:
        sample = imu.read()
    finally:
        imu.close()
    np.testing.assert_allclose(sample.quaternion_wxyz, [math.cos(theta / 2), 0, 0, math.sin(theta / 2)],
                               atol=1e-12)
    np.testing.assert_allclose(sample.angular_velocity_rad_s, [0, 0, math.pi / 2], atol=1e-12)
    np.testing.assert_allclose(sample.linear_acceleration_m_s2, [0, 0, 9.81], atol=1e-12)


def test_imu_data_is_rotated_from_the_imu_frame_into_the_camera_frame(zed):
    # The factory camera-IMU rotation: IMU axes yawed +90 deg in the camera (x_imu = y_cam).
    half = math.radians(90.0) / 2
    zed(camera_imu_q_xyzw=(0.0, 0.0, math.sin(half), math.cos(half)),
        gyro_deg_s=(10.0, 0.0, 0.0), accel_m_s2=(1.0, 0.0, 9.81))
    imu = _connected_imu(ZedConfig())
    try:
        sample = imu.read()
    finally:
        imu.close()
    # By hand: Rz(90) maps x to y, so a rate about the IMU's x is a rate about the camera's y.
    np.testing.assert_allclose(sample.angular_velocity_rad_s, [0, math.radians(10.0), 0], atol=1e-12)
    np.testing.assert_allclose(sample.linear_acceleration_m_s2, [0, 1.0, 9.81], atol=1e-12)


def test_depth_opens_without_temporal_stabilisation(zed):
    script = zed()
    camera = ZedDepthCamera(ZedConfig(depth_width=320, depth_height=180))
    with camera:
        out = np.empty(camera.frame_shape, np.float32)
        assert camera.read_into(out) is not None
    init = script.opened_with[0]
    assert init.depth_stabilization == 0
    assert init.coordinate_units.name == "METER"
    np.testing.assert_array_equal(out, 2.0)


@pytest.mark.parametrize("version, resolution, mode, ok", [
    ("4.2.5", "HD720", "NEURAL_LIGHT", False),
    ("4.2.5", "HD1536", "NEURAL", False),
    ("4.0.8", "HD720", "NEURAL_PLUS", False),
    ("5.0.2", "HD1536", "NEURAL_LIGHT", True),
    ("4.2.5", "HD720", "NEURAL_PLUS", True),
])
def test_modes_the_installed_sdk_lacks_are_refused_naming_what_it_has(zed, version, resolution, mode, ok):
    zed(sdk_version=version)
    camera = ZedDepthCamera(ZedConfig(resolution=resolution, depth_mode=mode))
    if ok:
        camera.connect()
        camera.close()
        return
    with pytest.raises(DeviceError) as err:
        camera.connect()
    message = str(err.value)
    assert f"ZED SDK {version}" in message and "offers" in message
    assert not camera.is_connected


def test_sdk_options_follow_the_sdk_version(zed):
    zed(sdk_version="4.2.5")
    import pyzed.sl as sl

    from hal.jetson.zed_camera import sdk_options

    resolutions, modes = sdk_options(sl)
    assert "HD1536" not in resolutions and "NEURAL_LIGHT" not in modes and "NEURAL" in modes


@pytest.mark.parametrize("version, warns", [("4.2.5", True), ("5.0.2", True), ("5.1.0", False)])
def test_an_sdk_that_holds_the_gil_is_named_in_a_warning(zed, caplog, version, warns):
    zed(sdk_version=version)
    camera = ZedDepthCamera(ZedConfig())
    with caplog.at_level(logging.WARNING, logger="hal.jetson.zed_camera"):
        camera.connect()
        camera.close()
    assert any("GIL" in r.getMessage() for r in caplog.records) == warns

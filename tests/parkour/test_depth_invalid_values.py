"""Invalid depth as the training camera saw it: a ZED's -inf (closer than its minimum range) is
near, NaN (occlusion), +inf (beyond range) and 0 (no data) are far; and a policy trained on
distance-to-camera depth gets each pixel's z-depth converted along its ray."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from compute.parkour.depth import DepthPreprocessor, DepthPreprocessorConfig, INVALID_MODES
from hal.sim.raycast import pinhole_intrinsics

NEAR = -0.5  # d / 2 - 0.5 at 0 m
FAR = 0.5  # at 2 m


def training_camera_frame(go2, value: float) -> tuple[np.ndarray, object]:
    cam = go2.depth_camera
    intrinsics = pinhole_intrinsics(cam.width, cam.height, cam.horizontal_fov_deg)
    return np.full((cam.height, cam.width), value, np.float32), intrinsics


@pytest.mark.parametrize("mode", INVALID_MODES)
@pytest.mark.parametrize("value, expected", [(-np.inf, NEAR), (np.nan, FAR), (np.inf, FAR),
                                             (0.0, FAR), (5.0, FAR), (1.0, 0.0)])
def test_a_whole_frame_of_one_value(go2, mode, value, expected):
    frame, intrinsics = training_camera_frame(go2, value)
    pre = DepthPreprocessor(intrinsics, go2.depth_camera, DepthPreprocessorConfig(invalid_mode=mode))
    np.testing.assert_allclose(pre.process(frame), expected, atol=1e-5)


def test_a_riser_inside_the_minimum_range_reads_near(go2):
    """The lower half of the view -inf (a step right in front), the upper half 1.5 m."""
    frame, intrinsics = training_camera_frame(go2, 1.5)
    frame[30:] = -np.inf
    out = DepthPreprocessor(intrinsics, go2.depth_camera).process(frame)
    assert np.all(out[-10:] < NEAR + 1e-3)  # bottom rows: near
    np.testing.assert_allclose(out[:10], 1.5 / 2 - 0.5, atol=1e-5)


@pytest.mark.parametrize("mode", INVALID_MODES)
def test_distance_to_camera_conversion(go2, mode):
    """A wall at z = 1.2 m: the distance-type preprocessing equals the z-type preprocessing of
    the per-pixel distances |ray| · z computed here."""
    frame, intrinsics = training_camera_frame(go2, 1.2)
    k = intrinsics
    u, v = np.meshgrid(np.arange(k.width), np.arange(k.height))
    distance = 1.2 * np.sqrt(1 + ((u - k.cx) / k.fx) ** 2 + ((v - k.cy) / k.fy) ** 2)
    config = DepthPreprocessorConfig(invalid_mode=mode)
    as_distance = DepthPreprocessor(
        k, replace(go2.depth_camera, depth_type="distance_to_camera"), config).process(frame).copy()
    reference = DepthPreprocessor(k, go2.depth_camera, config).process(
        distance.astype(np.float32))
    np.testing.assert_allclose(as_distance, reference, atol=1e-5)
    # Corners are farther along their rays than the centre.
    assert as_distance[0, 0] > as_distance[29, 43] + 0.05
    assert math.isclose(float(as_distance[29, 43]), 1.2 / 2 - 0.5, abs_tol=0.02)

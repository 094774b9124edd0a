"""Depth preprocessing against a slow per-pixel reference and torch's bicubic interpolation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hal.devices.base import CameraIntrinsics
from hal.robot import DepthCameraModel
from compute.parkour.depth import (
    DepthPreprocessor,
    DepthPreprocessorConfig,
    bicubic_weights,
)

torch = pytest.importorskip("torch")

CAM = DepthCameraModel()  # 106×60, 87°, 0–2 m, policy 58×87


def intrinsics_for(width, height, hfov_deg, cx_offset=0.0, cy_offset=0.0, aspect=1.0):
    fx = width / (2 * math.tan(math.radians(hfov_deg) / 2))
    return CameraIntrinsics(width, height, fx, fx * aspect, (width - 1) / 2 + cx_offset,
                            (height - 1) / 2 + cy_offset)


def reference(frame, intr, cam, mode):
    """Per training pixel: walk the real pixels it covers, weight each by its overlap area."""
    tan_h = math.tan(math.radians(cam.horizontal_fov_deg) / 2)
    tan_v = tan_h * cam.height / cam.width
    # Field of view edges (pixel-edge coordinates; pixel centres are at integer + 0.5).
    left = intr.cx + 0.5 - intr.fx * tan_h
    top = intr.cy + 0.5 - intr.fy * tan_v
    cell_w = 2 * intr.fx * tan_h / cam.width
    cell_h = 2 * intr.fy * tan_v / cam.height
    far = cam.far_m
    image = np.zeros((cam.height, cam.width))
    for i in range(cam.height):
        y_lo, y_hi = top + i * cell_h, top + (i + 1) * cell_h
        for j in range(cam.width):
            x_lo, x_hi = left + j * cell_w, left + (j + 1) * cell_w
            total = weight_sum = valid_weight = 0.0
            for r in range(max(0, math.floor(y_lo)), min(intr.height, math.ceil(y_hi))):
                wy = min(y_hi, r + 1) - max(y_lo, r)
                for c in range(max(0, math.floor(x_lo)), min(intr.width, math.ceil(x_hi))):
                    wgt = wy * (min(x_hi, c + 1) - max(x_lo, c))
                    if wgt <= 0:
                        continue
                    d = float(frame[r, c])
                    # docs/architecture.md#the-depth-image: -inf (closer than the camera's minimum
                    # range) is near, 0 m; NaN (occlusion), 0 and negatives (no data) are holes;
                    # +inf is far.
                    hole = d != -math.inf and (math.isnan(d) or d <= 0.0)
                    if hole and mode == "ignore_holes":
                        weight_sum += wgt
                        continue
                    value = far if hole else min(max(d, cam.near_m), far)
                    total += wgt * value
                    valid_weight += wgt
                    weight_sum += wgt
            if mode == "ignore_holes":
                image[i, j] = total / valid_weight if valid_weight > 1e-6 * weight_sum else far
            else:
                image[i, j] = total / weight_sum
    cropped = torch.from_numpy(image[:-2, 4:-4]).double()[None, None]
    resized = torch.nn.functional.interpolate(cropped, size=(58, 87), mode="bicubic",
                                              align_corners=False)[0, 0].numpy()
    return resized / 2.0 - 0.5


def holey_frame(intr, seed):
    rng = np.random.default_rng(seed)
    h, w = intr.height, intr.width
    yy, xx = np.mgrid[0:h, 0:w]
    frame = (0.4 + 1.8 * yy / h + 0.3 * np.sin(xx / 7.0)).astype(np.float32)  # ~0.1..2.5 m
    frame += rng.normal(0, 0.02, (h, w)).astype(np.float32)
    pick = rng.random((h, w))
    frame[pick < 0.04] = np.nan
    frame[(pick >= 0.04) & (pick < 0.06)] = np.inf
    frame[(pick >= 0.06) & (pick < 0.08)] = -np.inf
    frame[(pick >= 0.08) & (pick < 0.10)] = 0.0
    frame[(pick >= 0.10) & (pick < 0.11)] = 7.5       # beyond range
    frame[h // 2 - 12: h // 2 + 12, w // 2 - 20: w // 2 + 20] = np.nan  # a whole occluded patch
    return frame


@pytest.mark.parametrize("mode", ["ignore_holes", "fill_far"])
@pytest.mark.parametrize("intr", [
    intrinsics_for(320, 180, 110.0),                                   # ZED-like, downsampled
    intrinsics_for(300, 200, 100.0, cx_offset=6.3, cy_offset=-4.1, aspect=1.07),  # off-centre
    intrinsics_for(150, 100, 95.0),                                   # fewer real than training px
], ids=["zed_320x180", "offcentre_300x200", "coarse_150x100"])
def test_matches_slow_reference(intr, mode):
    frame = holey_frame(intr, seed=intr.width)
    pre = DepthPreprocessor(intr, CAM, DepthPreprocessorConfig(invalid_mode=mode))
    out = np.full((1, 58, 87), np.nan, dtype=np.float32)
    pre.process_into(frame, out)
    want = reference(frame, intr, CAM, mode)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[0], want, atol=2e-5, rtol=0)
    if intr.width == 320:
        # The occluded patch is far (+0.5) in its middle when holes are ignored.
        assert mode != "ignore_holes" or np.isclose(out[0, 29, 43], 0.5, atol=1e-4)


@pytest.mark.parametrize("n_in,n_out", [(98, 87), (58, 58), (10, 23), (40, 7)])
def test_bicubic_weights_match_torch(n_in, n_out):
    rng = np.random.default_rng(n_in)
    image = rng.normal(size=(5, n_in))
    want = torch.nn.functional.interpolate(torch.from_numpy(image)[None, None], size=(5, n_out),
                                           mode="bicubic", align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(image @ bicubic_weights(n_in, n_out).T, want, atol=1e-12)


def test_constant_frames():
    intr = intrinsics_for(640, 360, 110.0)
    pre = DepthPreprocessor(intr, CAM)
    out = pre.process(np.full((360, 640), 1.0, np.float32))
    np.testing.assert_allclose(out, 0.0, atol=1e-6)
    for invalid in (np.nan, np.inf, 0.0, 9.0):
        out = pre.process(np.full((360, 640), invalid, np.float32))
        np.testing.assert_allclose(out, 0.5, atol=1e-6)
    out = pre.process(np.full((360, 640), -np.inf, np.float32))  # too close: near
    np.testing.assert_allclose(out, -0.5, atol=1e-6)


def test_narrow_camera_refused_and_shape_checked():
    with pytest.raises(ValueError, match="does not cover the training camera"):
        DepthPreprocessor(intrinsics_for(640, 480, 70.0), CAM)
    pre = DepthPreprocessor(intrinsics_for(640, 360, 110.0), CAM)
    with pytest.raises(ValueError, match=r"intrinsics say \(360, 640\)"):
        pre.process(np.zeros((720, 1280), np.float32))


def test_crop_is_centred_on_principal_point():
    """A bright column at the principal point lands in the middle column of the output."""
    intr = intrinsics_for(640, 360, 110.0, cx_offset=40.0)
    frame = np.full((360, 640), 1.0, np.float32)
    frame[:, int(round(intr.cx)) - 1: int(round(intr.cx)) + 2] = 0.2
    out = DepthPreprocessor(intr, CAM, DepthPreprocessorConfig("fill_far")).process(frame)
    assert int(np.argmin(out[29])) == 43

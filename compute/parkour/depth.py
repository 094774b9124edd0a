"""Real depth frame → the 58×87 image the depth encoder was trained on
(docs/architecture.md#the-depth-image).

Training rendered a 106×60 pinhole camera with an 87° horizontal field of view (square pixels,
so about 56.5° vertically), clipped depth to [0, 2] m, cropped rows [:-2] and columns [4:-4],
resized bicubically to 58×87 and normalised with ``d / 2 − 0.5``. A real camera (the ZED sees
~110°) has another resolution and a wider view, so :class:`DepthPreprocessor`:

1. crops the frame to the training camera's field of view, using the intrinsics (the crop is
   centred on the principal point, fractional edges included; the image is never stretched);
2. resamples that region to 106×60 by area mean (each training pixel averages the real pixels
   it covers, with fractional weights at its borders);
3. maps invalid depth as training saw it: values beyond far (+inf, "too far"), NaN (occlusion)
   and 0 (a camera's "no data") are far; −inf ("closer than the camera's minimum range", the
   ZED's convention) is *near* (0 m): a riser inside the minimum range is an obstacle, not empty
   space. Mode ``fill_far`` (default, docs/architecture.md#the-depth-image) puts far into the NaN/0
   holes before the area mean; mode ``ignore_holes`` leaves them out of the mean (a training pixel
   with no valid real pixel becomes far), so occlusion holes along an edge do not pull a step
   towards 2 m. A policy trained on distance-to-camera depth (Isaac Lab's ray-cast camera) gets
   every real pixel's z-depth converted to the distance along its ray first;
4. keeps rows [:-2] and columns [4:-4] (58×98), resizes bicubically to 58×87 with
   ``torch.nn.functional.interpolate(mode="bicubic", align_corners=False)`` semantics;
5. writes ``(d − near) / (far − near) − 0.5`` (``d / 2 − 0.5``) into the caller's buffer.

Steps 2 and 4 are linear and separable, so they are precomputed weight matrices (rows and
columns the crop drops are never computed); a frame costs a few elementwise passes over the
cropped region and two small matrix products, into preallocated buffers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hal.devices.base import CameraIntrinsics
from hal.robot import DepthCameraModel

__all__ = [
    "INVALID_MODES",
    "DepthPreprocessorConfig",
    "DepthPreprocessor",
    "area_weights",
    "bicubic_weights",
    "training_crop_edges",
]

INVALID_MODES = ("ignore_holes", "fill_far")
_CROP_TOP, _CROP_BOTTOM, _CROP_LEFT, _CROP_RIGHT = 0, 2, 4, 4  # training crop [:-2, 4:-4]
_CUBIC_A = -0.75  # torch's bicubic kernel constant


@dataclass(frozen=True)
class DepthPreprocessorConfig:
    """Options of :class:`DepthPreprocessor`.

    Attributes:
        invalid_mode: ``"fill_far"`` (docs/architecture.md#the-depth-image: every invalid pixel
            is far (2 m) before the area mean — the default, as agreed) or ``"ignore_holes"``
            (NaN/−inf/0 holes are left out of the area mean and a training pixel with no valid
            real pixel is far; keeps the edge of a step from being pulled toward 2 m by occlusion
            holes along it — try it on a camera with many holes).
        fov_tolerance_px: how far (real pixels) the training field of view may reach past the
            frame's border before the camera is refused as too narrow; within it the crop is
            clamped to the frame.
    """

    invalid_mode: str = "fill_far"
    fov_tolerance_px: float = 1.0

    def __post_init__(self) -> None:
        if self.invalid_mode not in INVALID_MODES:
            raise ValueError(f"invalid_mode {self.invalid_mode!r} is not one of {INVALID_MODES}")
        if not self.fov_tolerance_px >= 0:
            raise ValueError(f"fov_tolerance_px must be >= 0, found {self.fov_tolerance_px}")


def training_crop_edges(intrinsics: CameraIntrinsics,
                        camera: DepthCameraModel) -> tuple[float, float, float, float]:
    """The training camera's field of view in the real frame, as pixel-edge coordinates.

    Pixel ``k`` covers [k, k+1); the intrinsics follow the OpenCV convention (pixel centres at
    integers), so the optical axis is at ``cx + 0.5``.

    Returns:
        (left, right, top, bottom) in real-frame pixel-edge coordinates (may lie outside the frame
        when the real camera is narrower than the training one).
    """
    tan_h = math.tan(math.radians(camera.horizontal_fov_deg) / 2.0)
    tan_v = tan_h * camera.height / camera.width  # square training pixels
    half_w = intrinsics.fx * tan_h
    half_h = intrinsics.fy * tan_v
    u0, v0 = intrinsics.cx + 0.5, intrinsics.cy + 0.5
    return u0 - half_w, u0 + half_w, v0 - half_h, v0 + half_h


def area_weights(start: float, stop: float, n_out: int, n_src: int) -> np.ndarray:
    """Area-mean weights [n_out, n_src] for ``n_out`` equal cells spanning [start, stop).

    Row ``j`` holds the fraction of cell ``j`` that each source pixel ``k`` (covering [k, k+1))
    overlaps; rows sum to 1 when the span lies inside [0, n_src].
    """
    edges = start + (stop - start) * np.arange(n_out + 1, dtype=np.float64) / n_out
    lo, hi = edges[:-1, None], edges[1:, None]
    k = np.arange(n_src, dtype=np.float64)[None, :]
    overlap = np.clip(np.minimum(hi, k + 1.0) - np.maximum(lo, k), 0.0, None)
    return overlap / (hi - lo)


def _cubic_near(x: np.ndarray) -> np.ndarray:  # |x| <= 1
    return ((_CUBIC_A + 2.0) * x - (_CUBIC_A + 3.0)) * x * x + 1.0


def _cubic_far(x: np.ndarray) -> np.ndarray:  # 1 < |x| < 2
    return ((_CUBIC_A * x - 5.0 * _CUBIC_A) * x + 8.0 * _CUBIC_A) * x - 4.0 * _CUBIC_A


def bicubic_weights(n_in: int, n_out: int) -> np.ndarray:
    """Weights [n_out, n_in] of torch's bicubic resize (``align_corners=False``, no antialias).

    Output ``i`` samples source position ``(i + 0.5) · n_in / n_out − 0.5`` with the a = −0.75
    cubic kernel over 4 taps; taps beyond the border read the border pixel (as torch does).
    """
    i = np.arange(n_out, dtype=np.float64)
    src = (i + 0.5) * (n_in / n_out) - 0.5
    x0 = np.floor(src)
    t = src - x0
    coeffs = np.stack([_cubic_far(t + 1.0), _cubic_near(t), _cubic_near(1.0 - t),
                       _cubic_far(2.0 - t)], axis=1)
    taps = np.clip(x0[:, None].astype(np.int64) + np.arange(-1, 3)[None, :], 0, n_in - 1)
    weights = np.zeros((n_out, n_in), dtype=np.float64)
    np.add.at(weights, (np.repeat(np.arange(n_out), 4), taps.ravel()), coeffs.ravel())
    return weights


def _support(weights: np.ndarray) -> tuple[int, int]:
    """First and one-past-last source index any row uses."""
    used = np.flatnonzero(np.any(weights != 0.0, axis=0))
    return int(used[0]), int(used[-1]) + 1


class DepthPreprocessor:
    """Preprocess frames of one camera (fixed resolution and intrinsics) for the depth encoder.

    Args:
        intrinsics: the real camera's intrinsics, in pixels of the frames passed in.
        camera: the training camera model (``robot.depth_camera``).
        config: invalid-pixel handling and field-of-view tolerance.

    Raises:
        ValueError: the real camera's field of view does not cover the training camera's.
    """

    def __init__(self, intrinsics: CameraIntrinsics, camera: DepthCameraModel,
                 config: DepthPreprocessorConfig | None = None) -> None:
        self.intrinsics = intrinsics
        self.camera = camera
        self.config = config or DepthPreprocessorConfig()
        w, h = intrinsics.width, intrinsics.height
        left, right, top, bottom = training_crop_edges(intrinsics, camera)
        tol = self.config.fov_tolerance_px
        if left < -tol or right > w + tol or top < -tol or bottom > h + tol:
            raise ValueError(
                f"camera field of view {intrinsics.horizontal_fov_deg:.1f}°×"
                f"{intrinsics.vertical_fov_deg:.1f}° ({w}×{h}, fx={intrinsics.fx:.1f}, "
                f"fy={intrinsics.fy:.1f}, cx={intrinsics.cx:.1f}, cy={intrinsics.cy:.1f}) does not "
                f"cover the training camera's {camera.horizontal_fov_deg:.1f}°×"
                f"{camera.vertical_fov_deg:.1f}: needs pixels x {left:.1f}..{right:.1f}, "
                f"y {top:.1f}..{bottom:.1f}")
        self.fov_edges_px = (max(left, 0.0), min(right, float(w)), max(top, 0.0),
                             min(bottom, float(h)))
        left, right, top, bottom = self.fov_edges_px

        rows_kept = slice(_CROP_TOP, camera.height - _CROP_BOTTOM)
        cols_kept = slice(_CROP_LEFT, camera.width - _CROP_RIGHT)
        area_y = area_weights(top, bottom, camera.height, h)[rows_kept]
        area_x = area_weights(left, right, camera.width, w)[cols_kept]
        y0, y1 = _support(area_y)
        x0, x1 = _support(area_x)
        self.source_window = (y0, y1, x0, x1)
        self._rows, self._cols = slice(y0, y1), slice(x0, x1)
        area_y, area_x = area_y[:, y0:y1], area_x[:, x0:x1]
        n_rows, n_cols = area_y.shape[0], area_x.shape[0]
        out_h, out_w = camera.policy_height, camera.policy_width
        cubic_y = bicubic_weights(n_rows, out_h)
        cubic_x = bicubic_weights(n_cols, out_w)
        self.output_shape = (out_h, out_w)

        ray_scale = None
        if camera.depth_type == "distance_to_camera":
            # z-depth → distance along the pixel's ray: z · |((u − cx)/fx, (v − cy)/fy, 1)|.
            u = (np.arange(x0, x1, dtype=np.float64) - intrinsics.cx) / intrinsics.fx
            v = (np.arange(y0, y1, dtype=np.float64) - intrinsics.cy) / intrinsics.fy
            ray_scale = np.sqrt(1.0 + v[:, None] ** 2 + u[None, :] ** 2).astype(np.float32)
        self._ray_scale = ray_scale
        self._far = np.float32(camera.far_m)
        self._near = np.float32(camera.near_m)
        self._scale = np.float32(1.0 / (camera.far_m - camera.near_m))
        self._offset = np.float32(camera.near_m / (camera.far_m - camera.near_m) + 0.5)
        win_h, win_w = y1 - y0, x1 - x0
        self._valid = np.empty((win_h, win_w), dtype=bool)
        self._too_close = np.empty((win_h, win_w), dtype=bool)
        self._invalid = np.empty((win_h, win_w), dtype=bool)
        self._result = np.empty((out_h, out_w), dtype=np.float32)
        self._own_out = np.empty((out_h, out_w), dtype=np.float32)
        f32 = np.float32
        if self.config.invalid_mode == "fill_far":
            # Everything after the invalid-pixel step is linear: fold it into two matrices.
            self._left = np.ascontiguousarray(cubic_y @ area_y, dtype=f32)       # [58, win_h]
            self._right = np.ascontiguousarray((cubic_x @ area_x).T, dtype=f32)  # [win_w, 87]
            self._values = np.empty((win_h, win_w), dtype=f32)
            self._rows_mixed = np.empty((out_h, win_w), dtype=f32)
        else:
            self._area_y = np.ascontiguousarray(area_y, dtype=f32)             # [58, win_h]
            self._area_xt = np.ascontiguousarray(area_x.T, dtype=f32)          # [win_w, 98]
            self._cubic_y = np.ascontiguousarray(cubic_y, dtype=f32)           # [58, 58]
            self._cubic_xt = np.ascontiguousarray(cubic_x.T, dtype=f32)        # [98, 87]
            # Values and validity side by side: one product with the row weights serves both.
            self._stacked = np.empty((win_h, 2 * win_w), dtype=f32)
            self._values = self._stacked[:, :win_w]
            self._weights = self._stacked[:, win_w:]
            self._rows_mixed = np.empty((n_rows, 2 * win_w), dtype=f32)
            self._num = np.empty((n_rows, n_cols), dtype=f32)
            self._den = np.empty((n_rows, n_cols), dtype=f32)
            self._empty = np.empty((n_rows, n_cols), dtype=bool)
            self._cubic_rows = np.empty((out_h, n_cols), dtype=f32)

    def process_into(self, frame: np.ndarray, out: np.ndarray) -> None:
        """Preprocess one frame into ``out`` (float32, (58, 87) or (1, 58, 87)).

        Args:
            frame: z-depth in metres, shape (height, width) of the intrinsics; NaN, +inf and 0
                read far, −inf near.
            out: the caller's buffer (e.g. the depth engine's input).
        """
        h, w = self.intrinsics.height, self.intrinsics.width
        if frame.shape != (h, w):
            raise ValueError(f"depth frame has shape {frame.shape}, the intrinsics say ({h}, {w})")
        crop = frame[self._rows, self._cols]
        values = self._values
        if self._ray_scale is not None:
            np.multiply(crop, self._ray_scale, out=values)
        else:
            np.copyto(values, crop)
        np.isneginf(values, out=self._too_close)
        np.greater(values, 0.0, out=self._valid)   # False for NaN, -inf, 0 and negatives
        np.logical_or(self._valid, self._too_close, out=self._valid)  # too close is data: near
        np.logical_not(self._valid, out=self._invalid)  # NaN, 0, negatives: holes
        np.fmin(values, self._far, out=values)       # > far and +inf → far; NaN → far (masked)
        np.maximum(values, self._near, out=values)   # -inf (too close) → near
        if self.config.invalid_mode == "fill_far":
            np.copyto(values, self._far, where=self._invalid)
            np.matmul(self._left, values, out=self._rows_mixed)
            np.matmul(self._rows_mixed, self._right, out=self._result)
        else:
            np.copyto(values, 0.0, where=self._invalid)
            np.copyto(self._weights, self._valid)
            np.matmul(self._area_y, self._stacked, out=self._rows_mixed)
            n = self._values.shape[1]
            np.matmul(self._rows_mixed[:, :n], self._area_xt, out=self._num)
            np.matmul(self._rows_mixed[:, n:], self._area_xt, out=self._den)
            np.less_equal(self._den, 1e-6, out=self._empty)
            np.copyto(self._den, 1.0, where=self._empty)
            np.divide(self._num, self._den, out=self._num)
            np.copyto(self._num, self._far, where=self._empty)
            np.matmul(self._cubic_y, self._num, out=self._cubic_rows)
            np.matmul(self._cubic_rows, self._cubic_xt, out=self._result)
        np.multiply(self._result, self._scale, out=self._result)
        np.subtract(self._result, self._offset, out=out)

    def process(self, frame: np.ndarray) -> np.ndarray:
        """Like :meth:`process_into` with an internal (58, 87) buffer, overwritten next call."""
        self.process_into(frame, self._own_out)
        return self._own_out

"""Pinhole intrinsics for real depth cameras: from calibration data, rescaled, checked against the
training camera's field of view (pure numpy, no device).

The policy was trained with an 87° × 58° pinhole camera (docs/architecture.md#the-depth-image). The
preprocessing crops the real frame to that field of view around the principal point; it never
stretches. A real camera must therefore see at least that far on every side of its principal
point, which :func:`training_fov_margins_px` measures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hal.devices.base import CameraIntrinsics
from hal.robot import DepthCameraModel

__all__ = [
    "intrinsics_from_calibration",
    "scale_intrinsics",
    "FOV_TOLERANCE_PX",
    "FovMargins",
    "training_fov_margins_px",
]


def intrinsics_from_calibration(camera_parameters: Any, width: int, height: int) -> CameraIntrinsics:
    """Build :class:`CameraIntrinsics` from an object with ``fx, fy, cx, cy`` attributes.

    This is the shape of the ZED SDK's ``CameraParameters``
    (``get_camera_information().camera_configuration.calibration_parameters.left_cam``), whose
    values are in pixels of the camera's configured resolution ``width × height``.

    Raises:
        ValueError: a value is missing, not finite, a focal length is not positive, or the
            principal point lies outside the image.
    """
    values = {}
    for name in ("fx", "fy", "cx", "cy"):
        value = getattr(camera_parameters, name, None)
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"calibration has no numeric {name!r} (got {value!r})") from None
        if not math.isfinite(value):
            raise ValueError(f"calibration {name}={value} is not finite")
        values[name] = value
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if values["fx"] <= 0 or values["fy"] <= 0:
        raise ValueError(f"focal lengths must be positive, got fx={values['fx']} fy={values['fy']}")
    if not (0 <= values["cx"] <= width and 0 <= values["cy"] <= height):
        raise ValueError(f"principal point ({values['cx']}, {values['cy']}) lies outside the "
                         f"{width}x{height} image: the calibration does not belong to this resolution")
    return CameraIntrinsics(width=int(width), height=int(height), **values)


def scale_intrinsics(intrinsics: CameraIntrinsics, width: int, height: int) -> CameraIntrinsics:
    """Intrinsics of the same camera resampled to ``width × height``.

    Uses the pixel-centre convention (pixel i covers [i, i+1), its centre is i + 0.5), under which
    resampling maps ``c' + 0.5 = (c + 0.5) · s``. The field of view is unchanged.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"target size must be positive, got {width}x{height}")
    sx = width / intrinsics.width
    sy = height / intrinsics.height
    return CameraIntrinsics(
        width=int(width),
        height=int(height),
        fx=intrinsics.fx * sx,
        fy=intrinsics.fy * sy,
        cx=(intrinsics.cx + 0.5) * sx - 0.5,
        cy=(intrinsics.cy + 0.5) * sy - 0.5,
    )


FOV_TOLERANCE_PX = 0.01


@dataclass(frozen=True)
class FovMargins:
    """Pixels to spare on each side when cropping the training FOV around the principal point.

    A negative margin means the camera does not see as far as the training camera on that side;
    within :data:`FOV_TOLERANCE_PX` counts as covered (a camera identical to the training camera has
    margins of 0 up to rounding).
    """

    left: float
    right: float
    top: float
    bottom: float

    @property
    def covered(self) -> bool:
        return min(self.left, self.right, self.top, self.bottom) >= -FOV_TOLERANCE_PX

    def describe(self) -> str:
        sides = {"left": self.left, "right": self.right, "top": self.top, "bottom": self.bottom}
        short = [f"{side} by {-m:.1f} px" for side, m in sides.items() if m < -FOV_TOLERANCE_PX]
        if not short:
            return "covers the training field of view"
        return "narrower than the training field of view: " + ", ".join(short)


def training_fov_margins_px(intrinsics: CameraIntrinsics, model: DepthCameraModel) -> FovMargins:
    """Margins left after cropping ``model``'s field of view around the principal point.

    The half-extent of the training FOV in pixels of this camera is ``fx · tan(hfov/2)``
    horizontally and ``fy · tan(vfov/2)`` vertically.
    """
    half_w = intrinsics.fx * math.tan(math.radians(model.horizontal_fov_deg) / 2.0)
    half_h = intrinsics.fy * math.tan(math.radians(model.vertical_fov_deg) / 2.0)
    # Image edges in continuous coordinates are 0 and width (pixel centres at i + 0.5) and the
    # principal point is given in pixel-index coordinates, so its continuous position is c + 0.5.
    x0 = intrinsics.cx + 0.5
    y0 = intrinsics.cy + 0.5
    return FovMargins(
        left=x0 - half_w,
        right=intrinsics.width - x0 - half_w,
        top=y0 - half_h,
        bottom=intrinsics.height - y0 - half_h,
    )

"""Foxglove's typed messages (foxglove-sdk) built from krabby's arrays: one code path for the
live view and the ``--record`` log.

Each builder returns a ``foxglove.messages`` object; ``.encode()`` gives its protobuf bytes and
``type(msg).get_schema()`` its schema (a ``FileDescriptorSet``), which is what both the WebSocket
server and the MCAP log carry. Times are nanoseconds, split into (sec, nsec).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from hal.live.sdk import foxglove_sdk

__all__ = ["timestamp", "vector3", "quaternion_xyzw", "quaternion_xyzw_from_matrix",
           "frame_transform", "frame_transforms", "pose_in_frame", "raw_image_32f", "point_cloud_xyz", "log_message",
           "joint_states"]


def _messages() -> Any:
    return foxglove_sdk().messages


def timestamp(stamp_ns: int) -> Any:
    """A ``Timestamp`` from nanoseconds (>= 0)."""
    ns = max(int(stamp_ns), 0)
    return _messages().Timestamp(ns // 1_000_000_000, ns % 1_000_000_000)


def vector3(v: Sequence[float]) -> Any:
    return _messages().Vector3(x=float(v[0]), y=float(v[1]), z=float(v[2]))


def quaternion_xyzw(x: float, y: float, z: float, w: float) -> Any:
    return _messages().Quaternion(x=float(x), y=float(y), z=float(z), w=float(w))


def quaternion_xyzw_from_matrix(m: np.ndarray) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a 3x3 rotation matrix (largest-diagonal branch, w >= 0)."""
    m = np.asarray(m, dtype=np.float64).reshape(3, 3)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(1.0 + trace)
        w, x = 0.25 * s, (m[2, 1] - m[1, 2]) / s
        y, z = (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        w, x = (m[2, 1] - m[1, 2]) / s, 0.25 * s
        y, z = (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        w, x = (m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s
        y, z = 0.25 * s, (m[1, 2] + m[2, 1]) / s
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        w, x = (m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s
        y, z = (m[1, 2] + m[2, 1]) / s, 0.25 * s
    sign = -1.0 if w < 0 else 1.0
    return sign * x, sign * y, sign * z, sign * w


def frame_transform(stamp_ns: int, parent: str, child: str, position_m: Sequence[float],
                    quat_wxyz: Sequence[float]) -> Any:
    """``foxglove.FrameTransform``: ``child``'s pose in ``parent`` (MuJoCo's w-first quaternion)."""
    w, x, y, z = (float(q) for q in quat_wxyz)
    return _messages().FrameTransform(timestamp=timestamp(stamp_ns), parent_frame_id=parent,
                                      child_frame_id=child, translation=vector3(position_m),
                                      rotation=quaternion_xyzw(x, y, z, w))


def frame_transforms(transforms: list[Any]) -> Any:
    """``foxglove.FrameTransforms`` of :func:`frame_transform` messages."""
    return _messages().FrameTransforms(transforms=transforms)


def pose_in_frame(stamp_ns: int, frame_id: str, position_m: Sequence[float],
                  quat_wxyz: Sequence[float]) -> Any:
    """``foxglove.PoseInFrame`` (w-first quaternion in)."""
    m = _messages()
    w, x, y, z = (float(q) for q in quat_wxyz)
    return m.PoseInFrame(timestamp=timestamp(stamp_ns), frame_id=frame_id,
                         pose=m.Pose(position=vector3(position_m),
                                     orientation=quaternion_xyzw(x, y, z, w)))


def raw_image_32f(stamp_ns: int, frame_id: str, image: np.ndarray) -> Any:
    """``foxglove.RawImage``, encoding 32FC1 (float32 little endian, rows of 4·width bytes)."""
    height, width = image.shape
    data = np.ascontiguousarray(image, dtype="<f4").tobytes()
    return _messages().RawImage(timestamp=timestamp(stamp_ns), frame_id=frame_id, width=int(width),
                                height=int(height), encoding="32FC1", step=4 * int(width),
                                data=data)


def point_cloud_xyz(stamp_ns: int, frame_id: str, points_m: np.ndarray) -> Any:
    """``foxglove.PointCloud`` of (N, 3) points: fields x, y, z as float32, stride 12 bytes."""
    m = _messages()
    f32 = m.PackedElementFieldNumericType.Float32
    fields = [m.PackedElementField(name=name, offset=4 * i, type=f32)
              for i, name in enumerate("xyz")]
    data = np.ascontiguousarray(points_m, dtype="<f4").tobytes()
    return m.PointCloud(timestamp=timestamp(stamp_ns), frame_id=frame_id,
                        pose=m.Pose(position=vector3((0, 0, 0)),
                                    orientation=quaternion_xyzw(0, 0, 0, 1)),
                        point_stride=12, fields=fields, data=data)


def joint_states(stamp_ns: int, names: Sequence[str], position_rad: np.ndarray,
                 velocity_rad_s: np.ndarray, effort_nm: np.ndarray) -> Any:
    """``foxglove.JointStates`` (measured joints, in the order of ``names``)."""
    m = _messages()
    joints = [m.JointState(name=str(n), position=float(p), velocity=float(v), effort=float(e))
              for n, p, v, e in zip(names, position_rad, velocity_rad_s, effort_nm)]
    return m.JointStates(timestamp=timestamp(stamp_ns), joints=joints)


_LEVELS = {"debug": "Debug", "info": "Info", "warning": "Warning", "error": "Error"}


def log_message(stamp_ns: int, level: str, text: str, name: str = "krabby") -> Any:
    """``foxglove.Log`` (level one of debug, info, warning, error)."""
    m = _messages()
    return m.Log(timestamp=timestamp(stamp_ns), level=getattr(m.LogLevel, _LEVELS[level]),
                 message=str(text), name=name)

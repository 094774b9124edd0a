"""The ZED's stand-in next to ``krabby-go2-sim``: the simulator's depth camera over loopback ZMQ.

On the robot the ZED is a USB camera on the Jetson, not on the Go2's DDS network, so the robot
double does not put depth on DDS. ``krabby-go2-sim --camera-bind tcp://127.0.0.1:PORT`` publishes
each frame its MuJoCo camera renders (the training camera's mount, size and field of view from the
robot definition; :class:`hal.sim.camera.SimDepthCamera`'s ray caster) on a ZMQ PUB socket bound to
loopback only (a read-only stream: nothing comes back); ``krabby-hal-server-jetson --camera go2-sim
--camera-connect tcp://127.0.0.1:PORT`` reads it through :class:`LinkedDepthCamera`, a
:class:`~hal.devices.base.DepthCamera` like the ZED's. Frames are float32 metres with the ZED's
invalid-pixel convention (+inf beyond range, -inf too near); the stamp is the render time on this
machine's monotonic clock.

Message: two frames, a JSON header (``seq``, ``timestamp_ns``, ``width``, ``height``, ``fx``, ``fy``,
``cx``, ``cy``) and the frame's bytes (row-major float32).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import zmq

from hal.auth import is_loopback
from hal.config.fields import setting
from hal.devices.base import CameraIntrinsics, DepthCamera, DepthFrameInfo, DeviceError, DeviceNotConnectedError

__all__ = ["DepthLinkPublisher", "LinkedCameraSection", "LinkedDepthCamera"]

log = logging.getLogger(__name__)


def _check_loopback(endpoint: str) -> None:
    if not is_loopback(endpoint):
        raise ValueError(f"depth link endpoint {endpoint!r} must be tcp on loopback "
                         "(tcp://127.0.0.1:PORT): the simulator's camera is for this machine only")


class DepthLinkPublisher:
    """The robot double's side: publish frames (PUB, linger 0, bound to loopback)."""

    def __init__(self, endpoint: str, context: zmq.Context | None = None) -> None:
        _check_loopback(endpoint)
        self._socket = (context or zmq.Context.instance()).socket(zmq.PUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SNDHWM, 2)
        self._socket.bind(endpoint)
        self.published = 0

    def publish(self, frame: np.ndarray, info: DepthFrameInfo) -> None:
        k = info.intrinsics
        header = {"seq": info.seq, "timestamp_ns": info.timestamp_ns, "width": k.width,
                  "height": k.height, "fx": k.fx, "fy": k.fy, "cx": k.cx, "cy": k.cy}
        try:
            self._socket.send_multipart([json.dumps(header).encode(),
                                         np.ascontiguousarray(frame, dtype=np.float32)], zmq.NOBLOCK)
            self.published += 1
        except zmq.Again:
            pass  # no reader keeping up: drop, like a camera

    def close(self) -> None:
        self._socket.close(linger=0)


@dataclass(frozen=True)
class LinkedCameraSection:
    """Where ``krabby-go2-sim`` publishes its depth camera (the ZED's stand-in)."""

    section: ClassVar[str] = "go2_sim_camera"
    title: ClassVar[str] = "go2-sim camera (--camera go2-sim)"

    camera_connect: str | None = setting(None, metavar="tcp://127.0.0.1:PORT",
                                         help="with --camera go2-sim: krabby-go2-sim's "
                                              "--camera-bind (the ZED's stand-in)")


class LinkedDepthCamera(DepthCamera):
    """The Jetson side: a :class:`DepthCamera` fed by :class:`DepthLinkPublisher` (see the module
    doc). ``connect`` waits up to ``connect_timeout_ms`` for the first frame (its size and
    intrinsics); a receive thread keeps the newest frame."""

    def __init__(self, endpoint: str, connect_timeout_ms: float = 5000.0) -> None:
        _check_loopback(endpoint)
        self.endpoint = endpoint
        self.connect_timeout_ms = connect_timeout_ms
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._frame: np.ndarray | None = None
        self._info: DepthFrameInfo | None = None
        self.bad_messages = 0

    @property
    def is_connected(self) -> bool:
        return self._thread is not None

    def connect(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._receive, name="depth-link", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.connect_timeout_ms / 1e3
        while self._info is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if self._info is None:
            self.close()
            raise DeviceError(f"depth link: no frame from {self.endpoint} within "
                              f"{self.connect_timeout_ms:.0f} ms; start krabby-go2-sim with "
                              f"--camera-bind {self.endpoint}")

    def _receive(self) -> None:
        socket = zmq.Context.instance().socket(zmq.SUB)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.RCVTIMEO, 100)
        socket.setsockopt(zmq.RCVHWM, 2)
        socket.setsockopt(zmq.SUBSCRIBE, b"")
        socket.connect(self.endpoint)
        try:
            while not self._stop.is_set():
                try:
                    parts = socket.recv_multipart(copy=True)
                except zmq.Again:
                    continue
                self._take(parts)
        finally:
            socket.close(linger=0)

    def _take(self, parts: list[bytes]) -> None:
        try:
            header: dict[str, Any] = json.loads(parts[0])
            k = CameraIntrinsics(int(header["width"]), int(header["height"]), float(header["fx"]),
                                 float(header["fy"]), float(header["cx"]), float(header["cy"]))
            frame = np.frombuffer(parts[1], dtype=np.float32).reshape(k.height, k.width)
            info = DepthFrameInfo(int(header["seq"]), int(header["timestamp_ns"]), k)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            self.bad_messages += 1
            log.warning("depth link: dropped a malformed message (%s)", exc)
            return
        with self._lock:
            if self._info is not None and frame.shape != self._frame.shape:
                self.bad_messages += 1
                return  # a camera does not change its size while running
            self._frame, self._info = frame, info

    @property
    def intrinsics(self) -> CameraIntrinsics:
        if self._info is None:
            raise DeviceNotConnectedError("depth link: not connected (no frame yet)")
        return self._info.intrinsics

    @property
    def frame_shape(self) -> tuple[int, int]:
        k = self.intrinsics
        return (k.height, k.width)

    def read_into(self, out: np.ndarray, newer_than_seq: int = 0) -> DepthFrameInfo | None:
        with self._lock:
            if self._info is None:
                raise DeviceNotConnectedError("depth link: not connected (call connect() first)")
            if self._info.seq <= newer_than_seq:
                return None
            if out.dtype != np.float32 or out.shape != self._frame.shape:
                raise ValueError(f"out must be float32 of shape {self._frame.shape}, "
                                 f"found {out.dtype} {out.shape}")
            np.copyto(out, self._frame)
            return self._info

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self._thread = None

"""The ZED's stand-in link (hal.sim.depth_link) over real ZMQ on loopback."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest
import zmq

from hal.devices.base import CameraIntrinsics, DepthFrameInfo, DeviceError
from hal.sim.depth_link import DepthLinkPublisher, LinkedDepthCamera


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_frames_cross_intact_with_their_seq_stamp_and_intrinsics():
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    k = CameraIntrinsics(106, 60, 55.9, 55.9, 52.5, 29.5)
    frame = np.arange(60 * 106, dtype=np.float32).reshape(60, 106) / 1000.0
    frame[0, 0], frame[0, 1] = np.inf, -np.inf  # the ZED's invalid pixels travel as they are
    publisher = DepthLinkPublisher(endpoint)
    camera = LinkedDepthCamera(endpoint, connect_timeout_ms=5000.0)
    done = threading.Event()

    def feed() -> None:  # a camera streams whether or not anyone listens (ZMQ's slow joiner)
        seq = 0
        while not done.is_set() and seq < 500:
            seq += 1
            publisher.publish(frame, DepthFrameInfo(seq, 1000 + seq, k))
            time.sleep(0.01)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        camera.connect()
        time.sleep(0.05)
        done.set()
        feeder.join(5.0)
        out = np.zeros((60, 106), np.float32)
        info = camera.read_into(out)
        assert info is not None and info.intrinsics == k and info.timestamp_ns == 1000 + info.seq
        np.testing.assert_array_equal(out, frame)
        assert camera.frame_shape == (60, 106)
        assert camera.read_into(out, newer_than_seq=info.seq) is None
        with pytest.raises(ValueError, match="float32 of shape"):
            camera.read_into(np.zeros((10, 10), np.float32))
    finally:
        camera.close()
        publisher.close()


def test_a_malformed_message_is_dropped_and_counted():
    camera = LinkedDepthCamera("tcp://127.0.0.1:1")
    camera._take([b"{not json", b""])
    camera._take([b'{"seq": 1}', b""])
    assert camera.bad_messages == 2


def test_only_loopback_and_no_frame_is_a_clear_error():
    with pytest.raises(ValueError, match="loopback"):
        DepthLinkPublisher("tcp://0.0.0.0:5999")
    with pytest.raises(ValueError, match="loopback"):
        LinkedDepthCamera("tcp://192.168.123.5:5999")
    camera = LinkedDepthCamera(f"tcp://127.0.0.1:{_free_port()}", connect_timeout_ms=200.0)
    with pytest.raises(DeviceError, match="--camera-bind"):
        camera.connect()
    assert not camera.is_connected
    zmq.Context.instance()  # the shared context stays usable

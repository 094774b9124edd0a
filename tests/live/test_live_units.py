"""The live view's parts: the address flag, the hand-over from the loop (bounded, drop-oldest,
counted, nothing copied without a subscriber), the rate gates, and the Foxglove messages decoded
with the schemas foxglove-sdk gives."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest

from hal.live.mailbox import Mailbox, RateGate
from hal.live.sdk import is_loopback_host, parse_live_address

from hal.live.client import decode_protobuf


@pytest.mark.parametrize("text, expected", [
    ("8765", ("127.0.0.1", 8765)), ("0", ("127.0.0.1", 0)),
    ("127.0.0.1:9000", ("127.0.0.1", 9000)), ("0.0.0.0:8765", ("0.0.0.0", 8765)),
    ("[::1]:8765", ("::1", 8765)), ("robot.local:8765", ("robot.local", 8765))])
def test_live_address(text, expected):
    assert parse_live_address(text) == expected


@pytest.mark.parametrize("text, named", [("abc", "'abc'"), ("70000", "70000"), (":8765", "empty"),
                                         ("-1", "-1"), ("host:", "''")])
def test_bad_live_address_names_the_value(text, named):
    with pytest.raises(ValueError) as err:
        parse_live_address(text)
    assert named in str(err.value) and "PORT" in str(err.value)


def test_loopback_hosts():
    assert all(map(is_loopback_host, ("127.0.0.1", "127.3.2.1", "::1", "localhost")))
    assert not any(map(is_loopback_host, ("0.0.0.0", "192.168.1.5", "::", "robot.local")))


def test_cli_refuses_a_bad_live_address(capsys):
    from hal.server.sim.main import main

    assert main(["--engine", "missing.onnx", "--live", "99999", "--no-keyboard"]) == 2
    err = capsys.readouterr().err
    assert "--live '99999'" in err and "0-65535" in err


def test_non_loopback_host_warns_that_the_stream_is_unauthenticated(caplog):
    foxglove = pytest.importorskip("foxglove")
    from hal.live.sdk import start_live_server

    # 192.0.2.1 (TEST-NET-1) is no address of this machine: the bind fails after the warning, so
    # nothing listens beyond loopback.
    with caplog.at_level(logging.WARNING, logger="hal.live.sdk"):
        with pytest.raises(OSError, match="192.0.2.1:0"):
            start_live_server("192.0.2.1", 0, foxglove.Context())
    assert "NOT authenticated" in caplog.text and "ssh -L" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hal.live.sdk"):
        server = start_live_server("127.0.0.1", 0, foxglove.Context())
        server.stop()
    assert "NOT authenticated" not in caplog.text


def test_mailbox_drops_the_oldest_and_counts():
    box = Mailbox("joints", 3)
    for i in range(5):
        box.offer(i)
    assert (box.offered, box.dropped, len(box)) == (5, 2, 3)
    assert box.take_all() == [2, 3, 4]
    assert box.take_all() == [] and box.dropped == 2
    with pytest.raises(ValueError, match="capacity 0"):
        Mailbox("x", 0)


def test_rate_gate():
    period = 10_000_000
    gate = RateGate(100.0)  # at the loop's own rate every tick passes, jitter or not
    jitter = [0, 1_500_000, -2_000_000, 900_000, -1_000_000]
    assert all(gate.due(k * period + jitter[k % 5]) for k in range(50))
    gate = RateGate(25.0)  # a quarter of the ticks
    assert sum(gate.due(k * period) for k in range(100)) == 25
    gate = RateGate(10.0)  # after a stall the next pass is one period on, no burst
    assert gate.due(0) and gate.due(5 * 10**9) and not gate.due(5 * 10**9 + 50_000_000)
    assert not RateGate(0.0).due(0)


def _tick(seq: int, mode: str = "policy", target: float | None = 0.5) -> SimpleNamespace:
    n = 12
    joints = SimpleNamespace(position_rad=np.full(n, 0.1 * seq), velocity_rad_s=np.zeros(n),
                             torque_nm=np.zeros(n))
    command = (None if target is None
               else SimpleNamespace(message=SimpleNamespace(target_rad=np.full(n, target))))
    return SimpleNamespace(seq=seq, tick_ns=seq * 10_000_000, safety_mode=mode, joints=joints,
                           command=command,
                           applied=SimpleNamespace(target_rad=np.full(n, 0.4)),
                           imu=SimpleNamespace(quaternion_wxyz=np.array([1.0, 0, 0, 0])),
                           new_depth=None, depth_seq=0, obs_to_command_ns=1000)


def test_publisher_copies_only_for_subscribers_and_drops_when_behind():
    foxglove = pytest.importorskip("foxglove")
    from hal.live.publisher import LiveConfig, LivePublisher

    names = [f"j{i}" for i in range(12)]
    publisher = LivePublisher(foxglove.Context(), names, LiveConfig(mailbox_size=8))
    for seq in range(20):  # nobody subscribes: nothing is copied, only the mode change is noted
        publisher.on_tick(_tick(seq))
    assert publisher.boxes["joints"].offered == 0 and publisher.boxes["pose"].offered == 0
    assert publisher.boxes["events"].offered == 1
    publisher.wanted["joints"] = True  # as if a client subscribed, with the worker stalled
    for seq in range(20, 40):
        publisher.on_tick(_tick(seq))
    box = publisher.boxes["joints"]
    assert (box.offered, box.dropped) == (20, 12)
    queued = box.take_all()
    assert [item[0] for item in queued] == list(range(32, 40))  # the newest kept
    np.testing.assert_allclose(queued[-1][3], 3.9)  # a copy of that tick's positions
    assert publisher.report()["dropped"]["joints"] == 12
    # The policy's target stays the one in force on ticks no command answered.
    publisher.on_tick(_tick(40, target=0.7))
    publisher.on_tick(_tick(41, target=None))
    (_, *a), (_, *b) = publisher.boxes["joints"].take_all()
    np.testing.assert_allclose(a[5], 0.7)
    np.testing.assert_allclose(b[5], 0.7)
    assert (a[7], b[7]) == (True, False)  # new_command


def _decode(message):
    schema = type(message).get_schema()
    assert schema.encoding == "protobuf"
    return decode_protobuf(schema.name, schema.data, message.encode())


def test_foxglove_messages_decode_to_the_inputs():
    pytest.importorskip("foxglove")
    pytest.importorskip("google.protobuf")
    from hal.live import messages as fm

    t = fm.frame_transform(1_700_000_000_123_456_789, "world", "base", (1.0, -2.0, 0.3),
                           (0.9, 0.1, -0.2, 0.3))  # MuJoCo's w-first quaternion in
    decoded = _decode(t)
    assert (decoded.timestamp.seconds, decoded.timestamp.nanos) == (1_700_000_000, 123_456_789)
    assert (decoded.parent_frame_id, decoded.child_frame_id) == ("world", "base")
    assert (decoded.translation.x, decoded.translation.y, decoded.translation.z) == (1.0, -2.0, 0.3)
    r = decoded.rotation
    assert (r.x, r.y, r.z, r.w) == (0.1, -0.2, 0.3, 0.9)  # Foxglove's x, y, z, w

    image = np.arange(58 * 87, dtype=np.float32).reshape(58, 87) / 100.0
    decoded = _decode(fm.raw_image_32f(5, "depth_camera", image))
    assert (decoded.width, decoded.height, decoded.encoding, decoded.step) == (87, 58, "32FC1",
                                                                               348)
    np.testing.assert_array_equal(np.frombuffer(decoded.data, "<f4").reshape(58, 87), image)

    points = np.array([[0.1, 0.2, -0.3], [1.0, -0.5, -0.25]], dtype=np.float32)
    decoded = _decode(fm.point_cloud_xyz(5, "base", points))
    assert decoded.point_stride == 12 and decoded.frame_id == "base"
    assert [(f.name, f.offset, f.type) for f in decoded.fields] == [("x", 0, 7), ("y", 4, 7),
                                                                    ("z", 8, 7)]  # 7: FLOAT32
    np.testing.assert_array_equal(np.frombuffer(decoded.data, "<f4").reshape(2, 3), points)

    decoded = _decode(fm.log_message(7, "warning", "safety: policy -> damping"))
    assert decoded.level == 3 and decoded.message == "safety: policy -> damping"  # 3: WARNING


def test_hardware_pose_is_the_imu_orientation_through_a_real_client():
    """Without a simulator scene (the robot), /pose and /tf carry the IMU's orientation at the
    origin; a client subscribed over loopback decodes them."""
    foxglove = pytest.importorskip("foxglove")
    from hal.live.client import FoxgloveClient
    from hal.live.publisher import LivePublisher
    from hal.live.sdk import start_live_server

    context = foxglove.Context()
    publisher = LivePublisher(context, [f"j{i}" for i in range(12)])
    server = start_live_server("127.0.0.1", 0, context)
    try:
        with FoxgloveClient(server.port) as client:
            assert "/scene" not in client.channels  # no simulator, no scene
            client.subscribe(["/pose", "/tf", "/safety/mode"])
            deadline = 50
            while not (publisher.wanted["pose"]) and deadline:
                publisher.refresh_wanted()
                client.pump(0.05)
                deadline -= 1
            record = _tick(1, mode="ready")
            record.imu.quaternion_wxyz = np.array([0.5, 0.5, -0.5, 0.5])  # w, x, y, z
            publisher.on_tick(record)
            publisher.publish_pending()
            assert client.wait_for({"/pose": 1, "/tf": 1, "/safety/mode": 1}, timeout_s=5.0)
    finally:
        server.stop()
    pose = client.received["/pose"][0][1]
    q, p = pose.pose.orientation, pose.pose.position
    assert (q.x, q.y, q.z, q.w) == (0.5, -0.5, 0.5, 0.5) and (p.x, p.y, p.z) == (0, 0, 0)
    (transform,) = client.received["/tf"][0][1].transforms
    assert (transform.parent_frame_id, transform.child_frame_id) == ("world", "base")
    assert client.received["/safety/mode"][0][1]["mode"] == "ready"

"""The network operator endpoint over real ZMQ: valid messages become events; malformed, hostile
and stale ones are dropped and counted by reason; a flood costs each poll a bounded read; the
lease stands the robot when the sender goes quiet; ``krabby-teleop`` sends what the server reads."""

from __future__ import annotations

import math
import os
import struct
import threading
import time

import pytest
import zmq

from hal.operator import Action
from hal.operator.network import (
    MESSAGE_SIZE,
    NetworkOperatorSource,
    decode_teleop,
    encode_teleop,
)

FORMAT = "<4sHHIIffBBH"  # the documented layout, written out independently


def frame(seq=1, speed=0.0, yaw=0.0, flags=3, mode=0, action=0, reserved=0, magic=b"KOPR",
          version=1, session=77) -> bytes:
    return struct.pack(FORMAT, magic, version, flags, session, seq, speed, yaw, mode, action,
                       reserved)


def poll_until(source, n, now_ns=0, timeout_s=5.0):
    events, deadline = [], time.monotonic() + timeout_s
    while len(events) < n and time.monotonic() < deadline:
        events += source.poll(now_ns)
        time.sleep(0.002)
    return events


@pytest.fixture
def endpoint(zmq_context):
    return f"inproc://operator_{os.getpid()}_{time.monotonic_ns()}"


@pytest.fixture
def source(zmq_context, endpoint):
    src = NetworkOperatorSource(endpoint, zmq_context, max_messages_per_poll=4, lease_ms=500)
    src.connect()
    yield src
    src.close()


@pytest.fixture
def push(zmq_context, endpoint, source):
    sock = zmq_context.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDTIMEO, 1000)
    sock.connect(endpoint)
    yield sock
    sock.close(0)


def test_encoding_matches_the_documented_layout():
    assert MESSAGE_SIZE == 28
    assert encode_teleop(77, 7, 0.5, -0.25, "walk", Action.ESTOP) == \
        frame(7, 0.5, -0.25, 7, 1, 3)
    message = decode_teleop([frame(9, 0.5, 0.0, flags=1, action=1)])
    assert (message.seq, message.forward_speed_m_s, message.yaw_rate_rad_s, message.mode,
            message.action) == (9, 0.5, None, None, Action.START)
    with pytest.raises(ValueError, match="finite"):
        encode_teleop(1, 1, math.inf)
    with pytest.raises(ValueError, match="mode"):
        encode_teleop(1, 1, mode="run")


def test_valid_messages_become_events(source, push):
    push.send(frame(1, 0.6, 0.3, flags=7, mode=1))
    push.send(frame(2, action=1, flags=0))
    events = poll_until(source, 2)
    assert (events[0].forward_speed_m_s, events[0].yaw_rate_rad_s, events[0].mode) == \
        (pytest.approx(0.6), pytest.approx(0.3), "walk")
    assert events[1].action is Action.START and events[1].forward_speed_m_s is None
    assert source.stats()["accepted"] == 2


def test_malformed_and_hostile_messages_are_dropped_and_counted(source, push):
    bad = [
        ([frame(1), b"x"], "frames"),
        ([frame(1)[:27]], "size"),
        ([frame(1) + b"\0"], "size"),
        ([b"\xff" * 4096], "size"),
        ([frame(1, magic=b"KOPX")], "magic"),
        ([frame(1, version=2)], "version"),
        ([frame(1, flags=8)], "reserved"),
        ([frame(1, reserved=1)], "reserved"),
        ([frame(1, speed=math.nan)], "value"),
        ([frame(1, yaw=1e9)], "value"),
        ([frame(1, mode=2, flags=4)], "mode"),
        ([frame(1, action=9)], "action"),
    ]
    for frames, _ in bad:
        push.send_multipart(frames)
    push.send(frame(5, 0.4))
    push.send(frame(5, 1.0))  # stale: same seq
    push.send(frame(3, 1.0))  # stale: older
    events = poll_until(source, 1)
    time.sleep(0.05)
    events += poll_until(source, 0) + [e for _ in range(20) for e in source.poll(0)]
    assert len(events) == 1 and events[0].forward_speed_m_s == pytest.approx(0.4)
    stats = source.stats()
    expected: dict[str, int] = {}
    for _, reason in bad:
        expected[reason] = expected.get(reason, 0) + 1
    expected["stale"] = 2
    assert {k[len("dropped."):]: v for k, v in stats.items() if k.startswith("dropped.")} == \
        expected
    assert stats["dropped"] == sum(expected.values()) and stats["accepted"] == 1


def test_a_new_session_may_restart_its_seq(zmq_context, endpoint):
    src = NetworkOperatorSource(endpoint, zmq_context, session_gap_ms=100)
    src.connect()
    sock = zmq_context.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    try:
        sock.send(frame(50, 0.2))
        assert len(poll_until(src, 1, now_ns=0)) == 1
        sock.send(frame(1, 0.3))  # the same session, 1 s later
        events = poll_until(src, 1, now_ns=1_000_000_000)
        assert events[0].forward_speed_m_s == pytest.approx(0.3)
        sock.send(frame(1, 0.5, session=78))  # another sender at once
        events = poll_until(src, 1, now_ns=1_000_000_001)
        assert events[0].forward_speed_m_s == pytest.approx(0.5)
    finally:
        sock.close(0)
        src.close()


def test_a_flood_is_read_a_bounded_amount_per_poll(source, push):
    def flood():
        for i in range(5000):
            try:
                push.send(b"\0" * (i % 50), zmq.NOBLOCK)
            except zmq.Again:
                pass

    thread = threading.Thread(target=flood)
    thread.start()
    thread.join()
    per_poll = []
    for _ in range(200):
        before = source.stats()["received"]
        source.poll(0)
        per_poll.append(source.stats()["received"] - before)
    assert max(per_poll) <= 4  # max_messages_per_poll
    assert sum(per_poll) > 0
    # The endpoint still takes a valid command after the flood (what ZMQ kept is drained first).
    push.send(frame(10_000, 0.7))
    events = poll_until(source, 1)
    assert events and events[-1].forward_speed_m_s == pytest.approx(0.7)


def test_lease_stands_the_robot_when_the_sender_goes_quiet(source, push):
    push.send(frame(1, 0.8))
    assert len(poll_until(source, 1, now_ns=1_000_000_000)) == 1
    assert source.poll(1_400_000_000) == []  # within the lease
    events = source.poll(1_600_000_000)
    assert len(events) == 1 and events[0].action is Action.STOP
    assert (events[0].forward_speed_m_s, events[0].yaw_rate_rad_s) == (0.0, 0.0)
    assert source.poll(3_000_000_000) == []  # once
    assert source.stats()["lease_expired"] == 1


def test_endpoint_taken_is_one_clear_error(zmq_context, endpoint, source):
    other = NetworkOperatorSource(endpoint, zmq_context)
    with pytest.raises(OSError, match="--teleop-bind"):
        other.connect()


def test_krabby_teleop_cli_sends_what_the_server_reads(capsys):
    from hal.operator.teleop import main

    context = zmq.Context.instance()
    src = NetworkOperatorSource("tcp://127.0.0.1:*", context)  # no keys: the CLI needs --insecure
    src.connect()
    endpoint = src.last_endpoint  # the port the system picked, read back from the bound socket
    try:
        assert main([endpoint, "start", "--insecure"]) == 0
        assert main([endpoint, "--speed", "0.9", "--mode", "walk", "--insecure"]) == 0
        events = poll_until(src, 2)
        assert events[0].action is Action.START
        assert events[1].forward_speed_m_s == pytest.approx(0.9) and events[1].mode == "walk"
        assert main([endpoint, "--insecure", "--speed", "0.5", "--hold", "0.25",
                     "--rate", "20"]) == 0
        events = poll_until(src, 4)
        assert all(e.forward_speed_m_s == pytest.approx(0.5) for e in events[:3])
        events += poll_until(src, 10, timeout_s=0.5)
        assert events[-1].action is Action.STOP
        assert main([endpoint, "--insecure"]) == 2
        assert "nothing to send" in capsys.readouterr().err
        # Without --insecure the CLI wants an operator key (the source here has none).
        assert main([endpoint, "start"]) == 2
        assert "operator keys only" in capsys.readouterr().err
    finally:
        src.close()

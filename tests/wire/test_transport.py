"""Publisher/receiver and HalClient over real ZMQ sockets, on inproc and tcp."""

from __future__ import annotations

import time

import numpy as np
import pytest
import zmq

from hal.client import HalClient
from hal.devices.base import CameraIntrinsics
from hal.protocol import CommandMessage, StateLayout, encode_command
from hal.transport import CommandReceiver, ObservationPublisher

N, FEET, DEPTH = 12, 4, (60, 106)
INTRINSICS = CameraIntrinsics(106, 60, 50.0, 50.0, 52.5, 29.5)
BOTH = pytest.mark.parametrize("endpoints", ["inproc", "tcp"], indirect=True)


@pytest.fixture
def pair(endpoints, zmq_context):
    obs_ep, cmd_ep = endpoints
    pub = ObservationPublisher(obs_ep, StateLayout(N, FEET), DEPTH, zmq_context)
    rcv = CommandReceiver(cmd_ep, N, zmq_context)
    client = HalClient(pub.last_endpoint, rcv.last_endpoint, N, FEET, DEPTH, context=zmq_context)
    time.sleep(0.2 if obs_ep.startswith("tcp") else 0.02)  # let SUB subscriptions propagate
    yield pub, rcv, client
    client.close()
    rcv.close()
    pub.close()


def publish(pub, seq, rng, depth=False):
    state = rng.normal(size=StateLayout(N, FEET).size).astype(np.float32)
    views = pub.begin_state()
    start = 0
    for name, view in views.items():
        view[...] = state[start:start + len(view)]
        start += len(view)
    frame = None
    if depth:
        frame = rng.uniform(0.1, 3.0, DEPTH).astype(np.float32)
        frame[0, :5] = [np.nan, np.inf, -np.inf, 0.0, 7.5]
        pub.begin_depth()[...] = frame
        pub.commit_depth(seq, 1000 + seq, INTRINSICS)
    pub.commit_state_and_publish(seq, 5000 + seq)
    return state, frame


def poll_seq(client, seq, timeout_s=5.0):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        obs = client.poll(timeout_ms=100)
        if obs is not None and obs.seq >= seq:
            return obs
    raise AssertionError(f"observation {seq} never arrived")


@BOTH
def test_every_field_round_trips_bit_exact(pair):
    pub, _, client = pair
    rng = np.random.default_rng(0)
    state, frame = publish(pub, 1, rng, depth=True)
    obs = poll_seq(client, 1)
    got = np.concatenate([obs.joint_position_rad, obs.joint_velocity_rad_s, obs.joint_torque_nm,
                          obs.imu_quaternion_wxyz, obs.imu_angular_velocity_rad_s,
                          obs.imu_linear_acceleration_m_s2, obs.foot_force_n])
    assert got.tobytes() == state.tobytes()
    assert obs.depth_m.tobytes() == frame.tobytes()
    assert (obs.seq, obs.timestamp_ns, obs.depth_seq, obs.depth_timestamp_ns) == (1, 5001, 1, 1001)
    assert obs.depth_intrinsics == INTRINSICS
    assert obs.is_intact()


@BOTH
def test_command_round_trip_names_the_observation(pair):
    pub, rcv, client = pair
    rng = np.random.default_rng(1)
    publish(pub, 7, rng)
    obs = poll_seq(client, 7)
    target = rng.normal(size=N).astype(np.float32)
    cmd = CommandMessage(obs_seq=obs.seq, target_rad=target, kp=np.full(N, 40, np.float32),
                         kd=np.ones(N, np.float32), raw_action=target * 4)
    assert client.send_command(cmd)
    got = rcv.wait_for(7, time.monotonic_ns() + 2_000_000_000)
    assert got is not None and got.message.obs_seq == 7
    assert got.message.target_rad.tobytes() == target.tobytes()


@BOTH
def test_latest_only_under_a_slow_reader(pair):
    """A reader that was busy while 50 observations went by is never handed the backlog: at
    most the few messages the high-water marks hold (stale ones are skipped, over inproc because
    their slots were reused), and the next observation published reaches it at once."""
    pub, _, client = pair
    rng = np.random.default_rng(2)
    publish(pub, 1, rng)
    poll_seq(client, 1)
    for seq in range(2, 52):
        publish(pub, seq, rng)
        time.sleep(0.001)
    time.sleep(0.3)
    seen = []
    while (obs := client.poll(timeout_ms=100)) is not None:
        seen.append(obs.seq)
    assert len(seen) <= 3
    newest_state, _ = publish(pub, 100, rng)
    obs = client.poll(timeout_ms=2000)
    assert obs is not None and obs.seq == 100
    assert obs.joint_position_rad.tobytes() == newest_state[:N].tobytes()


@BOTH
def test_depth_frame_survives_observations_without_one(pair):
    pub, _, client = pair
    rng = np.random.default_rng(3)
    _, frame = publish(pub, 1, rng, depth=True)
    for seq in range(2, 6):
        publish(pub, seq, rng)
    obs = poll_seq(client, 5)
    assert obs.depth_seq == 1
    assert obs.depth_m.tobytes() == frame.tobytes()


def test_inproc_arrays_are_views_into_the_shared_slots(zmq_context, endpoints):
    obs_ep, cmd_ep = endpoints
    pub = ObservationPublisher(obs_ep, StateLayout(N, FEET), DEPTH, zmq_context, n_slots=4)
    client = HalClient(obs_ep, cmd_ep, N, FEET, DEPTH, context=zmq_context)
    try:
        publish(pub, 1, np.random.default_rng(4), depth=True)
        obs = poll_seq(client, 1)
        slot = obs.header.slot
        assert np.shares_memory(obs.joint_position_rad, pub.state_ring.buffer(slot))
        assert np.shares_memory(obs.depth_m, pub.depth_ring.buffer(obs.header.depth_slot))
        assert pub.state_ring.holds()[slot] == 1
        # While held, the writer cycles through the other slots only.
        for seq in range(2, 10):
            publish(pub, seq, np.random.default_rng(seq))
            assert pub.state_ring.holds()[slot] == 1
        assert obs.is_intact()
        assert obs.release()
        assert pub.state_ring.holds().sum() == 0
    finally:
        client.close()
        pub.close()


@BOTH
def test_malformed_observations_are_dropped_and_counted(endpoints, zmq_context):
    obs_ep, cmd_ep = endpoints
    raw = zmq_context.socket(zmq.PUB)
    raw.setsockopt(zmq.LINGER, 0)
    raw.bind(obs_ep)
    commands = zmq_context.socket(zmq.PULL)  # somewhere for the client's command socket to go
    commands.setsockopt(zmq.LINGER, 0)
    commands.bind(cmd_ep)
    client = HalClient(raw.last_endpoint.decode(), commands.last_endpoint.decode(), N, FEET, DEPTH,
                       context=zmq_context)
    try:
        time.sleep(0.2)
        # One at a time: the subscriber conflates, so a burst would leave only the last.
        for frames in ([b"garbage"], [b"KRBO" + b"\0" * 92], [b"x", b"y"]):
            raw.send_multipart(frames)
            before = client.malformed
            deadline = time.monotonic() + 5
            while client.malformed == before and time.monotonic() < deadline:
                assert client.poll(timeout_ms=50) is None
        assert client.malformed == 3
    finally:
        client.close()
        commands.close(linger=0)
        raw.close(linger=0)


@BOTH
def test_receiver_counts_malformed_and_late_and_keeps_waiting(endpoints, zmq_context):
    _, cmd_ep = endpoints
    rcv = CommandReceiver(cmd_ep, N, zmq_context)
    push = zmq_context.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.connect(rcv.last_endpoint)
    try:
        good = CommandMessage(obs_seq=10, target_rad=np.zeros(N, np.float32),
                              kp=np.zeros(N, np.float32), kd=np.zeros(N, np.float32),
                              raw_action=np.zeros(N, np.float32))
        late = CommandMessage(**{**good.__dict__, "obs_seq": 9})
        push.send_multipart([b"junk"])
        push.send_multipart(encode_command(late))
        push.send_multipart([b"KRBC", b""])
        push.send_multipart(encode_command(good))
        got = rcv.wait_for(10, time.monotonic_ns() + 3_000_000_000)
        assert got is not None and got.message.obs_seq == 10
        assert (rcv.malformed, rcv.late) == (2, 1)
        assert rcv.wait_for(11, time.monotonic_ns() + 20_000_000) is None
    finally:
        push.close(linger=0)
        rcv.close()


def test_inproc_client_without_a_server_says_so(zmq_context, endpoints):
    obs_ep, cmd_ep = endpoints
    raw = zmq_context.socket(zmq.PUB)
    raw.setsockopt(zmq.LINGER, 0)
    raw.bind(obs_ep)
    client = HalClient(obs_ep, cmd_ep, N, FEET, DEPTH, context=zmq_context)
    try:
        from hal.protocol import FLAG_INPROC, ObservationHeader, encode_observation_header
        time.sleep(0.02)
        raw.send(encode_observation_header(ObservationHeader(
            seq=1, timestamp_ns=0, publish_ns=0, n_joints=N, n_feet=FEET, depth_shape=DEPTH,
            intrinsics=INTRINSICS, flags=FLAG_INPROC, slot=0)))
        with pytest.raises(LookupError, match="no HAL server in this process"):
            client.poll(timeout_ms=1000)
    finally:
        client.close()
        raw.close(linger=0)


def _command(seq):
    target = np.zeros(N, np.float32)
    return CommandMessage(obs_seq=seq, target_rad=target, kp=np.full(N, 40, np.float32),
                          kd=np.ones(N, np.float32), raw_action=target)


@pytest.mark.parametrize("endpoints", ["tcp"], indirect=True)
def test_a_command_read_after_the_deadline_is_never_returned(pair):
    """The answer to seq 7 is queued, but the tick's deadline has passed: the wait returns
    nothing at once and leaves it unread (the next tick reads it as late)."""
    pub, rcv, client = pair
    publish(pub, 7, np.random.default_rng(5))
    poll_seq(client, 7)
    assert client.send_command(_command(7))
    deadline = time.monotonic() + 5
    while not rcv._socket.poll(10) and time.monotonic() < deadline:
        pass
    assert rcv.wait_for(7, time.monotonic_ns() - 1) is None
    assert rcv._socket.getsockopt(zmq.EVENTS) & zmq.POLLIN  # still queued, not read
    assert rcv.wait_for(8, time.monotonic_ns() + 50_000_000) is None  # read now: late for 8
    assert rcv.late == 1


@pytest.mark.parametrize("endpoints", ["tcp"], indirect=True)
def test_the_wait_stops_reading_at_its_deadline_whatever_is_queued(pair):
    """20 000 queued messages: one wait reads until its deadline and stops, leaving the rest."""
    pub, rcv, client = pair
    flood = rcv._context.socket(zmq.PUSH)
    try:
        flood.setsockopt(zmq.LINGER, 0)
        flood.setsockopt(zmq.SNDHWM, 100_000)
        flood.connect(rcv.last_endpoint)
        for _ in range(20_000):
            flood.send(b"garbage", flags=zmq.NOBLOCK)
        deadline = time.monotonic() + 5
        while not rcv._socket.poll(10) and time.monotonic() < deadline:
            pass
        assert rcv.wait_for(1, time.monotonic_ns() + 2_000_000) is None
        read = rcv.malformed
        assert read >= 1
        assert rcv._socket.getsockopt(zmq.EVENTS) & zmq.POLLIN  # the rest was left queued
        assert rcv.wait_for(1, time.monotonic_ns() + 2_000_000) is None
        assert rcv.malformed > read  # and the next tick's wait goes on from there
    finally:
        flood.close(linger=0)

"""Server side of the ZMQ transport: observation publisher and command receiver.

Endpoints: the HAL server binds both sockets; clients connect. ``inproc://`` endpoints share one
ZMQ context (``zmq.Context.instance()`` unless one is passed) and carry headers only, the arrays
staying in :class:`~hal.slots.SlotRing` buffers; ``tcp://`` endpoints carry the arrays as raw
bytes after the header, in the same frame. Delivery is latest-only through CONFLATE on the
subscriber, so a slow subscriber never works through a backlog (kernel socket buffers would
otherwise hold dozens of stale observations over tcp).

Network endpoints (anything but ``inproc://``) are authenticated with CURVE when the server has
keys (:mod:`hal.auth`): observations go to policy and operator keys, commands come from policy
keys only, and only one policy client (one key) drives at a time. Every socket limits inbound
frames to the protocol's largest (``ZMQ_MAXMSGSIZE``). No network input can lengthen a tick: the
command wait stops reading at its deadline whatever is queued, and a network publisher's socket
(where subscription messages are processed) lives on a forwarder thread, off the control loop.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass

import numpy as np
import zmq

from hal.auth import (
    ServerKeys,
    acquire_authenticator,
    limit_inbound_bytes,
    release_authenticator,
    secure_server_socket,
    sender_key,
)
from hal.devices.base import CameraIntrinsics
from hal.protocol import (
    FLAG_DEPTH_ATTACHED,
    FLAG_INPROC,
    CommandMessage,
    NonFiniteCommandError,
    ObservationHeader,
    ProtocolError,
    StateLayout,
    command_max_frame_bytes,
    decode_command,
    encode_observation_header,
)
from hal.log_limit import RateLimitedLog
from hal.slots import Allocator, SlotRing, register_slots, unregister_slots

__all__ = ["ObservationPublisher", "CommandReceiver", "ReceivedCommand", "is_inproc",
           "SUBSCRIPTION_MAX_BYTES"]

log = logging.getLogger(__name__)


SUBSCRIPTION_MAX_BYTES = 64
"""Largest subscription message a publisher accepts (clients subscribe to everything: 1 byte)."""

_forwarder_ids = itertools.count()


def is_inproc(endpoint: str) -> bool:
    return endpoint.startswith("inproc://")


class _Forwarder:
    """The network PUB socket on a thread of its own, fed from the loop over inproc.

    libzmq processes a PUB socket's incoming subscription messages on whichever thread sends
    on it; with the socket here, a subscription flood costs this thread (inside ``zmq_proxy``,
    with the GIL released), never the control loop, which only pushes each message over inproc
    without blocking (a full queue drops it, counted by the publisher).
    """

    def __init__(self, context: zmq.Context, endpoint: str, keys: ServerKeys | None) -> None:
        name = f"inproc://krabby-observation-forwarder-{next(_forwarder_ids)}"
        self._context = context
        self._pub = context.socket(zmq.PUB)
        self._sockets = [self._pub]
        self._authenticated = keys is not None
        if keys is not None:
            acquire_authenticator(context, keys)
        try:
            self._pub.setsockopt(zmq.LINGER, 0)
            self._pub.setsockopt(zmq.SNDHWM, 8)
            limit_inbound_bytes(self._pub, SUBSCRIPTION_MAX_BYTES)
            if keys is not None:
                secure_server_socket(self._pub, keys, "observations")
            self._pub.bind(endpoint)
            self.last_endpoint = self._pub.getsockopt_string(zmq.LAST_ENDPOINT)
            self._pull = self._socket(context, zmq.PULL, zmq.RCVHWM, 4)
            self._pull.bind(name)
            self._control = self._socket(context, zmq.PAIR)
            self._control.bind(name + "-control")
            control_peer = self._socket(context, zmq.PAIR)
            control_peer.connect(name + "-control")
            self.push = self._socket(context, zmq.PUSH, zmq.SNDHWM, 4)
            self.push.connect(name)
        except zmq.ZMQError:
            self.close()
            raise
        self._thread = threading.Thread(target=self._run, args=(control_peer,), daemon=True,
                                        name="observation-forwarder")
        self._thread.start()

    def _socket(self, context: zmq.Context, kind: int, *option: int) -> zmq.Socket:
        sock = context.socket(kind)
        self._sockets.append(sock)
        sock.setsockopt(zmq.LINGER, 0)
        if option:
            sock.setsockopt(*option)
        return sock

    def _run(self, control: zmq.Socket) -> None:
        try:
            zmq.proxy_steerable(self._pull, self._pub, None, control)
        except zmq.ZMQError as exc:
            if exc.errno != zmq.ETERM:
                log.error("observation forwarder stopped: %s", exc)

    def close(self) -> None:
        thread = getattr(self, "_thread", None)
        if thread is not None and thread.is_alive():
            self._control.send(b"TERMINATE")
            thread.join(2.0)
        for sock in self._sockets:
            sock.close(linger=0)
        self._sockets = []
        if self._authenticated:
            self._authenticated = False
            release_authenticator(self._context)


class ObservationPublisher:
    """Writes observations into slots (inproc) or frames (tcp) and publishes them.

    Args:
        endpoint: Where to bind the PUB socket.
        layout: The state block layout of this robot.
        depth_shape: (H, W) of the camera's frames, or None without a camera.
        context: ZMQ context (inproc peers must share it).
        n_slots: Observation ring length (inproc).
        n_depth_slots: Depth ring length (inproc).
        share_slots: Publish headers only and share the arrays in place; the default, True for
            inproc endpoints, is the only sensible choice outside benchmarks that compare it with
            serialising the arrays.
        allocate: Allocator of the slot rings (see :class:`~hal.slots.SlotRing`).
        keys: The robot's keys: a network endpoint then admits policy and operator keys only
            (CURVE). None leaves it unauthenticated (the caller checked that this is allowed).
    """

    def __init__(self, endpoint: str, layout: StateLayout, depth_shape: tuple[int, int] | None,
                 context: zmq.Context | None = None, n_slots: int = 8,
                 n_depth_slots: int = 4, share_slots: bool | None = None,
                 allocate: Allocator | None = None, keys: ServerKeys | None = None) -> None:
        self.endpoint = endpoint
        self.layout = layout
        self.depth_shape = tuple(depth_shape) if depth_shape else (0, 0)
        self.inproc = is_inproc(endpoint) if share_slots is None else share_slots
        if self.inproc and not is_inproc(endpoint):
            raise ValueError(f"shared slots need an inproc endpoint, got {endpoint!r}")
        self._context = context or zmq.Context.instance()
        self.state_ring = SlotRing(n_slots, (layout.size,), np.float32, allocate)
        self.depth_ring = (SlotRing(n_depth_slots, self.depth_shape, np.float32, allocate)
                           if depth_shape else None)
        self._forwarder: _Forwarder | None = None
        if is_inproc(endpoint):
            self._socket = self._context.socket(zmq.PUB)
            self._socket.setsockopt(zmq.LINGER, 0)
            # A few messages of slack so a burst is not dropped at the sender, where the *newest*
            # would go; the subscriber's CONFLATE is what makes delivery latest-only.
            self._socket.setsockopt(zmq.SNDHWM, 8)
            self._socket.bind(endpoint)
            #: The endpoint as bound (``tcp://127.0.0.1:*`` becomes the port the system picked).
            self.last_endpoint = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)
        else:
            self._forwarder = _Forwarder(self._context, endpoint, keys)
            self._socket = self._forwarder.push
            self.last_endpoint = self._forwarder.last_endpoint
        self.authenticated = keys is not None and not is_inproc(endpoint)
        if self.inproc:
            register_slots(endpoint, {"state": self.state_ring, "depth": self.depth_ring})
        self._state_slot = -1
        self._state_generation = 0
        self._depth_slot = -1
        self._depth_generation = 0
        self._depth_seq = 0
        self._depth_timestamp_ns = 0
        self._depth_intrinsics: CameraIntrinsics | None = None
        self.published = 0
        self.send_dropped = 0
        self.slot_starved = 0

    # The writer fills state and depth in place between begin_* and commit_*.

    def begin_state(self) -> dict[str, np.ndarray]:
        """Claim a free state slot; returns named views to fill (hardware order)."""
        self._state_slot = self.state_ring.begin_write()
        return self.layout.views(self.state_ring.buffer(self._state_slot))

    def begin_depth(self) -> np.ndarray:
        """Claim a free depth slot; returns the (H, W) float32 buffer a camera writes into."""
        assert self.depth_ring is not None
        self._depth_slot_writing = self.depth_ring.begin_write()
        return self.depth_ring.buffer(self._depth_slot_writing)

    def commit_depth(self, seq: int, timestamp_ns: int, intrinsics: CameraIntrinsics) -> None:
        assert self.depth_ring is not None
        self._depth_generation = self.depth_ring.end_write(self._depth_slot_writing)
        self._depth_slot = self._depth_slot_writing
        self._depth_seq, self._depth_timestamp_ns, self._depth_intrinsics = seq, timestamp_ns, intrinsics

    def abort_depth(self) -> None:
        """No new frame was written: give the claimed slot back untouched in content."""
        assert self.depth_ring is not None
        self.depth_ring.abort_write(self._depth_slot_writing)

    @property
    def depth_seq(self) -> int:
        return self._depth_seq

    @property
    def depth_timestamp_ns(self) -> int:
        return self._depth_timestamp_ns

    def commit_state_and_publish(self, seq: int, timestamp_ns: int, control_mode: int = 0) -> int:
        """Publish observation ``seq`` (``control_mode``: the safety layer's mode code when the
        tick began); returns the publish time (monotonic ns)."""
        self._state_generation = self.state_ring.end_write(self._state_slot)
        flags = FLAG_INPROC if self.inproc else 0
        # Over tcp every observation carries the newest depth frame: with latest-only delivery a
        # frame sent once could be conflated away and never reach the client.
        attach_depth = not self.inproc and self._depth_slot >= 0
        if attach_depth:
            flags |= FLAG_DEPTH_ATTACHED
        publish_ns = time.monotonic_ns()
        header = ObservationHeader(
            seq=seq, timestamp_ns=timestamp_ns, publish_ns=publish_ns,
            n_joints=self.layout.n_joints, n_feet=self.layout.n_feet, depth_shape=self.depth_shape,
            depth_seq=self._depth_seq, depth_timestamp_ns=self._depth_timestamp_ns,
            intrinsics=self._depth_intrinsics if self._depth_slot >= 0 else None, flags=flags,
            slot=self._state_slot, slot_generation=self._state_generation,
            depth_slot=self._depth_slot, depth_generation=self._depth_generation,
            control_mode=control_mode, n_scan=self.layout.n_scan)
        message = encode_observation_header(header)
        if not self.inproc:
            # One frame (header + arrays) so the subscriber's CONFLATE keeps the newest whole
            # message; the bytes are a copy, so ZMQ never reads a slot the ring has reused.
            parts = [message, self.state_ring.buffer(self._state_slot).tobytes()]
            if attach_depth:
                parts.append(self.depth_ring.buffer(self._depth_slot).tobytes())
            message = b"".join(parts)
        try:
            self._socket.send(message, flags=zmq.NOBLOCK)
        except zmq.Again:  # the forwarder is behind: drop (the subscriber wants the newest)
            self.send_dropped += 1
        self.published += 1
        return publish_ns

    def close(self) -> None:
        if self.inproc:
            unregister_slots(self.endpoint)
        if self._forwarder is not None:
            self._forwarder.close()
        else:
            self._socket.close(linger=0)


@dataclass
class ReceivedCommand:
    message: CommandMessage
    receive_ns: int
    non_finite: bool = False


class CommandReceiver:
    """PULL socket for commands, with validation, matching to the awaited seq, and counters.

    Args:
        endpoint: Where to bind.
        n_joints: The robot's joint count (every command must match).
        context: ZMQ context (inproc peers must share it).
        keys: The robot's keys: a network endpoint then admits policy keys only (CURVE).
        owner_release_s: One policy client drives at a time: the first whose well-formed command
            arrives owns the stream, and commands from any other client (another key; without
            keys, another address) are dropped and counted until the owner has sent nothing for
            this long. By then the command watchdog has damped the motors, and the policy runs
            again only after an operator start.
    """

    def __init__(self, endpoint: str, n_joints: int, context: zmq.Context | None = None,
                 keys: ServerKeys | None = None, owner_release_s: float = 1.0) -> None:
        self.endpoint = endpoint
        self.n_joints = n_joints
        self._context = context or zmq.Context.instance()
        self._socket = self._context.socket(zmq.PULL)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.RCVHWM, 64)
        self._network = not is_inproc(endpoint)
        limit_inbound_bytes(self._socket, command_max_frame_bytes(n_joints))
        self._keys = keys
        self.authenticated = keys is not None and self._network
        if self.authenticated:
            acquire_authenticator(self._context, keys)
            secure_server_socket(self._socket, keys, "commands")
        try:
            self._socket.bind(endpoint)
        except zmq.ZMQError:
            self.close()
            raise
        #: The endpoint as bound (``tcp://127.0.0.1:*`` becomes the port the system picked).
        self.last_endpoint = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self._poller = zmq.Poller()
        self._poller.register(self._socket, zmq.POLLIN)
        self.malformed = 0
        self.late = 0
        self.after_deadline = 0
        self.foreign = 0
        self.refused_clients: set[str] = set()
        self.owner: str | None = None
        self._owner_seen_ns = 0
        self._owner_release_ns = int(owner_release_s * 1e9)
        self._log = RateLimitedLog(log)

    def _receive(self) -> tuple[list, str | None]:
        """One message and its sender (None over inproc: the in-process client)."""
        if not self._network:
            return self._socket.recv_multipart(flags=zmq.NOBLOCK, copy=True), None
        frames = self._socket.recv_multipart(flags=zmq.NOBLOCK, copy=False)
        key = sender_key(frames[0])
        if key is not None:
            name = self._keys.name_of(key) if self._keys is not None else None
            sender = f"{name} ({key.decode('ascii')})" if name else key.decode("ascii")
        else:  # --insecure: the peer's address is all there is to tell clients apart
            try:
                sender = frames[0].get("Peer-Address")
            except zmq.ZMQError:
                sender = "unknown"
        return [frame.bytes for frame in frames], sender

    def _admit(self, sender: str | None, now_ns: int) -> bool:
        """One policy client at a time (see the class docstring)."""
        if sender is None or sender == self.owner:
            self._owner_seen_ns = now_ns
            return True
        if self.owner is None or now_ns - self._owner_seen_ns > self._owner_release_ns:
            log.warning("policy client %s now owns the command stream%s", sender,
                        f" ({self.owner} went silent)" if self.owner else "")
            self.owner, self._owner_seen_ns = sender, now_ns
            return True
        self.foreign += 1
        if sender not in self.refused_clients:
            self.refused_clients.add(sender)
            log.warning("second policy client %s refused: %s owns the command stream",
                        sender, self.owner)
        return False

    def wait_for(self, seq: int, deadline_ns: int) -> ReceivedCommand | None:
        """The command answering ``seq``, or None when the deadline passes first.

        Reading stops at the deadline whatever is still queued, and a command read after it is
        never returned (counted in ``after_deadline``), so no amount of traffic lengthens the
        wait by more than one message. Commands for older seqs are late: counted and dropped.
        Malformed ones are counted, logged at a limited rate and dropped. A well-formed command
        with NaN/inf is returned flagged ``non_finite`` so the safety layer can reject it and
        damp. Commands from a client other than the owner are dropped (``foreign``).
        """
        socket, poller = self._socket, self._poller
        while True:
            remaining_ns = deadline_ns - time.monotonic_ns()
            if remaining_ns <= 0:
                return None
            # zmq_poll counts whole milliseconds: round up (it returns as soon as a command
            # arrives) so the wait never degenerates into a GIL-holding spin.
            if (not socket.getsockopt(zmq.EVENTS) & zmq.POLLIN
                    and not poller.poll(-(-remaining_ns // 1_000_000))):
                return None
            try:
                frames, sender = self._receive()
            except zmq.Again:
                continue
            now = time.monotonic_ns()
            if now > deadline_ns:
                self.after_deadline += 1
                return None
            non_finite = False
            try:
                message = decode_command(frames, self.n_joints)
            except NonFiniteCommandError as exc:
                message, non_finite = exc.message, True
                self._log.warning("nonfinite", "command rejected: %s", exc)
            except ProtocolError as exc:
                self.malformed += 1
                self._log.warning("malformed", "malformed command dropped: %s", exc)
                continue
            if not self._admit(sender, now):
                continue
            if message.obs_seq == seq:
                return ReceivedCommand(message, now, non_finite)
            if message.obs_seq < seq:
                self.late += 1
                continue
            self.malformed += 1
            self._log.warning("future", "command answers seq %d, newest observation is %d: dropped",
                              message.obs_seq, seq)

    def close(self) -> None:
        """Close the socket. Safe to call twice."""
        if not self._socket.closed:
            self._socket.close(linger=0)
            if self.authenticated:
                release_authenticator(self._context)

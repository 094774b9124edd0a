"""Server side of the ZMQ transport: observation publisher and command receiver.

Endpoints: the HAL server binds both sockets; clients connect. ``inproc://`` endpoints share one
ZMQ context (``zmq.Context.instance()`` unless one is passed) and carry headers only, the arrays
staying in :class:`~hal.slots.SlotRing` buffers; ``tcp://`` endpoints carry the arrays as raw
bytes after the header, in the same frame. Delivery is latest-only through CONFLATE on the
subscriber, so a slow subscriber never works through a backlog (kernel socket buffers would
otherwise hold dozens of stale observations over tcp).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import zmq

from hal.devices.base import CameraIntrinsics
from hal.protocol import (
    FLAG_DEPTH_ATTACHED,
    FLAG_INPROC,
    CommandMessage,
    NonFiniteCommandError,
    ObservationHeader,
    ProtocolError,
    StateLayout,
    decode_command,
    encode_observation_header,
)
from hal.log_limit import RateLimitedLog
from hal.slots import Allocator, SlotRing, register_slots, unregister_slots

__all__ = ["ObservationPublisher", "CommandReceiver", "ReceivedCommand", "is_inproc"]

log = logging.getLogger(__name__)


def is_inproc(endpoint: str) -> bool:
    return endpoint.startswith("inproc://")


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
    """

    def __init__(self, endpoint: str, layout: StateLayout, depth_shape: tuple[int, int] | None,
                 context: zmq.Context | None = None, n_slots: int = 8,
                 n_depth_slots: int = 4, share_slots: bool | None = None,
                 allocate: Allocator | None = None) -> None:
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
        self._socket = self._context.socket(zmq.PUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        # A few messages of slack so a burst is not dropped at the sender, where the *newest*
        # would go; the subscriber's CONFLATE is what makes delivery latest-only.
        self._socket.setsockopt(zmq.SNDHWM, 8)
        self._socket.bind(endpoint)
        #: The endpoint as bound (``tcp://127.0.0.1:*`` becomes the port the system picked).
        self.last_endpoint = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)
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
        self._socket.send(message, flags=zmq.NOBLOCK)
        self.published += 1
        return publish_ns

    def close(self) -> None:
        if self.inproc:
            unregister_slots(self.endpoint)
        self._socket.close(linger=0)


@dataclass
class ReceivedCommand:
    message: CommandMessage
    receive_ns: int
    non_finite: bool = False


class CommandReceiver:
    """PULL socket for commands, with validation, matching to the awaited seq, and counters."""

    def __init__(self, endpoint: str, n_joints: int, context: zmq.Context | None = None) -> None:
        self.endpoint = endpoint
        self.n_joints = n_joints
        self._context = context or zmq.Context.instance()
        self._socket = self._context.socket(zmq.PULL)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.RCVHWM, 64)
        self._socket.bind(endpoint)
        #: The endpoint as bound (``tcp://127.0.0.1:*`` becomes the port the system picked).
        self.last_endpoint = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self._poller = zmq.Poller()
        self._poller.register(self._socket, zmq.POLLIN)
        self.malformed = 0
        self.late = 0
        self._log = RateLimitedLog(log)

    def wait_for(self, seq: int, deadline_ns: int) -> ReceivedCommand | None:
        """The command answering ``seq``, or None when the deadline passes first.

        Commands for older seqs are late: counted and dropped. Malformed ones are counted, logged
        at a limited rate and dropped. A well-formed command with NaN/inf is returned flagged
        ``non_finite`` so the safety layer can reject it and damp.
        """
        while True:
            remaining_ns = deadline_ns - time.monotonic_ns()
            if remaining_ns <= 0 and not self._socket.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                return None
            # zmq_poll counts whole milliseconds: round up (it returns as soon as a command
            # arrives) so the wait never degenerates into a GIL-holding spin.
            if remaining_ns > 0 and not self._poller.poll(-(-remaining_ns // 1_000_000)):
                return None
            try:
                frames = self._socket.recv_multipart(flags=zmq.NOBLOCK, copy=True)
            except zmq.Again:
                continue
            now = time.monotonic_ns()
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
            if message.obs_seq == seq:
                return ReceivedCommand(message, now, non_finite)
            if message.obs_seq < seq:
                self.late += 1
                continue
            self.malformed += 1
            self._log.warning("future", "command answers seq %d, newest observation is %d: dropped",
                              message.obs_seq, seq)

    def close(self) -> None:
        self._socket.close(linger=0)

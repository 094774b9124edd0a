"""Network e-stop: a ZMQ listener the server polls each tick, a sender, and the wire format.

Wire format (version 1) — one ZMQ frame per message, printable ASCII (bytes 0x20–0x7E), at most
``MAX_MESSAGE_BYTES`` (256) bytes, no pickle, no JSON::

    ESTOP             latch the e-stop (reason "remote")
    ESTOP <reason>    latch the e-stop; <reason> is 1–200 printable ASCII characters
    RESET             clear a latched e-stop (the only remote way to clear it)

The words are upper case and separated from the reason by one space. Anything else — several
frames, an over-long or non-ASCII frame, an unknown or lower-case word, ``RESET`` with text after
it — is rejected: counted, logged at a limited rate and ignored; it never latches and never clears.

Transport: by default the robot **binds a PULL socket** on ``DEFAULT_ESTOP_ENDPOINT``
(``tcp://*:5560``) and any number of operator tools **connect a PUSH socket** to
``tcp://<robot>:5560`` (:class:`EstopSender`). PUSH/PULL queues a message until it is delivered, so
an e-stop sent while the connection is still forming is not lost (a PUB/SUB message would be).
For an operator station that already publishes, ``socket_type="sub"`` connects a SUB socket to the
station's PUB endpoint instead (subscribed to everything; mind the slow-joiner window).

From the command line (an operator's terminal)::

    python -m hal.safety.estop tcp://robot:5560 ESTOP "operator saw a fall"
    python -m hal.safety.estop tcp://robot:5560 RESET
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from typing import Protocol

import zmq

from hal.log_limit import RateLimitedLog

__all__ = [
    "DEFAULT_ESTOP_ENDPOINT",
    "MAX_MESSAGE_BYTES",
    "MAX_REASON_CHARS",
    "EstopMessageError",
    "EstopMessage",
    "encode_estop",
    "encode_reset",
    "parse_estop_message",
    "EstopListener",
    "EstopSender",
    "main",
]

logger = logging.getLogger(__name__)

DEFAULT_ESTOP_ENDPOINT = "tcp://*:5560"
MAX_MESSAGE_BYTES = 256
MAX_REASON_CHARS = 200
_ESTOP = b"ESTOP"
_RESET = b"RESET"


class EstopMessageError(ValueError):
    """A frame on the e-stop socket does not follow the wire format (the message says how)."""


@dataclass(frozen=True, slots=True)
class EstopMessage:
    """A validated e-stop message: ``kind`` is ``"estop"`` or ``"reset"``."""

    kind: str
    reason: str = ""


class _EstopTarget(Protocol):
    def estop(self, reason: str = ..., now_ns: int | None = ...) -> None: ...

    def reset_estop(self, now_ns: int | None = ...) -> bool: ...


def _check_reason(reason: str) -> bytes:
    if (not isinstance(reason, str) or not 1 <= len(reason) <= MAX_REASON_CHARS
            or not all(" " <= ch <= "~" for ch in reason)):
        raise EstopMessageError(
            f"e-stop reason {reason!r}: must be 1–{MAX_REASON_CHARS} printable ASCII characters")
    return reason.encode("ascii")


def encode_estop(reason: str = "") -> bytes:
    """The frame that latches the e-stop (``ESTOP`` or ``ESTOP <reason>``)."""
    return _ESTOP if not reason else _ESTOP + b" " + _check_reason(reason)


def encode_reset() -> bytes:
    """The frame that clears a latched e-stop."""
    return _RESET


def parse_estop_message(frames: list[bytes]) -> EstopMessage:
    """Validate one received ZMQ message (its list of frames).

    Raises:
        EstopMessageError: not exactly one frame, too long, not printable ASCII, or not one of
            ``ESTOP``, ``ESTOP <reason>``, ``RESET``.
    """
    if len(frames) != 1:
        raise EstopMessageError(f"expected 1 frame, got {len(frames)}")
    frame = bytes(frames[0])
    if len(frame) > MAX_MESSAGE_BYTES:
        raise EstopMessageError(f"frame of {len(frame)} bytes > {MAX_MESSAGE_BYTES}")
    if not all(0x20 <= c <= 0x7E for c in frame):
        raise EstopMessageError(f"frame {frame[:40]!r} is not printable ASCII")
    if frame == _RESET:
        return EstopMessage("reset")
    if frame == _ESTOP:
        return EstopMessage("estop", "remote")
    if frame.startswith(_ESTOP + b" ") and len(frame) > len(_ESTOP) + 1:
        reason = frame[len(_ESTOP) + 1:].decode("ascii")
        if len(reason) <= MAX_REASON_CHARS:
            return EstopMessage("estop", reason)
    raise EstopMessageError(
        f"frame {frame[:40]!r} is not one of 'ESTOP', 'ESTOP <reason>' (reason 1–"
        f"{MAX_REASON_CHARS} chars), 'RESET'")


class EstopListener:
    """Receives e-stop messages without blocking; the server calls :meth:`apply` once per tick.

    Args:
        endpoint: ZMQ endpoint (bound for PULL, connected for SUB unless ``bind`` says otherwise).
        context: The ZMQ context (the server's, so inproc senders work); None creates one.
        socket_type: ``"pull"`` (default) or ``"sub"``.
        bind: Bind (True) or connect (False); None binds PULL and connects SUB.
        max_messages_per_poll: Upper bound on messages handled per call, so a flood cannot stall
            the tick (the rest wait for the next tick).

    Raises:
        ValueError: unknown ``socket_type``.
        zmq.ZMQError: the endpoint cannot be bound/connected (e.g. the port is in use).
    """

    def __init__(self, endpoint: str = DEFAULT_ESTOP_ENDPOINT, context: zmq.Context | None = None,
                 socket_type: str = "pull", bind: bool | None = None,
                 max_messages_per_poll: int = 64) -> None:
        kinds = {"pull": zmq.PULL, "sub": zmq.SUB}
        if socket_type not in kinds:
            raise ValueError(f"socket_type {socket_type!r}: valid are {sorted(kinds)}")
        self.endpoint = endpoint
        self.received = 0
        self.rejected = 0
        self._max = int(max_messages_per_poll)
        self._log = RateLimitedLog(logger)
        self._owns_context = context is None
        self._context = context if context is not None else zmq.Context()
        self._socket = self._context.socket(kinds[socket_type])
        self._socket.setsockopt(zmq.LINGER, 0)
        # A peer that sends an oversized frame is disconnected before it costs memory.
        self._socket.setsockopt(zmq.MAXMSGSIZE, 4 * MAX_MESSAGE_BYTES)
        if socket_type == "sub":
            self._socket.setsockopt(zmq.SUBSCRIBE, b"")
        try:
            if bind if bind is not None else socket_type == "pull":
                self._socket.bind(endpoint)
            else:
                self._socket.connect(endpoint)
        except zmq.ZMQError as exc:
            self.close()
            raise zmq.ZMQError(exc.errno, f"e-stop listener on {endpoint!r}: {exc}") from None
        self.last_endpoint = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)

    def poll(self) -> list[EstopMessage]:
        """Every valid message waiting now, oldest first (never blocks)."""
        messages: list[EstopMessage] = []
        for _ in range(self._max):
            if not self._socket.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                break
            try:
                frames = self._socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            self.received += 1
            try:
                messages.append(parse_estop_message(frames))
            except EstopMessageError as exc:
                self.rejected += 1
                self._log.warning("rejected", "e-stop listener %s: rejected message (%d so far): %s",
                                  self.endpoint, self.rejected, exc)
        return messages

    def apply(self, target: _EstopTarget, now_ns: int | None = None) -> int:
        """Poll and apply in arrival order: ESTOP → ``target.estop``, RESET → ``reset_estop``.

        Returns the number of messages applied.
        """
        if not self._socket.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            return 0
        messages = self.poll()
        for message in messages:
            if message.kind == "estop":
                target.estop(f"remote: {message.reason}", now_ns)
            else:
                logger.warning("e-stop listener %s: RESET received", self.endpoint)
                target.reset_estop(now_ns)
        return len(messages)

    def close(self) -> None:
        """Close the socket (and the context if this listener created it). Safe to call twice."""
        if not self._socket.closed:
            self._socket.close(linger=0)
        if self._owns_context and not self._context.closed:
            self._context.term()

    def __enter__(self) -> EstopListener:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class EstopSender:
    """Sends e-stop messages (an operator tool, a test, a fault drill).

    Args:
        endpoint: Where the listener is (``tcp://robot:5560``); connected for PUSH, bound for PUB.
        context: ZMQ context; None creates one.
        socket_type: ``"push"`` (to a PULL listener, default) or ``"pub"`` (for SUB listeners).
        send_timeout_ms: How long a PUSH send waits for a connected listener before failing
            (messages are only queued on a live connection, so an unreachable listener is an error).
        linger_ms: How long :meth:`close` keeps trying to deliver queued messages.
    """

    def __init__(self, endpoint: str, context: zmq.Context | None = None,
                 socket_type: str = "push", send_timeout_ms: int = 1000,
                 linger_ms: int = 0) -> None:
        kinds = {"push": zmq.PUSH, "pub": zmq.PUB}
        if socket_type not in kinds:
            raise ValueError(f"socket_type {socket_type!r}: valid are {sorted(kinds)}")
        self.endpoint = endpoint
        self._owns_context = context is None
        self._context = context if context is not None else zmq.Context()
        self._socket = self._context.socket(kinds[socket_type])
        self._socket.setsockopt(zmq.LINGER, int(linger_ms))
        self._socket.setsockopt(zmq.SNDTIMEO, int(send_timeout_ms))
        if socket_type == "push":
            self._socket.setsockopt(zmq.IMMEDIATE, 1)
        try:
            if socket_type == "pub":
                self._socket.bind(endpoint)
            else:
                self._socket.connect(endpoint)
        except zmq.ZMQError as exc:
            self.close()
            raise zmq.ZMQError(exc.errno, f"e-stop sender to {endpoint!r}: {exc}") from None

    def send_raw(self, frame: bytes) -> None:
        """Send one frame as is (tests use it to send malformed messages)."""
        try:
            self._socket.send(frame)
        except zmq.Again:
            raise TimeoutError(f"e-stop to {self.endpoint}: no listener took the message") from None

    def estop(self, reason: str = "") -> None:
        """Send ``ESTOP [reason]``."""
        self.send_raw(encode_estop(reason))

    def reset(self) -> None:
        """Send ``RESET``."""
        self.send_raw(encode_reset())

    def close(self) -> None:
        """Close the socket (and the context if this sender created it). Safe to call twice."""
        if not self._socket.closed:
            self._socket.close()
        if self._owns_context and not self._context.closed:
            self._context.term()

    def __enter__(self) -> EstopSender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m hal.safety.estop ENDPOINT {ESTOP,RESET} [REASON]``."""
    parser = argparse.ArgumentParser(
        prog="python -m hal.safety.estop",
        description="Send an e-stop or a reset to a krabby HAL server.")
    parser.add_argument("endpoint", help="the robot's e-stop endpoint, e.g. tcp://robot:5560")
    parser.add_argument("command", choices=["ESTOP", "RESET"])
    parser.add_argument("reason", nargs="?", default="", help="why (ESTOP only)")
    args = parser.parse_args(argv)
    if args.command == "RESET" and args.reason:
        parser.error("RESET takes no reason")
    try:
        # Linger so the close waits (up to 2 s) for the frame to leave the machine.
        with EstopSender(args.endpoint, send_timeout_ms=2000, linger_ms=2000) as sender:
            if args.command == "ESTOP":
                sender.estop(args.reason)
            else:
                sender.reset()
    except (EstopMessageError, TimeoutError, zmq.ZMQError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"sent {args.command} to {args.endpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Network e-stop: a ZMQ listener the server polls each tick, a sender, and the wire format.

Wire format (version 1) — one ZMQ frame per message, printable ASCII (bytes 0x20–0x7E), at most
``MAX_MESSAGE_BYTES`` (256) bytes, no pickle, no JSON::

    ESTOP             latch the e-stop (reason "remote")
    ESTOP <reason>    latch the e-stop; <reason> is 1–200 printable ASCII characters
    RESET             clear a latched e-stop (operator only, see below)
    START             stand up and hand over to the policy (operator only)

The words are upper case and separated from the reason by one space. Anything else — several
frames, an over-long or non-ASCII frame, an unknown or lower-case word, ``RESET`` with text after
it — is rejected: counted, logged at a limited rate and ignored; it never latches and never clears.

Who may do what: anyone who reaches the listener may latch (stopping is always allowed).
``RESET`` and ``START`` are operator actions: over the network they are accepted only from an
**operator key** (CURVE, :mod:`hal.auth`; a policy client's key is refused and counted), and on
the server itself from its terminal (``r`` reset, Enter start: :mod:`hal.operator.keyboard`) or from the
same process (``inproc``: tests and fault drills). A listener without keys — the default
loopback endpoint, or ``--insecure`` — cannot tell an operator from anyone else, so it refuses
``RESET`` and ``START`` too.

Transport: by default the robot **binds a PULL socket** on ``DEFAULT_ESTOP_ENDPOINT``
(``tcp://127.0.0.1:5560``, loopback: reachable from the robot only) and any number of operator
tools **connect a PUSH socket** (:class:`EstopSender`). To reach it from another machine, bind a
routable address with keys (``--estop-bind tcp://*:5560 --keys robot-keys``). PUSH/PULL queues a
message until it is delivered, so an e-stop sent while the connection is still forming is not
lost (a PUB/SUB message would be). For an operator station that already publishes,
``socket_type="sub"`` connects a SUB socket to the station's PUB endpoint instead (subscribed to
everything; mind the slow-joiner window; unauthenticated, so it latches only).

From the command line (an operator's terminal)::

    krabby-estop tcp://robot:5560 ESTOP "operator saw a fall" --keys alice-keys
    krabby-estop tcp://robot:5560 RESET --keys alice-keys
    krabby-estop tcp://robot:5560 START --keys alice-keys
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from typing import ClassVar, Protocol

import zmq

from hal.config import build_parser as build_parser_of
from hal.config import parse_cli, part, setting
from hal.config.sections import KeysSection
from hal.auth import (
    ROLE_OPERATOR,
    AuthError,
    ClientKeys,
    ServerKeys,
    acquire_authenticator,
    limit_inbound_bytes,
    release_authenticator,
    secure_client_socket,
    secure_server_socket,
    sender_key,
)
from hal.log_limit import RateLimitedLog

__all__ = [
    "build_parser",
    "EstopConfig",
    "EstopCommandSection",
    "DEFAULT_ESTOP_ENDPOINT",
    "MAX_MESSAGE_BYTES",
    "MAX_REASON_CHARS",
    "EstopMessageError",
    "EstopMessage",
    "encode_estop",
    "encode_reset",
    "encode_start",
    "parse_estop_message",
    "EstopListener",
    "EstopSender",
    "main",
]

log = logging.getLogger(__name__)

DEFAULT_ESTOP_ENDPOINT = "tcp://127.0.0.1:5560"
MAX_MESSAGE_BYTES = 256
MAX_REASON_CHARS = 200
_ESTOP = b"ESTOP"
_RESET = b"RESET"
_START = b"START"
_OPERATOR_KINDS = ("reset", "start")


class EstopMessageError(ValueError):
    """A frame on the e-stop socket does not follow the wire format (the message says how)."""


@dataclass(frozen=True, slots=True)
class EstopMessage:
    """A validated e-stop message: ``kind`` is ``"estop"``, ``"reset"`` or ``"start"``;
    ``operator`` tells whether it came from an operator (an operator key, or in-process)."""

    kind: str
    reason: str = ""
    operator: bool = False


class _EstopTarget(Protocol):
    def estop(self, reason: str = ..., now_ns: int | None = ...) -> None: ...

    def reset_estop(self, now_ns: int | None = ...) -> bool: ...

    def request_start(self, run_policy: bool = ...) -> bool: ...


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


def encode_start() -> bytes:
    """The frame that asks the robot to stand up and run the policy (the operator's start)."""
    return _START


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
    if frame == _START:
        return EstopMessage("start")
    if frame == _ESTOP:
        return EstopMessage("estop", "remote")
    if frame.startswith(_ESTOP + b" ") and len(frame) > len(_ESTOP) + 1:
        reason = frame[len(_ESTOP) + 1:].decode("ascii")
        if len(reason) <= MAX_REASON_CHARS:
            return EstopMessage("estop", reason)
    raise EstopMessageError(
        f"frame {frame[:40]!r} is not one of 'ESTOP', 'ESTOP <reason>' (reason 1–"
        f"{MAX_REASON_CHARS} chars), 'RESET', 'START'")


class EstopListener:
    """Receives e-stop messages without blocking; the server calls :meth:`apply` once per tick.

    Args:
        endpoint: ZMQ endpoint (bound for PULL, connected for SUB unless ``bind`` says otherwise).
        context: The ZMQ context (the server's, so inproc senders work); None creates one.
        socket_type: ``"pull"`` (default) or ``"sub"``.
        bind: Bind (True) or connect (False); None binds PULL and connects SUB.
        max_messages_per_poll: Upper bound on messages handled per call, so a flood cannot stall
            the tick (the rest wait for the next tick).
        keys: The robot's keys: a network PULL endpoint then admits policy and operator keys
            only (CURVE), and ``RESET``/``START`` are accepted from operator keys. None: anyone
            who reaches the endpoint may latch; nobody on the network may reset or start.

    Raises:
        ValueError: unknown ``socket_type``, or keys with a SUB socket.
        zmq.ZMQError: the endpoint cannot be bound/connected (e.g. the port is in use).
    """

    def __init__(self, endpoint: str = DEFAULT_ESTOP_ENDPOINT, context: zmq.Context | None = None,
                 socket_type: str = "pull", bind: bool | None = None,
                 max_messages_per_poll: int = 64, keys: ServerKeys | None = None) -> None:
        kinds = {"pull": zmq.PULL, "sub": zmq.SUB}
        if socket_type not in kinds:
            raise ValueError(f"socket_type {socket_type!r}: valid are {sorted(kinds)}")
        if keys is not None and socket_type != "pull":
            raise ValueError("keys need socket_type 'pull' (the robot is the CURVE server)")
        self.endpoint = endpoint
        self.received = 0
        self.rejected = 0
        self.refused = 0  # RESET/START from someone who is not an operator
        self._max = int(max_messages_per_poll)
        self._log = RateLimitedLog(log)
        self._keys = keys
        # In-process senders (tests, fault drills) are the server's own code.
        self._trusted = endpoint.startswith("inproc://")
        self._owns_context = context is None
        self._context = context if context is not None else zmq.Context()
        self._socket = self._context.socket(kinds[socket_type])
        self._socket.setsockopt(zmq.LINGER, 0)
        # A peer that sends an oversized frame is disconnected before it costs memory.
        limit_inbound_bytes(self._socket, MAX_MESSAGE_BYTES)
        self.authenticated = keys is not None and not self._trusted
        if self.authenticated:
            acquire_authenticator(self._context, keys)
            secure_server_socket(self._socket, keys, "estop")
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
                frames = self._socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            self.received += 1
            try:
                message = parse_estop_message([frame.bytes for frame in frames])
                if self._trusted or (self._keys is not None
                                     and self._keys.role_of(sender_key(frames[0])) == ROLE_OPERATOR):
                    message = EstopMessage(message.kind, message.reason, operator=True)
                messages.append(message)
            except EstopMessageError as exc:
                self.rejected += 1
                self._log.warning("rejected", "e-stop listener %s: rejected message (%d so far): %s",
                                  self.endpoint, self.rejected, exc)
        return messages

    def apply(self, target: _EstopTarget, now_ns: int | None = None) -> int:
        """Poll and apply in arrival order: ESTOP → ``target.estop``; from an operator, RESET →
        ``reset_estop`` and START → ``request_start``. RESET/START from anyone else are refused
        (counted in ``refused``, logged at a limited rate).

        Returns the number of messages applied.
        """
        if not self._socket.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            return 0
        applied = 0
        for message in self.poll():
            if message.kind == "estop":
                target.estop(f"remote: {message.reason}", now_ns)
            elif not message.operator:
                self.refused += 1
                self._log.warning("refused", "e-stop listener %s: %s refused (%d so far): only an "
                                  "operator key (or the server's terminal) may %s",
                                  self.endpoint, message.kind.upper(), self.refused, message.kind)
                continue
            elif message.kind == "reset":
                log.warning("e-stop listener %s: RESET received from an operator", self.endpoint)
                target.reset_estop(now_ns)
            else:
                log.warning("e-stop listener %s: START received from an operator", self.endpoint)
                target.request_start()
            applied += 1
        return applied

    def counts(self) -> dict[str, int]:
        """For the run report: messages received, rejected (malformed), refused (not operator)."""
        return {"received": self.received, "rejected": self.rejected, "refused": self.refused}

    def close(self) -> None:
        """Close the socket (and the context if this listener created it). Safe to call twice."""
        if not self._socket.closed:
            self._socket.close(linger=0)
            if self.authenticated:
                release_authenticator(self._context)
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
        keys: This sender's key pair and the robot's public key, for a listener with keys (an
            operator key may also RESET and START).
    """

    def __init__(self, endpoint: str, context: zmq.Context | None = None,
                 socket_type: str = "push", send_timeout_ms: int = 1000,
                 linger_ms: int = 0, keys: ClientKeys | None = None) -> None:
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
        limit_inbound_bytes(self._socket, 0)  # it receives nothing but the handshake
        if keys is not None and not endpoint.startswith("inproc://"):
            if socket_type != "push":
                raise ValueError("keys need socket_type 'push' (the robot is the CURVE server)")
            secure_client_socket(self._socket, keys)
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
            raise TimeoutError(f"e-stop to {self.endpoint}: no listener took the message (is the "
                               "server running there, and does it allow this key?)") from None

    def estop(self, reason: str = "") -> None:
        """Send ``ESTOP [reason]``."""
        self.send_raw(encode_estop(reason))

    def reset(self) -> None:
        """Send ``RESET``."""
        self.send_raw(encode_reset())

    def start(self) -> None:
        """Send ``START``."""
        self.send_raw(encode_start())

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


@dataclass(frozen=True)
class EstopCommandSection:
    """What krabby-estop sends, and where."""

    section: ClassVar[str] = "estop"

    endpoint: str = setting(positional=True, metavar="ENDPOINT",
                            help="the robot's e-stop endpoint, e.g. tcp://robot:5560")
    command: str = setting(positional=True, choices=("ESTOP", "RESET", "START"),
                           help="what to send")
    reason: str = setting("", positional=True, nargs="?", metavar="REASON",
                          help="why (ESTOP only)")


@dataclass(frozen=True)
class EstopConfig:
    """krabby-estop's run configuration."""

    estop: EstopCommandSection = part(EstopCommandSection)
    # No $KRABBY_KEYS: a shell's key directory must not turn the e-stop to a keyless robot (the
    # default loopback endpoint) into a CURVE connection it never answers; keys as given only.
    keys: KeysSection = part(KeysSection, only=("keys",), env=False)


def build_parser() -> argparse.ArgumentParser:
    return build_parser_of(EstopConfig, prog="krabby-estop",
                           description="Send an e-stop, a reset or a start to a krabby HAL server. "
                                       "RESET and START need an operator key (krabby-keys add "
                                       "ROBOT_DIR NAME --role operator).")


def main(argv: list[str] | None = None) -> int:
    """``krabby-estop ENDPOINT {ESTOP,RESET,START} [REASON] [--keys DIR]``."""
    parser = build_parser()
    config = parse_cli(EstopConfig, argv, parser)
    order = config.estop
    if order.command != "ESTOP" and order.reason:
        parser.error(f"{order.command} takes no reason")
    try:
        keys = ClientKeys.load(config.keys.keys) if config.keys.keys else None
        # Linger so the close waits (up to 2 s) for the frame to leave the machine.
        with EstopSender(order.endpoint, send_timeout_ms=2000, linger_ms=2000, keys=keys) as sender:
            if order.command == "ESTOP":
                sender.estop(order.reason)
            elif order.command == "RESET":
                sender.reset()
            else:
                sender.start()
    except (EstopMessageError, TimeoutError, zmq.ZMQError, AuthError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"sent {order.command} to {order.endpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Who may talk to the robot: CURVE keys, the allow-list, and authenticated sockets.

Every network (non-``inproc``) endpoint of the HAL uses ZMQ CURVE: the server proves it holds the
robot's secret key, each client proves it holds a key on the robot's allow-list, and everything
after the handshake is encrypted. A ZAP handler (:class:`zmq.auth.ThreadAuthenticator`, one per
ZMQ context) checks every client key against the allow-list of the stream it connects to.

Key directories (made by ``krabby-keys``, :mod:`hal.keys_cli`)::

    robot-keys/                       on the robot (the server side)
      server.key                      the robot's public key (give it to every client)
      server.key_secret               the robot's secret key (never leaves the robot)
      authorized/policy/NAME.key      public keys of policy clients (observations, commands, e-stop)
      authorized/operator/NAME.key    public keys of operators (observations, e-stop, RESET, START,
                                      the operator command endpoint)

    laptop-keys/                      on a client machine
      client.key, client.key_secret   this client's key pair
      server.key                      the robot's public key

Roles and streams: a stream names the endpoint (``observations``, ``commands``, ``estop``,
``operator``) and :data:`STREAM_ROLES` says which roles may connect to it. Received messages carry
the sender's public key (ZMQ's ``User-Id`` frame property, :func:`sender_key`); the server maps it
to a role with :meth:`ServerKeys.role_of`, so it can tell the operator from a policy client on a
shared socket (the e-stop's ``RESET``) and one policy client from another.

Typical use, server side::

    keys = ServerKeys.load("robot-keys")
    auth = acquire_authenticator(context, keys)          # once per context, before binding
    sock = context.socket(zmq.PULL)
    secure_server_socket(sock, keys, "commands")
    sock.bind("tcp://*:5556")
    ...
    release_authenticator(context)

Client side::

    keys = ClientKeys.load("laptop-keys")
    sock = context.socket(zmq.PUSH)
    secure_client_socket(sock, keys)
    sock.connect("tcp://robot:5556")
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

__all__ = [
    "ROLES",
    "STREAM_ROLES",
    "AuthError",
    "ServerKeys",
    "ClientKeys",
    "acquire_authenticator",
    "release_authenticator",
    "denied_count",
    "secure_server_socket",
    "secure_client_socket",
    "sender_key",
    "is_network",
    "is_loopback",
    "check_bind_security",
    "limit_inbound_bytes",
]

log = logging.getLogger(__name__)

ROLE_POLICY = "policy"
ROLE_OPERATOR = "operator"
ROLES = (ROLE_POLICY, ROLE_OPERATOR)

STREAM_ROLES: dict[str, frozenset[str]] = {
    "observations": frozenset({ROLE_POLICY, ROLE_OPERATOR}),
    "commands": frozenset({ROLE_POLICY}),
    "estop": frozenset({ROLE_POLICY, ROLE_OPERATOR}),
    "operator": frozenset({ROLE_OPERATOR}),
}
"""Which roles may connect to each stream (anyone else fails the handshake)."""

SERVER_PUBLIC = "server.key"
SERVER_SECRET = "server.key_secret"
CLIENT_PUBLIC = "client.key"
CLIENT_SECRET = "client.key_secret"
AUTHORIZED = "authorized"


class AuthError(ValueError):
    """Keys missing, unreadable or inconsistent, or a network bind without keys (the message
    says which file or flag)."""



def _read_pair(path: Path, what: str) -> tuple[bytes, bytes | None]:
    if not path.is_file():
        raise AuthError(f"{what}: {path} does not exist (make keys with krabby-keys)")
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise AuthError(f"{what}: {path} is not a ZMQ certificate: {exc}") from None
    if public is None or len(public) != 40:
        raise AuthError(f"{what}: {path} holds no public key")
    return public, secret


@dataclass(frozen=True)
class ServerKeys:
    """The robot's key pair and its allow-list (public z85 key → (role, name))."""

    directory: Path
    public: bytes
    secret: bytes
    authorized: dict[bytes, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> ServerKeys:
        """Read ``server.key_secret`` and ``authorized/<role>/*.key``.

        Raises:
            AuthError: the directory, the secret key or an allowed key is missing or unreadable.
        """
        root = Path(directory)
        if not root.is_dir():
            raise AuthError(f"key directory {root} does not exist (krabby-keys init {root})")
        public, secret = _read_pair(root / SERVER_SECRET, "the robot's secret key")
        if secret is None:
            raise AuthError(f"{root / SERVER_SECRET} holds no secret key")
        authorized: dict[bytes, tuple[str, str]] = {}
        for role in ROLES:
            folder = root / AUTHORIZED / role
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob("*.key")):
                key, _ = _read_pair(path, f"allowed {role} key")
                if key in authorized and authorized[key][0] != role:
                    raise AuthError(f"key {path} is allowed both as {authorized[key][0]} and "
                                    f"{role}: remove one")
                authorized[key] = (role, path.stem)
        return cls(root, public, secret, authorized)

    def role_of(self, key: bytes | str | None) -> str | None:
        """The role of a sender's public key (z85), or None when it is not on the allow-list."""
        if key is None:
            return None
        if isinstance(key, str):
            key = key.encode("ascii")
        entry = self.authorized.get(key)
        return entry[0] if entry else None

    def name_of(self, key: bytes | str | None) -> str | None:
        """The allow-list name of a sender's public key, or None."""
        if isinstance(key, str):
            key = key.encode("ascii")
        entry = self.authorized.get(key) if key else None
        return entry[1] if entry else None

    def allows(self, stream: str, key: bytes) -> bool:
        """Whether a client key (z85) may connect to ``stream``."""
        return self.role_of(key) in _roles(stream)


@dataclass(frozen=True)
class ClientKeys:
    """A client's key pair and the robot's public key."""

    directory: Path
    public: bytes
    secret: bytes
    server_public: bytes

    @classmethod
    def load(cls, directory: str | os.PathLike) -> ClientKeys:
        """Read ``client.key_secret`` and ``server.key``.

        Raises:
            AuthError: a file is missing or unreadable.
        """
        root = Path(directory)
        if not root.is_dir():
            raise AuthError(f"key directory {root} does not exist (make one with krabby-keys add)")
        public, secret = _read_pair(root / CLIENT_SECRET, "this client's secret key")
        if secret is None:
            raise AuthError(f"{root / CLIENT_SECRET} holds no secret key")
        server_public, _ = _read_pair(root / SERVER_PUBLIC, "the robot's public key")
        return cls(root, public, secret, server_public)


def _roles(stream: str) -> frozenset[str]:
    try:
        return STREAM_ROLES[stream]
    except KeyError:
        raise ValueError(f"stream {stream!r}: valid are {sorted(STREAM_ROLES)}") from None


def _domain(keys: ServerKeys, stream: str) -> str:
    # One ZAP domain per (key set, stream): several servers with different keys may share a
    # context (tests), and each stream has its own allow-list.
    return f"krabby/{stream}/{keys.public.decode('ascii')}"


class _AllowList:
    """ZAP credentials provider for one domain (called on the authenticator's thread)."""

    def __init__(self, keys: ServerKeys, stream: str) -> None:
        self.keys, self.stream = keys, stream
        self.denied = 0

    def callback(self, domain: str, key: bytes) -> bool:
        allowed = self.keys.allows(self.stream, key)
        if not allowed:
            self.denied += 1
        return allowed


class _Shared:
    def __init__(self, authenticator: ThreadAuthenticator) -> None:
        self.authenticator = authenticator
        self.users = 0
        self.providers: dict[str, _AllowList] = {}


_registry: dict[int, _Shared] = {}
_registry_lock = threading.Lock()


def acquire_authenticator(context: zmq.Context, keys: ServerKeys) -> ThreadAuthenticator:
    """Start (or share) the context's ZAP handler and register ``keys``' allow-lists.

    A context can have only one ZAP handler, so every authenticated server of a context shares
    it; call :func:`release_authenticator` once per acquire (the last one stops it). Call it
    before binding a socket configured with :func:`secure_server_socket`.
    """
    with _registry_lock:
        shared = _registry.get(id(context))
        if shared is None:
            authenticator = ThreadAuthenticator(context, log=log.getChild("zap"))
            authenticator.start()
            shared = _registry[id(context)] = _Shared(authenticator)
        shared.users += 1
        for stream in STREAM_ROLES:
            domain = _domain(keys, stream)
            if domain not in shared.providers:
                provider = shared.providers[domain] = _AllowList(keys, stream)
                shared.authenticator.configure_curve_callback(domain, provider)
        return shared.authenticator


def release_authenticator(context: zmq.Context) -> None:
    """Undo one :func:`acquire_authenticator`; the last release stops the handler."""
    with _registry_lock:
        shared = _registry.get(id(context))
        if shared is None:
            return
        shared.users -= 1
        if shared.users <= 0:
            del _registry[id(context)]
            shared.authenticator.stop()


def denied_count(context: zmq.Context) -> int:
    """Handshakes the context's ZAP handler refused (unknown key or wrong role)."""
    with _registry_lock:
        shared = _registry.get(id(context))
        return sum(p.denied for p in shared.providers.values()) if shared else 0


def secure_server_socket(socket: zmq.Socket, keys: ServerKeys, stream: str) -> None:
    """Make ``socket`` a CURVE server admitting only ``stream``'s roles. Before ``bind``."""
    _roles(stream)
    socket.setsockopt(zmq.CURVE_SERVER, 1)
    socket.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
    socket.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)
    socket.setsockopt_string(zmq.ZAP_DOMAIN, _domain(keys, stream))


def secure_client_socket(socket: zmq.Socket, keys: ClientKeys) -> None:
    """Make ``socket`` a CURVE client of the robot in ``keys``. Before ``connect``."""
    socket.setsockopt(zmq.CURVE_SERVERKEY, keys.server_public)
    socket.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
    socket.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)


def sender_key(frame: zmq.Frame) -> bytes | None:
    """The authenticated sender's public key (z85) of a frame received with ``copy=False``, or
    None for an unauthenticated one (inproc, ``--insecure``)."""
    try:
        user = frame.get("User-Id")
    except zmq.ZMQError:
        return None
    return user.encode("ascii") if user else None


def is_network(endpoint: str) -> bool:
    """True for endpoints other processes can reach (everything but ``inproc://``)."""
    return not endpoint.startswith("inproc://")


def is_loopback(endpoint: str) -> bool:
    """True for a tcp endpoint bound to the loopback interface only."""
    if not endpoint.startswith("tcp://"):
        return False
    host = urlsplit(endpoint).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def check_bind_security(endpoint: str, keys: ServerKeys | None, insecure: bool,
                        flag: str, loopback_ok: bool = False) -> bool:
    """Decide whether ``endpoint`` may be bound; returns True when it must use CURVE.

    Args:
        endpoint: The bind address.
        keys: The robot's keys, or None.
        insecure: The operator's explicit ``--insecure``.
        flag: The command-line flag that sets the endpoint (for the message).
        loopback_ok: A loopback tcp endpoint may go unauthenticated (the local e-stop, which
            only latches; its ``RESET`` and ``START`` are refused without an operator key).

    Raises:
        AuthError: a network endpoint, no keys, and no ``--insecure``.
    """
    if not is_network(endpoint):
        return False
    if keys is not None:
        return True
    if insecure or (loopback_ok and is_loopback(endpoint)):
        return False
    raise AuthError(
        f"{flag} {endpoint}: a network endpoint needs keys (--keys DIR, made with "
        f"'krabby-keys init DIR'), or --insecure to run it unauthenticated on a trusted network")


# The CURVE handshake's INITIATE command (about 300 bytes with its metadata) and each encrypted
# frame's box overhead (33 bytes) pass through the same size check as the messages themselves.
_HANDSHAKE_FLOOR_BYTES = 1024
_CURVE_OVERHEAD_BYTES = 64


def limit_inbound_bytes(socket: zmq.Socket, max_frame_bytes: int) -> int:
    """Set ``ZMQ_MAXMSGSIZE`` from the largest valid frame of the socket's protocol.

    A peer that sends a bigger frame is disconnected by libzmq before the frame is buffered, so
    it costs neither memory nor loop time. Returns the limit set (bytes). Before bind/connect.
    """
    limit = max(int(max_frame_bytes) + _CURVE_OVERHEAD_BYTES, _HANDSHAKE_FLOOR_BYTES)
    socket.setsockopt(zmq.MAXMSGSIZE, limit)
    return limit

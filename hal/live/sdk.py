"""foxglove-sdk, imported in one place, and the live server's address and start-up.

The server is read-only: it is started with no capability (no client publishing, services,
parameters, connection graph or playback control), so the SDK refuses every message a client
sends that would reach our process beyond subscribe/unsubscribe. It binds loopback unless the
operator names another host, which logs a warning that the stream is not authenticated.
"""

from __future__ import annotations

import ipaddress
import logging
from types import ModuleType
from typing import Any

from hal.optional import require

__all__ = ["foxglove_sdk", "parse_live_address", "is_loopback_host", "start_live_server",
           "DEFAULT_LIVE_HOST", "DEFAULT_LIVE_PORT"]

log = logging.getLogger(__name__)

DEFAULT_LIVE_HOST = "127.0.0.1"
DEFAULT_LIVE_PORT = 8765
"""Foxglove's usual WebSocket port."""
_SDK_LOGS_OFF = False


def foxglove_sdk() -> ModuleType:
    """The ``foxglove`` package (foxglove-sdk, a krabby dependency), or
    :class:`~hal.optional.MissingDependencyError` naming its install command."""
    foxglove = require("foxglove", "the live view (--live) and the logs' Foxglove messages")
    global _SDK_LOGS_OFF
    if not _SDK_LOGS_OFF:
        # The SDK forwards its Rust logs to Python logging, one GIL acquisition and one line per
        # event — and a client chooses the events (a malformed message, a reset connection). Off,
        # a client cannot flood the robot's log or take the loop's GIL with it; our own lines
        # and the live report say what the stream did. (The SDK logs nothing at CRITICAL; the
        # level is filtered on its side, before Python.)
        foxglove.set_log_level(logging.CRITICAL)
        _SDK_LOGS_OFF = True
    return foxglove


def parse_live_address(text: str) -> tuple[str, int]:
    """``[HOST:]PORT`` → (host, port); host defaults to loopback, port 0 picks a free one.

    Raises:
        ValueError: not a port in 0–65535, or an empty host (the message names the value).
    """
    raw = str(text).strip()
    host, sep, port_text = raw.rpartition(":")
    if not sep:
        host = DEFAULT_LIVE_HOST
    elif host.startswith("[") and host.endswith("]"):  # [::1]:8765
        host = host[1:-1]
    if sep and not host:
        raise ValueError(f"--live {text!r}: empty host; use PORT (loopback) or HOST:PORT, "
                         f"e.g. {DEFAULT_LIVE_PORT} or 127.0.0.1:{DEFAULT_LIVE_PORT}")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"--live {text!r}: port {port_text!r} is not a number; use PORT or "
                         f"HOST:PORT with PORT in 0-65535 (0: any free port)") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"--live {text!r}: port {port} is outside 0-65535; use PORT or HOST:PORT "
                         f"(0: any free port)")
    return host, port


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def start_live_server(host: str, port: int, context: Any, name: str = "krabby") -> Any:
    """Start foxglove-sdk's WebSocket server on ``context``, read-only.

    Returns:
        The SDK's ``WebSocketServer`` (``.port`` is the bound port; ``.stop()``).
    Raises:
        OSError: the address cannot be bound (the message names it).
    """
    foxglove = foxglove_sdk()
    if not is_loopback_host(host):
        log.warning("--live %s:%d: the live stream is NOT authenticated or encrypted; anyone who "
                    "reaches this address sees the robot's state. Prefer the loopback default and "
                    "an SSH tunnel (ssh -L %d:127.0.0.1:%d robot)", host, port, port or 8765,
                    port or 8765)
    try:
        return foxglove.start_server(name=name, host=host, port=port, capabilities=[],
                                     services=None, supported_encodings=None, context=context,
                                     message_backlog_size=64)
    except Exception as exc:  # the SDK raises its own error type for a bind failure
        raise OSError(f"--live {host}:{port}: cannot start the live server ({exc})") from None

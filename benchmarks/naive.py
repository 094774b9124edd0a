"""The naive messaging a user writes first, shared by the transport and end-to-end baselines:
a dict of arrays pickled or JSON-encoded, one message per observation, PUB/SUB out, PUSH/PULL back.

Only the benchmarks use this; krabby itself never pickles.
"""

from __future__ import annotations

import json
import pickle  # noqa: S403 - the baseline being measured
from typing import Any

import numpy as np
import zmq

__all__ = ["NaiveCodec", "bind_server_sockets", "connect_client_sockets"]


class NaiveCodec:
    """``encode(dict) -> bytes`` / ``decode(bytes) -> dict`` as pickle or JSON (arrays as lists)."""

    def __init__(self, encoding: str) -> None:
        if encoding not in ("pickle", "json"):
            raise ValueError(f"encoding {encoding!r}: use 'pickle' or 'json'")
        self.encoding = encoding

    def encode(self, message: dict[str, Any]) -> bytes:
        if self.encoding == "pickle":
            return pickle.dumps(message)
        return json.dumps({k: v.tolist() if isinstance(v, np.ndarray) else v
                           for k, v in message.items()}).encode()

    def decode(self, data: bytes) -> dict[str, Any]:
        return pickle.loads(data) if self.encoding == "pickle" else json.loads(data)  # noqa: S301


def bind_server_sockets(ctx: zmq.Context, obs_ep: str, cmd_ep: str,
                        reply_timeout_ms: int) -> tuple[zmq.Socket, zmq.Socket]:
    """The HAL side: a PUB for observations and a PULL (with a receive timeout) for replies."""
    pub, pull = ctx.socket(zmq.PUB), ctx.socket(zmq.PULL)
    for s in (pub, pull):
        s.setsockopt(zmq.LINGER, 0)
    pull.setsockopt(zmq.RCVTIMEO, reply_timeout_ms)
    pub.bind(obs_ep)
    pull.bind(cmd_ep)
    return pub, pull


def connect_client_sockets(ctx: zmq.Context, obs_ep: str, cmd_ep: str,
                           receive_timeout_ms: int) -> tuple[zmq.Socket, zmq.Socket]:
    """The policy side: a SUB for observations (with a receive timeout) and a PUSH for replies."""
    sub, push = ctx.socket(zmq.SUB), ctx.socket(zmq.PUSH)
    for s in (sub, push):
        s.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.RCVTIMEO, receive_timeout_ms)
    sub.connect(obs_ep)
    push.connect(cmd_ep)
    return sub, push

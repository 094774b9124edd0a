"""Shared fixtures. Every ZMQ socket in tests uses linger=0 and a receive timeout."""

from __future__ import annotations

import itertools
import os
import socket

import pytest
import zmq

_inproc_counter = itertools.count()


@pytest.fixture
def zmq_context():
    """A fresh context per test, terminated at the end (sockets must all be closed by then)."""
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def endpoints(request):
    """(observation, command) endpoint pairs: inproc with unique names, or tcp on free ports."""
    kind = getattr(request, "param", "inproc")
    if kind == "inproc":
        n = next(_inproc_counter)
        return f"inproc://test_obs_{os.getpid()}_{n}", f"inproc://test_cmd_{os.getpid()}_{n}"
    return f"tcp://127.0.0.1:{free_tcp_port()}", f"tcp://127.0.0.1:{free_tcp_port()}"

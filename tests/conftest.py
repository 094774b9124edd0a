"""Shared fixtures. Every ZMQ socket in tests uses linger=0 and a receive timeout.

Sockets of a test bind to ``tcp://127.0.0.1:*`` (or a unique inproc name) and the test reads the
endpoint back from the bound socket (``last_endpoint``): no guessed free port that another
process could take first.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import threading
import weakref

import pytest
import zmq

_inproc_counter = itertools.count()


def pytest_collection_modifyitems(config, items):
    """Skip tests marked ``torch`` where torch is not installed (the Python 3.10 run has the
    robot's extras only: its torch wheel is for 3.11), naming the extra that brings it."""
    if importlib.util.find_spec("torch") is not None:
        return
    skip = pytest.mark.skip(reason="needs torch: pip install 'krabby[export]' (not in the robot's extras)")
    for item in items:
        if "torch" in item.keywords:
            item.add_marker(skip)

#: A tcp endpoint the operating system picks the port of; read the real one back after binding.
TCP_ANY_PORT = "tcp://127.0.0.1:*"
#: How long a context may take to terminate once the test closed its sockets.
TERM_TIMEOUT_S = 5.0


@pytest.fixture
def zmq_context():
    """A fresh context per test that fails the test if the test leaves a socket open.

    At teardown every socket made through it must be closed; if one is not, the test fails
    naming it (the socket is then closed so the run goes on). Terminating the context must also
    finish within ``TERM_TIMEOUT_S``, or the test fails instead of hanging the suite.
    """
    ctx = zmq.Context()
    opened: list[weakref.ref] = []
    make = ctx.socket

    def tracked_socket(*args, **kwargs):
        sock = make(*args, **kwargs)
        opened.append(weakref.ref(sock))
        return sock

    ctx.socket = tracked_socket
    yield ctx
    leaked = [s for s in (ref() for ref in opened) if s is not None and not s.closed]
    names = [f"{s.type.name} socket" + (f" on {s.last_endpoint.decode()}" if s.last_endpoint
                                         else "") for s in leaked]
    for sock in leaked:
        sock.close(linger=0)
    terminator = threading.Thread(target=ctx.term, name="zmq-context-term", daemon=True)
    terminator.start()
    terminator.join(TERM_TIMEOUT_S)
    if leaked:
        pytest.fail(f"the test left {len(leaked)} ZMQ socket(s) open: {', '.join(names)}")
    if terminator.is_alive():
        pytest.fail(f"the test's ZMQ context did not terminate within {TERM_TIMEOUT_S:g} s "
                    "(a socket with linger, or one opened around the fixture)")


@pytest.fixture
def endpoints(request):
    """(observation, command) endpoints to bind: unique inproc names, or tcp on any free port.

    For tcp both are ``tcp://127.0.0.1:*``: bind, then connect peers to the socket's
    ``last_endpoint`` (the transport classes and the HAL server expose it).
    """
    kind = getattr(request, "param", "inproc")
    if kind == "inproc":
        n = next(_inproc_counter)
        return f"inproc://test_obs_{os.getpid()}_{n}", f"inproc://test_cmd_{os.getpid()}_{n}"
    if kind != "tcp":
        raise ValueError(f"endpoints: {kind!r} is not 'inproc' or 'tcp'")
    return TCP_ANY_PORT, TCP_ANY_PORT


@pytest.fixture(scope="session")
def curve_keys(tmp_path_factory):
    """A robot key directory allowing policy clients 'pilot' and 'copilot' and operator 'alice',
    plus 'mallory': a key pair made for another robot, holding *this* robot's public key.
    Returns {'robot': ServerKeys, 'robot_dir': Path, name: ClientKeys, name + '_dir': Path}."""
    from hal.auth import ClientKeys, ServerKeys
    from hal.keys_cli import add_client, init_keys

    root = tmp_path_factory.mktemp("keys")
    init_keys(root / "robot")
    for name, role in (("pilot", "policy"), ("copilot", "policy"), ("alice", "operator")):
        add_client(root / "robot", name, role, root / name)
    init_keys(root / "other")
    add_client(root / "other", "mallory", "policy", root / "mallory")
    (root / "mallory" / "server.key").write_bytes((root / "robot" / "server.key").read_bytes())
    keys = {"robot": ServerKeys.load(root / "robot"), "robot_dir": root / "robot"}
    for name in ("pilot", "copilot", "alice", "mallory"):
        keys[name] = ClientKeys.load(root / name)
        keys[name + "_dir"] = root / name
    return keys

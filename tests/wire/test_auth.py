"""hal.auth and krabby-keys over real CURVE sockets on 127.0.0.1."""

from __future__ import annotations

import os
import stat

import pytest
import zmq

from hal.auth import (
    AuthError,
    ClientKeys,
    ServerKeys,
    acquire_authenticator,
    check_bind_security,
    denied_count,
    release_authenticator,
    secure_client_socket,
    secure_server_socket,
    sender_key,
)
from hal.keys_cli import add_client, init_keys, list_keys, main, revoke_client


@pytest.fixture
def keys(tmp_path):
    robot = tmp_path / "robot"
    init_keys(robot)
    add_client(robot, "laptop", "policy", tmp_path / "laptop")
    add_client(robot, "alice", "operator", tmp_path / "alice")
    # A pair made for another robot: a stranger who even knows this robot's public key.
    other = tmp_path / "other"
    init_keys(other)
    add_client(other, "mallory", "policy", tmp_path / "mallory")
    (tmp_path / "mallory" / "server.key").write_bytes((robot / "server.key").read_bytes())
    return {"robot": ServerKeys.load(robot), "laptop": ClientKeys.load(tmp_path / "laptop"),
            "alice": ClientKeys.load(tmp_path / "alice"),
            "mallory": ClientKeys.load(tmp_path / "mallory")}


@pytest.fixture
def context():
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


def _pull(context, keys, stream):
    sock = context.socket(zmq.PULL)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 1500)
    secure_server_socket(sock, keys, stream)
    sock.bind("tcp://127.0.0.1:*")
    return sock, sock.getsockopt_string(zmq.LAST_ENDPOINT)


def _push(context, keys, endpoint):
    sock = context.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDTIMEO, 0)
    if keys is not None:
        secure_client_socket(sock, keys)
    sock.connect(endpoint)
    return sock


def _received_from(server, client, payload=b"x"):
    """The sender key of what the server got, or None when nothing arrived in 1.5 s."""
    try:
        client.send(payload, flags=zmq.NOBLOCK)
    except zmq.Again:
        pass  # queued on no connection; a failed handshake means nothing arrives
    try:
        frame = server.recv(copy=False)
    except zmq.Again:
        return None
    return sender_key(frame) or b"anonymous"


def test_allowed_key_gets_through_with_its_identity(keys, context):
    acquire_authenticator(context, keys["robot"])
    try:
        server, endpoint = _pull(context, keys["robot"], "commands")
        client = _push(context, keys["laptop"], endpoint)
        key = _received_from(server, client)
        assert key == keys["laptop"].public
        assert keys["robot"].role_of(key) == "policy"
        assert keys["robot"].name_of(key) == "laptop"
        for sock in (client, server):
            sock.close(linger=0)
    finally:
        release_authenticator(context)


@pytest.mark.parametrize("who", ["mallory", "plain", "alice"])
def test_strangers_plain_peers_and_wrong_roles_are_refused(keys, context, who):
    """An unknown key, a peer without CURVE, and an operator on the policy-only command stream
    all fail the handshake: nothing they send arrives."""
    acquire_authenticator(context, keys["robot"])
    try:
        server, endpoint = _pull(context, keys["robot"], "commands")
        client = _push(context, None if who == "plain" else keys[who], endpoint)
        assert _received_from(server, client) is None
        if who != "plain":  # a plain peer fails before ZAP is asked
            assert denied_count(context) >= 1
        for sock in (client, server):
            sock.close(linger=0)
    finally:
        release_authenticator(context)


def test_operator_stream_admits_operators_only(keys, context):
    acquire_authenticator(context, keys["robot"])
    try:
        server, endpoint = _pull(context, keys["robot"], "operator")
        policy = _push(context, keys["laptop"], endpoint)
        assert _received_from(server, policy) is None
        operator = _push(context, keys["alice"], endpoint)
        assert _received_from(server, operator) == keys["alice"].public
        for sock in (policy, operator, server):
            sock.close(linger=0)
    finally:
        release_authenticator(context)


def test_bind_policy():
    assert check_bind_security("inproc://x", None, False, "--x") is False
    with pytest.raises(AuthError, match="--command_bind tcp://\\*:5556.*--keys.*--insecure"):
        check_bind_security("tcp://*:5556", None, False, "--command_bind")
    assert check_bind_security("tcp://*:5556", None, True, "--command_bind") is False
    assert check_bind_security("tcp://127.0.0.1:5560", None, False, "--e", loopback_ok=True) is False
    with pytest.raises(AuthError):
        check_bind_security("tcp://*:5560", None, False, "--estop_bind", loopback_ok=True)
    with pytest.raises(AuthError):
        check_bind_security("ipc:///tmp/x", None, False, "--x")


def test_keys_cli_files_and_errors(tmp_path, capsys):
    robot = tmp_path / "robot"
    assert main(["init", str(robot)]) == 0
    secret = robot / "server.key_secret"
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    assert main(["init", str(robot)]) == 2  # never overwrites the robot's key
    assert "exists" in capsys.readouterr().err
    assert main(["add", str(robot), "bot", "--role", "policy", "--out", str(tmp_path / "bot")]) == 0
    assert main(["add", str(robot), "bot", "--role", "operator", "--out", str(tmp_path / "b2")]) == 2
    assert "already allowed" in capsys.readouterr().err
    assert main(["add", str(robot), "../x", "--role", "policy", "--out", str(tmp_path / "x")]) == 2
    lines = list_keys(robot)
    assert any("policy" in line and "bot" in line for line in lines)
    client = ClientKeys.load(tmp_path / "bot")
    assert client.server_public == ServerKeys.load(robot).public
    revoke_client(robot, "bot")
    assert ServerKeys.load(robot).role_of(client.public) is None
    with pytest.raises(AuthError, match="does not exist"):
        ServerKeys.load(tmp_path / "nowhere")

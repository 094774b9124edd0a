"""Network e-stop over real ZMQ sockets (tcp and inproc): wire format, latch, reset, rejection."""

from __future__ import annotations

import time

import pytest
import zmq

from hal.safety import (
    EstopListener,
    EstopMessage,
    EstopMessageError,
    EstopSender,
    encode_estop,
    encode_reset,
    parse_estop_message,
)
from hal.safety.estop import MAX_MESSAGE_BYTES, main

from .rig import Rig

WAIT_S = 5.0  # generous upper bound for delivery on a loaded machine; never a timing assertion


@pytest.fixture
def context():
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


def wait_for(listener, target, count: int = 1) -> int:
    """Poll the listener like the server does (non-blocking, once per 'tick') until ``count``
    messages were applied, or fail after WAIT_S."""
    applied = 0
    deadline = time.monotonic() + WAIT_S
    while applied < count:
        applied += listener.apply(target)
        if time.monotonic() > deadline:
            raise AssertionError(f"only {applied} of {count} e-stop messages arrived")
        time.sleep(0.002)
    return applied


# ----------------------------------------------------------------------------------- wire format

@pytest.mark.parametrize("frame,expected", [
    (b"ESTOP", EstopMessage("estop", "remote")),
    (b"ESTOP operator saw a fall", EstopMessage("estop", "operator saw a fall")),
    (b"RESET", EstopMessage("reset")),
    (b"ESTOP " + b"x" * 200, EstopMessage("estop", "x" * 200)),
])
def test_valid_frames(frame, expected):
    assert parse_estop_message([frame]) == expected


@pytest.mark.parametrize("frames,match", [
    ([b"ESTOP", b"extra"], "expected 1 frame, got 2"),
    ([], "expected 1 frame, got 0"),
    ([b"estop"], "is not one of"),
    ([b"STOP"], "is not one of"),
    ([b"ESTOP "], "is not one of"),
    ([b"ESTOPx"], "is not one of"),
    ([b"RESET now"], "is not one of"),
    ([b"ESTOP " + b"x" * 201], "is not one of"),
    ([b"ESTOP \xc3\xa9"], "not printable ASCII"),
    ([b"ESTOP a\nb"], "not printable ASCII"),
    ([b"\x80\x04\x95"], "not printable ASCII"),  # a pickle header
    ([b"E" * (MAX_MESSAGE_BYTES + 1)], f"> {MAX_MESSAGE_BYTES}"),
])
def test_invalid_frames_are_rejected_with_a_reason(frames, match):
    with pytest.raises(EstopMessageError, match=match):
        parse_estop_message(frames)


def test_encoders_round_trip_and_validate():
    assert parse_estop_message([encode_estop("drill 3")]) == EstopMessage("estop", "drill 3")
    assert parse_estop_message([encode_estop()]) == EstopMessage("estop", "remote")
    assert parse_estop_message([encode_reset()]) == EstopMessage("reset")
    with pytest.raises(EstopMessageError, match="printable ASCII"):
        encode_estop("bad\nreason")
    with pytest.raises(EstopMessageError, match="1–200"):
        encode_estop("y" * 201)


# ----------------------------------------------------------------------------------- sockets

def test_tcp_estop_latches_layer_and_only_an_operator_key_clears_it(context, curve_keys):
    rig = Rig()
    rig.to_policy()
    with EstopListener("tcp://127.0.0.1:*", context, keys=curve_keys["robot"]) as listener, \
            EstopSender(listener.last_endpoint, context, keys=curve_keys["pilot"]) as policy, \
            EstopSender(listener.last_endpoint, context, keys=curve_keys["alice"]) as operator:
        assert listener.apply(rig.layer) == 0  # nothing waiting: returns at once
        policy.estop("policy client saw a fall")  # anyone allowed may stop
        wait_for(listener, rig.layer)
        assert rig.layer.mode == "estop"
        assert rig.layer.estop_reason == "remote: policy client saw a fall"
        rig.tick(targets=rig.default)
        assert rig.layer.mode == "estop"
        assert not rig.layer.request_start()
        policy.reset()  # a policy client may not reset...
        policy.start()  # ... nor start
        policy.estop("marker")  # one ordered pipe: once this arrives, the two before it did
        wait_for(listener, rig.layer)
        assert rig.layer.mode == "estop" and listener.refused == 2
        operator.reset()
        wait_for(listener, rig.layer)
        assert rig.layer.mode == "idle"
        operator.start()
        wait_for(listener, rig.layer)
        assert rig.layer.run_requested
        assert listener.counts() == {"received": 6, "rejected": 0, "refused": 2}
    reasons = [e["reason"] for e in rig.layer.events()[-2:]]
    assert reasons == ["estop", "estop_reset"]


@pytest.mark.parametrize("who", ["none", "mallory"])
def test_unauthenticated_peer_cannot_estop_or_reset(context, curve_keys, who):
    rig = Rig()
    rig.to_policy()
    keys = None if who == "none" else curve_keys[who]
    with EstopListener("tcp://127.0.0.1:*", context, keys=curve_keys["robot"]) as listener, \
            EstopSender(listener.last_endpoint, context, keys=keys,
                        send_timeout_ms=300) as stranger:
        with pytest.raises(TimeoutError):  # the handshake fails: no connection takes it
            stranger.estop("stranger")
        time.sleep(0.3)
        assert listener.apply(rig.layer) == 0 and listener.received == 0
        assert rig.layer.mode == "policy"


def test_keyless_listener_latches_but_refuses_reset_and_start(context):
    """The default loopback endpoint without keys: anyone local may stop, nobody may reset."""
    rig = Rig()
    rig.to_policy()
    with EstopListener("tcp://127.0.0.1:*", context) as listener, \
            EstopSender(listener.last_endpoint, context) as sender:
        sender.estop("local")
        sender.reset()
        sender.start()
        wait_for(listener, rig.layer)
        time.sleep(0.1)
        listener.apply(rig.layer)
        assert rig.layer.mode == "estop" and listener.refused == 2


def test_malformed_messages_never_latch_or_clear(context):
    rig = Rig()
    rig.to_policy()
    bad = [b"estop", b"RESET please", b"ESTOP \xff", b"\x80\x04\x95pickle", b"x" * 300]
    with EstopListener("tcp://127.0.0.1:*", context) as listener, \
            EstopSender(listener.last_endpoint, context) as sender:
        for frame in bad:
            sender.send_raw(frame)
        sender.estop("after garbage")  # one ordered PUSH/PULL pipe: this arrives last
        wait_for(listener, rig.layer)
        assert listener.rejected == len(bad) and listener.received == len(bad) + 1
        assert rig.layer.mode == "estop"
        for frame in bad:
            sender.send_raw(frame)
        sender.send_raw(b"ESTOP marker")  # repeated e-stop: no new transition
        wait_for(listener, rig.layer)
        assert rig.layer.mode == "estop"  # garbage (including 'RESET please') did not clear it
        assert listener.rejected == 2 * len(bad)


def test_multipart_message_is_rejected(context):
    rig = Rig()
    with EstopListener("inproc://estop-multipart", context) as listener:
        push = context.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        push.setsockopt(zmq.SNDTIMEO, 1000)
        push.connect("inproc://estop-multipart")
        push.send_multipart([b"ESTOP", b"two frames"])
        push.send(b"ESTOP single")
        wait_for(listener, rig.layer)
        push.close(linger=0)
        assert listener.rejected == 1
        assert rig.layer.estop_reason == "remote: single"


def test_messages_in_one_poll_apply_in_order(context):
    rig = Rig()
    with EstopListener("inproc://estop-order", context) as listener, \
            EstopSender("inproc://estop-order", context) as sender:
        sender.estop("first")
        sender.reset()
        sender.estop("second")
        deadline = time.monotonic() + WAIT_S
        messages = []
        while len(messages) < 3 and time.monotonic() < deadline:
            messages += listener.poll()
        assert [m.kind for m in messages] == ["estop", "reset", "estop"]
        for message in messages:
            if message.kind == "estop":
                rig.layer.estop(message.reason)
            else:
                rig.layer.reset_estop()
        assert rig.layer.mode == "estop" and rig.layer.estop_reason == "second"


def test_sub_listener_with_pub_sender(context):
    rig = Rig()
    with EstopSender("inproc://estop-pub", context, socket_type="pub") as sender, \
            EstopListener("inproc://estop-pub", context, socket_type="sub") as listener:
        # PUB/SUB drops messages sent before the subscription reaches the publisher: repeat
        # until one arrives (this is why PUSH/PULL is the default transport).
        deadline = time.monotonic() + WAIT_S
        while rig.layer.mode != "estop":
            sender.estop("pub")
            listener.apply(rig.layer)
            assert time.monotonic() < deadline, "no e-stop arrived over PUB/SUB"
            time.sleep(0.005)
        assert rig.layer.estop_reason == "remote: pub"


def test_sender_times_out_without_a_listener(context):
    with EstopSender("tcp://127.0.0.1:1", context, send_timeout_ms=50) as sender:
        with pytest.raises(TimeoutError, match="no listener"):
            sender.estop("nobody there")


def test_listener_bind_failure_names_the_endpoint(context):
    with EstopListener("tcp://127.0.0.1:*", context) as first:
        with pytest.raises(zmq.ZMQError, match=first.last_endpoint.replace(".", r"\.")):
            EstopListener(first.last_endpoint, context)


def test_bad_socket_type():
    with pytest.raises(ValueError, match="valid are"):
        EstopListener("inproc://x", socket_type="router")


def test_cli_sends_estop(context, capsys):
    rig = Rig()
    with EstopListener("tcp://127.0.0.1:*", context) as listener:
        assert main([listener.last_endpoint, "ESTOP", "from the cli"]) == 0
        wait_for(listener, rig.layer)
    assert rig.layer.estop_reason == "remote: from the cli"
    assert "sent ESTOP" in capsys.readouterr().out


def test_cli_operator_key_resets(context, curve_keys, capsys):
    rig = Rig()
    rig.to_policy()
    rig.layer.estop("test")
    with EstopListener("tcp://127.0.0.1:*", context, keys=curve_keys["robot"]) as listener:
        assert main([listener.last_endpoint, "RESET", "--keys", str(curve_keys["alice_dir"])]) == 0
        wait_for(listener, rig.layer)
    assert rig.layer.mode == "idle"
    assert main(["tcp://127.0.0.1:1", "START", "--keys", "/nonexistent"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_cli_estop_reaches_a_keyless_robot_whatever_krabby_keys_holds(context, curve_keys,
                                                                     monkeypatch, capsys):
    """krabby-estop takes keys from --keys only: with $KRABBY_KEYS (krabby-teleop's default key
    directory) in the shell, the e-stop to a robot run without keys still goes out plain."""
    from hal.config import parse_config
    from hal.safety.estop import EstopConfig, build_parser

    monkeypatch.setenv("KRABBY_KEYS", str(curve_keys["alice_dir"]))
    rig = Rig()
    with EstopListener("tcp://127.0.0.1:*", context) as listener:
        assert main([listener.last_endpoint, "ESTOP", "shell with keys"]) == 0
        wait_for(listener, rig.layer)
    assert rig.layer.estop_reason == "remote: shell with keys"
    assert parse_config(EstopConfig, ["tcp://r:1", "ESTOP"], build_parser()).keys.keys is None
    assert "KRABBY_KEYS" not in build_parser().format_help()


def test_cli_reports_errors_without_traceback(capsys):
    assert main(["tcp://127.0.0.1:1", "ESTOP", "bad\nreason"]) == 1
    assert "printable ASCII" in capsys.readouterr().err

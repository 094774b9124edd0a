"""Operator sources with their real decoders: terminal bytes (through a pty), evdev
``input_event`` records (through a pipe, split mid-record), the Go2 remote's 40 bytes; the hub's
clamping and its calls into a real safety layer."""

from __future__ import annotations

import math
import os
import pty
import struct
import time

import pytest

from hal.operator import Action, OperatorCommand, OperatorConfig, OperatorEvent, OperatorHub
from hal.operator.gamepad import (
    EV_ABS,
    EV_KEY,
    EV_SYN,
    EVENT_SIZE,
    GamepadDecoder,
    GamepadSource,
    decode_events,
)
from hal.operator.go2_remote import (
    Go2RemoteDecoder,
    Go2RemoteSource,
    RemoteFrameError,
    decode_wireless_remote,
    encode_wireless_remote,
)
from hal.operator.keyboard import KeyboardSource, KeyDecoder

# linux/input-event-codes.h, written out here rather than taken from the module under test.
BTN_A, BTN_B, BTN_Y, BTN_LB, BTN_RB, BTN_START = 0x130, 0x131, 0x134, 0x136, 0x137, 0x13B
ABS_Y, ABS_RX = 0x01, 0x03


def input_event(type_: int, code: int, value: int, sec: int = 1700000000, usec: int = 0) -> bytes:
    """``struct input_event`` on 64-bit Linux: timeval (2 x int64), u16 type, u16 code, s32."""
    return struct.pack("=qqHHi", sec, usec, type_, code, value)


def syn() -> bytes:
    return input_event(EV_SYN, 0, 0)


# -- keyboard ---------------------------------------------------------------------------------


def test_key_decoder_arrows_wasd_and_split_escapes():
    d = KeyDecoder(speed_step_m_s=0.1, yaw_step_rad_s=0.2)
    events = d.feed(b"w\x1b[A\x1b")  # W, up arrow, then an escape cut short
    assert [e.speed_step_m_s for e in events] == [0.1, 0.1]
    events = d.feed(b"[Dd \rbrmx?")  # ...its rest: left arrow
    assert events[0].yaw_step_rad_s == 0.2 and events[1].yaw_step_rad_s == -0.2
    assert [e.action for e in events[2:5]] == [Action.ESTOP, Action.START, Action.STOP]
    assert events[5].action is Action.RESET and events[6].toggle_mode
    assert events[7].forward_speed_m_s == 0.0 and events[7].yaw_rate_rad_s == 0.0
    assert d.unknown == 1  # '?'
    assert [e.speed_step_m_s for e in d.feed(b"\x1bOB")] == [-0.1]  # SS3 down arrow


def test_keyboard_source_reads_a_terminal():
    master, slave = pty.openpty()
    source = KeyboardSource(fd=slave, poll_interval_s=0.01)
    try:
        source.connect()
        assert source.active
        os.write(master, b"ww\x1b[C ")
        events: list[OperatorEvent] = []
        deadline = time.monotonic() + 5
        while len(events) < 4 and time.monotonic() < deadline:
            events += source.poll(0)
            time.sleep(0.01)
        assert [e.speed_step_m_s for e in events[:2]] == [0.1, 0.1]
        assert events[2].yaw_step_rad_s == -0.2 and events[3].action is Action.ESTOP
    finally:
        source.close()
        os.close(master)
        os.close(slave)


def test_keyboard_source_without_a_terminal_stays_off():
    r, w = os.pipe()
    source = KeyboardSource(fd=r)
    source.connect()
    assert not source.active and source.poll(0) == []
    source.close()
    os.close(r)
    os.close(w)


# -- gamepad ----------------------------------------------------------------------------------


def test_input_event_layout():
    assert EVENT_SIZE == 24
    events, rest = decode_events(input_event(EV_KEY, BTN_A, 1, 5, 7) + b"\x01\x02")
    assert rest == b"\x01\x02"
    assert (events[0].sec, events[0].usec, events[0].type, events[0].code, events[0].value) == \
        (5, 7, EV_KEY, BTN_A, 1)


def test_gamepad_dead_man_rules():
    d = GamepadDecoder(max_speed_m_s=1.5, max_yaw_rate_rad_s=1.0)
    decode = lambda data: d.feed(decode_events(data)[0])  # noqa: E731
    # Without the dead-man: sticks and start are ignored; e-stop and stop work.
    assert decode(input_event(EV_ABS, ABS_Y, -32768) + syn() + input_event(EV_KEY, BTN_A, 1)) == []
    events = decode(input_event(EV_KEY, BTN_RB, 1) + input_event(EV_KEY, BTN_B, 1))
    assert [e.action for e in events] == [Action.ESTOP, Action.STOP]
    # Dead-man down: the stick (already full up) counts at the next SYN; right stick half right.
    events = decode(input_event(EV_KEY, BTN_LB, 1) + input_event(EV_ABS, ABS_RX, 16384) + syn())
    assert len(events) == 1
    assert events[0].forward_speed_m_s == pytest.approx(1.5)
    half = (16384 - (-0.5)) / 32767.5
    assert events[0].yaw_rate_rad_s == pytest.approx(-(half - 0.1) / 0.9)
    # Within the dead zone: 0.
    events = decode(input_event(EV_ABS, ABS_Y, -3000) + input_event(EV_ABS, ABS_RX, 0) + syn())
    assert (events[0].forward_speed_m_s, events[0].yaw_rate_rad_s) == (0.0, 0.0)
    # Stick pulled back: no negative speed.
    events = decode(input_event(EV_ABS, ABS_Y, 32767) + syn())
    assert events == []  # still (0, 0): nothing new
    events = decode(input_event(EV_KEY, BTN_A, 1) + input_event(EV_KEY, BTN_A, 2)  # + autorepeat
                    + input_event(EV_KEY, BTN_Y, 1) + input_event(EV_KEY, BTN_START, 1))
    assert [e.action for e in events] == [Action.START, None, Action.RESET]
    assert events[1].toggle_mode
    # Release: stop, speed and yaw rate 0.
    events = decode(input_event(EV_KEY, BTN_LB, 0) + syn())
    assert len(events) == 1 and events[0].action is Action.STOP
    assert (events[0].forward_speed_m_s, events[0].yaw_rate_rad_s) == (0.0, 0.0)
    assert events[0].reason == "dead-man released"


def test_gamepad_source_reads_a_recorded_stream_split_mid_record():
    stream = (input_event(EV_KEY, BTN_LB, 1) + input_event(EV_ABS, ABS_Y, -32768) + syn()
              + input_event(EV_KEY, BTN_A, 1) + syn() + input_event(EV_KEY, BTN_LB, 0) + syn())
    r, w = os.pipe()
    source = GamepadSource(None, GamepadDecoder(1.2, 1.0), fd=r)
    source.connect()
    got: list[OperatorEvent] = []
    try:
        for cut in (30, 60, len(stream)):  # 30 and 60 fall inside records
            os.write(w, stream[:cut] if cut == 30 else stream[30:60] if cut == 60 else stream[60:])
            got += source.poll(0)
        assert source.poll(0) == []
    finally:
        source.close()
        os.close(r)
        os.close(w)
    assert got[0].forward_speed_m_s == pytest.approx(1.2)
    assert got[1].action is Action.START
    assert got[2].action is Action.STOP and got[2].forward_speed_m_s == 0.0
    assert source.stats()["input_events"] == 7


def test_gamepad_missing_device_names_the_fix(tmp_path):
    source = GamepadSource(str(tmp_path / "event99"), GamepadDecoder(1.0, 1.0))
    with pytest.raises(OSError, match="by-id"):
        source.connect()


# -- Go2 remote -------------------------------------------------------------------------------


def remote_bytes(bits: int = 0, lx=0.0, rx=0.0, ry=0.0, l2=0.0, ly=0.0) -> bytes:
    """Unitree's xRockerBtnDataStruct, by offset: head[2], u16 keys, lx rx ry L2 ly, idle[16]."""
    frame = bytearray(40)
    frame[0:2] = b"\x55\x51"
    struct.pack_into("<H", frame, 2, bits)
    for offset, value in ((4, lx), (8, rx), (12, ry), (16, l2), (20, ly)):
        struct.pack_into("<f", frame, offset, value)
    return bytes(frame)


# key bits: R1 0, L1 1, start 2, select 3, R2 4, L2 5, F1 6, F2 7, A 8, B 9, X 10, Y 11
START, SELECT, L2, A, B, Y = 1 << 2, 1 << 3, 1 << 5, 1 << 8, 1 << 9, 1 << 11


def test_remote_layout_round_trip():
    state = decode_wireless_remote(remote_bytes(START | L2 | Y, lx=0.25, rx=-0.5, ly=1.0))
    assert state.buttons == {"start", "L2", "Y"}
    assert (state.lx, state.rx, state.ly) == (0.25, -0.5, 1.0)
    assert encode_wireless_remote({"start", "L2", "Y"}, lx=0.25, rx=-0.5, ly=1.0) == \
        remote_bytes(START | L2 | Y, lx=0.25, rx=-0.5, ly=1.0)
    assert decode_wireless_remote(list(remote_bytes())).buttons == frozenset()  # IDL: a list
    with pytest.raises(RemoteFrameError, match="39 bytes"):
        decode_wireless_remote(bytes(39))
    with pytest.raises(RemoteFrameError, match="ly"):
        decode_wireless_remote(remote_bytes(ly=math.nan))


def test_remote_source_edges_chords_and_bad_frames():
    frames: list[tuple[bytes, int]] = []
    source = Go2RemoteSource(lambda: frames[-1] if frames else None,
                             Go2RemoteDecoder(max_speed_m_s=1.0, max_yaw_rate_rad_s=0.8))

    def send(raw: bytes) -> list[OperatorEvent]:
        frames.append((raw, len(frames) + 1))
        return source.poll(0)

    assert source.poll(0) == []
    assert send(remote_bytes()) == []  # at rest: leaves the command alone
    events = send(remote_bytes(START))
    assert [e.action for e in events] == [Action.START]
    assert send(remote_bytes(START)) == []  # held: no new edge
    assert source.poll(0) == []  # the same frame again (same receive time)
    events = send(remote_bytes(ly=1.0, rx=0.5))
    assert events[0].forward_speed_m_s == pytest.approx(1.0)
    assert events[0].yaw_rate_rad_s == pytest.approx(-(0.5 - 0.08) / 0.92 * 0.8)
    events = send(remote_bytes(L2 | B))
    assert [e.action for e in events[:1]] == [Action.ESTOP]
    assert (events[1].forward_speed_m_s, events[1].yaw_rate_rad_s) == (0.0, 0.0)
    assert [e.action for e in send(remote_bytes(L2 | B | A))] == [Action.RESET]
    assert [e.action for e in send(remote_bytes(SELECT))] == [Action.STOP]
    assert send(remote_bytes(Y))[0].toggle_mode
    assert send(remote_bytes(ly=float("inf"))) == []
    assert send(bytes(12)) == []
    assert source.stats() == {"frames": 8, "bad_frames": 2}


# -- hub --------------------------------------------------------------------------------------


class _Safety:
    """Records the calls (the layer's own behaviour is tested with the real one below)."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def request_start(self) -> bool:
        self.calls.append(("start",))
        return True

    def request_stand(self) -> None:
        self.calls.append(("stand",))

    def estop(self, reason: str, now_ns: int) -> None:
        self.calls.append(("estop", reason, now_ns))

    def reset_estop(self, now_ns: int) -> bool:
        self.calls.append(("reset", now_ns))
        return False


class _Scripted:
    name = "script"

    def __init__(self, batches) -> None:
        self.batches = list(batches)

    def connect(self) -> None: ...

    def close(self) -> None: ...

    def poll(self, now_ns):
        if not self.batches:
            return []
        batch = self.batches.pop(0)
        if isinstance(batch, Exception):
            raise batch
        return batch

    def stats(self):
        return {}


def test_hub_clamps_logs_and_acts(caplog):
    safety, commands = _Safety(), []
    ev = OperatorEvent
    source = _Scripted([
        [ev("s", forward_speed_m_s=2.5)],  # above the trained range
        [ev("s", speed_step_m_s=-1.0), ev("s", yaw_step_rad_s=-3.0)],
        RuntimeError("unplugged"),
        [ev("s", toggle_mode=True), ev("s", Action.START), ev("s", Action.ESTOP, reason="x")],
        [ev("s", forward_speed_m_s=math.nan), ev("s", Action.RESET), ev("s", Action.STOP)],
        [ev("s", forward_speed_m_s=-0.4)],
    ])
    hub = OperatorHub(safety, [source], OperatorCommand(0.5), commands.append,
                      OperatorConfig(speed_range_m_s=(0.0, 1.2), max_yaw_rate_rad_s=0.7),
                      clock_ns=lambda: 42)
    for seq in range(1, 7):
        hub(type("R", (), {"seq": seq})())
    assert [(round(c.forward_speed_m_s, 9), c.yaw_rate_rad_s, c.mode) for c in commands] == [
        (1.2, 0.0, "parkour"), (0.2, 0.0, "parkour"), (0.2, -0.7, "parkour"), (0.2, -0.7, "walk"),
        (0.0, -0.7, "walk")]
    assert safety.calls == [("start",), ("estop", "operator s: x", 42), ("reset", 42), ("stand",)]
    report = hub.report()
    assert report["counters"]["clamped"] == 3 and report["counters"]["refused"] == 1
    assert report["counters"]["source_errors"] == 1
    whats = [(e["seq"], e["what"]) for e in report["events"]]
    assert whats == [(1, "command"), (2, "command"), (2, "command"), (4, "command"), (4, "start"),
                     (4, "estop"), (5, "reset"), (5, "stop"), (6, "command")]
    assert report["events"][6]["accepted"] is False
    assert "clamped to 1.20 m/s (trained range 0.00-1.20)" in caplog.text


def test_hub_drives_a_real_safety_layer(go2_robot):
    from hal.safety import SafetyLayer

    layer = SafetyLayer(go2_robot)
    hub = OperatorHub(layer, [_Scripted([[OperatorEvent("t", Action.ESTOP)],
                                         [OperatorEvent("t", Action.START)],
                                         [OperatorEvent("t", Action.RESET)],
                                         [OperatorEvent("t", Action.START)]])],
                      clock_ns=lambda: 1000)
    hub(None)
    assert layer.mode == "estop"
    hub(None)
    assert layer.counters().get("request.start_refused_estop") == 1
    hub(None)
    assert layer.mode == "idle"
    hub(None)
    assert layer.run_requested


@pytest.fixture(scope="module")
def go2_robot():
    from hal.robot import load_robot

    return load_robot("go2")

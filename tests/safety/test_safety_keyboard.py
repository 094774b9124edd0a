"""Keyboard e-stop on a real pseudo-terminal (os.openpty): cbreak mode, keys, restore, no TTY."""

from __future__ import annotations

import os
import sys
import termios
import threading
import time

import pytest

from hal.safety import KeyboardEstop

from .rig import Rig

pytestmark = pytest.mark.skipif(not hasattr(os, "openpty") or sys.platform == "win32",
                                reason="needs a POSIX pseudo-terminal")
WAIT_S = 5.0


@pytest.fixture
def pty_pair():
    master, slave = os.openpty()
    yield master, slave
    for fd in (master, slave):
        try:
            os.close(fd)
        except OSError:
            pass


class Recorder:
    def __init__(self, target=None):
        self.reasons: list[str] = []
        self.event = threading.Event()
        self.target = target

    def __call__(self, reason: str) -> None:
        self.reasons.append(reason)
        if self.target is not None:
            self.target(reason)
        self.event.set()


def test_space_latches_layer_and_terminal_is_restored(pty_pair):
    master, slave = pty_pair
    rig = Rig()
    rig.to_policy()
    before = termios.tcgetattr(slave)
    recorder = Recorder(rig.layer.estop)
    keyboard = KeyboardEstop(recorder, fd=slave)
    assert keyboard.start()
    assert keyboard.active
    during = termios.tcgetattr(slave)
    assert not during[3] & termios.ICANON and not during[3] & termios.ECHO
    assert during[3] & termios.ISIG  # Ctrl-C still interrupts
    os.write(master, b"xq\n")  # ignored keys, read before the space (one ordered stream)
    os.write(master, b" ")
    assert recorder.event.wait(WAIT_S)
    assert recorder.reasons == ["keyboard"]
    assert keyboard.keys_read == 4 and keyboard.estops_sent == 1
    rig.tick(targets=rig.default)
    assert rig.layer.mode == "estop" and rig.layer.estop_reason == "keyboard"
    keyboard.stop()
    assert not keyboard.active
    assert termios.tcgetattr(slave) == before
    keyboard.stop()  # twice is fine


@pytest.mark.parametrize("key", [b"e", b"E"])
def test_e_key_latches(pty_pair, key):
    master, slave = pty_pair
    recorder = Recorder()
    with KeyboardEstop(recorder, fd=slave) as keyboard:
        assert keyboard.active
        os.write(master, key)
        assert recorder.event.wait(WAIT_S)
    assert recorder.reasons == ["keyboard"]


def test_keyboard_cannot_reset(pty_pair):
    master, slave = pty_pair
    rig = Rig()
    rig.layer.estop("api")
    recorder = Recorder(rig.layer.estop)
    with KeyboardEstop(recorder, fd=slave):
        os.write(master, b"r\x1b[A\n RESET ")
        assert recorder.event.wait(WAIT_S)
    assert rig.layer.mode == "estop" and rig.layer.estop_reason == "api"


def test_reader_survives_a_raising_callback(pty_pair):
    master, slave = pty_pair
    calls = []
    first, second = threading.Event(), threading.Event()

    def flaky(reason):
        calls.append(reason)
        if len(calls) == 1:
            first.set()
            raise RuntimeError("boom")
        second.set()

    with KeyboardEstop(flaky, fd=slave) as keyboard:
        os.write(master, b" ")
        assert first.wait(WAIT_S)
        os.write(master, b"e")
        assert second.wait(WAIT_S)
        assert keyboard.active
    assert calls == ["keyboard", "keyboard"]


def test_not_a_terminal_does_nothing():
    read_end, write_end = os.pipe()
    try:
        keyboard = KeyboardEstop(Recorder(), fd=read_end)
        assert not keyboard.start()
        assert not keyboard.active
        keyboard.stop()
    finally:
        os.close(read_end)
        os.close(write_end)


def test_closed_terminal_stops_the_reader(pty_pair):
    master, slave = pty_pair
    keyboard = KeyboardEstop(Recorder(), fd=slave, poll_interval_s=0.01)
    assert keyboard.start()
    os.close(master)  # reading the slave now fails (EIO) or returns EOF
    deadline = time.monotonic() + WAIT_S
    while keyboard.active and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not keyboard.active
    keyboard.stop()

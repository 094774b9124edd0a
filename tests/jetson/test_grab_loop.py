"""The grab-loop bookkeeping shared by the ZED and recorded backends: seq, timestamps, duplicates,
failures, staleness, the double-buffer handoff and the thread's lifecycle."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from hal.devices.grab_loop import (FrameDropped, FrameSource, GrabError, GrabLoop, LatestFrame,
                                  SourceExhausted)


class ScriptedSource(FrameSource):
    """Plays a script: an int is a frame with that timestamp (filled with the int), an exception
    instance is raised by that grab."""

    def __init__(self, script, shape=(2, 3)) -> None:
        self.script = list(script)
        self.shape = shape
        self.closed = 0

    def open(self):
        return self.shape, np.dtype(np.float32)

    def grab(self, out):
        if not self.script:
            raise SourceExhausted()
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        out[...] = item
        return item

    def close(self):
        self.closed += 1


class ManualClock:
    def __init__(self, now_ns: int = 0) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns


def test_step_publishes_frames_with_increasing_seq_and_counts_duplicates_and_failures():
    source = ScriptedSource([10, 20, 20, GrabError("camera says no"), ValueError("driver bug"), 15, 30])
    loop = GrabLoop(source, "t", stale_after_ms=100, clock_ns=ManualClock(30))
    loop.open()
    out = np.zeros((2, 3), np.float32)

    assert loop.step() and loop.read_into(out) == (1, 10) and np.all(out == 10)
    assert loop.step() and loop.read_into(out, newer_than_seq=1) == (2, 20)
    assert loop.step()  # same timestamp again: a duplicate, not a new frame
    assert loop.read_into(out, newer_than_seq=2) is None
    assert loop.step() and loop.step()  # two failed grabs, neither raises
    health = loop.health()
    assert (health.frames, health.duplicates, health.grab_failures, health.consecutive_failures) == (2, 1, 2, 2)
    assert "driver bug" in health.last_error
    assert loop.step()  # timestamp 15 < 20: out of order, dropped as a duplicate
    assert loop.step()  # 30 is new: published, failure streak reset
    health = loop.health()
    assert (health.frames, health.duplicates, health.consecutive_failures) == (3, 2, 0)
    assert loop.read_into(out, newer_than_seq=2) == (3, 30) and np.all(out == 30)
    assert not loop.step()  # the script is exhausted
    assert loop.health().ended


def test_dropped_frames_are_counted_not_published_not_backed_off_and_age_into_stale():
    clock = ManualClock(0)
    source = ScriptedSource([10_000_000] + [FrameDropped("corrupted")] * 3 + [400_000_000])
    loop = GrabLoop(source, "t", stale_after_ms=100, clock_ns=clock)
    loop.open()
    out = np.zeros((2, 3), np.float32)
    assert loop.step() and loop.read_into(out) == (1, 10_000_000)
    for _ in range(3):
        assert loop.step()
        assert loop.backoff_s() == 0.0  # the next frame is already coming: no waiting
    clock.now_ns = 150_000_000  # the newest usable frame is 140 ms old
    health = loop.health()
    assert (health.frames, health.dropped, health.grab_failures, health.stale) == (1, 3, 0, True)
    assert "3 dropped" in health.summary() and health.last_error == "corrupted"
    assert loop.read_into(out, newer_than_seq=1) is None  # nothing of the dropped frames was published
    assert loop.step()
    clock.now_ns = 410_000_000
    assert not loop.health().stale and loop.health().frames == 2


def test_read_into_leaves_out_untouched_when_nothing_newer():
    loop = GrabLoop(ScriptedSource([5]), "t", stale_after_ms=100, clock_ns=ManualClock(5))
    loop.open()
    out = np.full((2, 3), -7.0, np.float32)
    assert loop.read_into(out) is None
    loop.step()
    assert loop.read_into(out, newer_than_seq=1) is None
    assert np.all(out == -7.0)


def test_stale_by_frame_age_and_before_the_first_frame():
    clock = ManualClock(0)
    loop = GrabLoop(ScriptedSource([1_000_000_000]), "t", stale_after_ms=200, clock_ns=clock)
    loop.open()
    assert loop.health().stale and loop.health().last_frame_age_ms == float("inf")
    loop.step()
    clock.now_ns = 1_000_000_000 + 150_000_000
    health = loop.health()
    assert not health.stale and health.last_frame_age_ms == pytest.approx(150.0)
    clock.now_ns = 1_000_000_000 + 250_000_000
    assert loop.health().stale
    assert "STALE" in loop.health().summary()


def test_backoff_grows_with_consecutive_failures_and_is_capped():
    loop = GrabLoop(ScriptedSource([GrabError("x")] * 12), "t", stale_after_ms=100, max_backoff_ms=50)
    loop.open()
    assert loop.backoff_s() == 0.0
    waits = []
    for _ in range(12):
        loop.step()
        waits.append(loop.backoff_s())
    assert waits[:3] == [1e-3, 2e-3, 4e-3]
    assert max(waits) == 0.05 and waits == sorted(waits)


def test_double_buffer_never_hands_out_a_torn_frame():
    """A writer fills each frame with one value; readers must only ever see uniform frames."""
    frame = LatestFrame((64, 64), np.float32)
    n_frames = 3000
    torn: list[float] = []
    done = threading.Event()

    def writer():
        for k in range(1, n_frames + 1):
            frame.back.fill(k)
            frame.publish(k)
        done.set()

    def reader():
        out = np.empty((64, 64), np.float32)
        last = 0
        while not done.is_set() or last < frame.seq:
            got = frame.read_into(out, last)
            if got is None:
                continue
            seq, ts = got
            if not (out.min() == out.max() == ts == seq):
                torn.append(float(seq))
            last = seq

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert torn == []
    assert frame.seq == n_frames


class BlockingSource(FrameSource):
    """Blocks in grab until interrupted, like a camera that stopped sending frames."""

    def __init__(self) -> None:
        self.wake = threading.Event()
        self.closed = False

    def open(self):
        return (4,), np.dtype(np.float64)

    def grab(self, out):
        self.wake.wait(10)
        raise GrabError("interrupted")

    def interrupt(self):
        self.wake.set()

    def close(self):
        self.closed = True


def test_thread_stops_promptly_when_the_source_is_blocked_and_closes_it():
    source = BlockingSource()
    loop = GrabLoop(source, "blocked", stale_after_ms=50)
    loop.start()
    assert loop.health().running
    assert not loop.wait_for_frame(0.05)
    loop.stop(timeout_s=5)
    assert source.closed and not loop.health().running
    assert loop.health().stale and loop.health().frames == 0


def test_thread_survives_failing_grabs_and_ends_with_the_source():
    source = ScriptedSource([GrabError("a"), RuntimeError("b"), 1, 2, 3])
    loop = GrabLoop(source, "t", stale_after_ms=1000, max_backoff_ms=1)
    loop.start()
    assert loop.wait_for_frame(5.0, newer_than_seq=2)
    loop._thread.join(5)  # the script ends, so the thread returns on its own
    health = loop.health()
    assert health.ended and health.frames == 3 and health.grab_failures == 2
    loop.stop()
    assert source.closed == 1
    loop.stop()  # twice is harmless
    assert source.closed == 1


class FailingOpenSource(ScriptedSource):
    """Acquires something in open(), then fails (a ZED without an IMU, a bad calibration)."""

    def open(self):
        self.acquired = True
        raise RuntimeError("no IMU on this camera")

    def close(self):
        self.acquired = False
        super().close()


def test_a_failed_open_releases_what_the_source_acquired():
    source = FailingOpenSource([])
    loop = GrabLoop(source, "t", stale_after_ms=100)
    with pytest.raises(RuntimeError, match="no IMU"):
        loop.start()
    assert source.acquired is False and source.closed == 1
    loop.stop()  # nothing left to close
    assert source.closed == 1

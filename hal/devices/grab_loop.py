"""The grab thread every self-clocked sensor backend shares (ZED depth, ZED IMU, recorded playback).

A :class:`FrameSource` knows how to produce one frame (a depth image, an IMU sample vector): it
blocks until the next one exists and writes it into a buffer it is handed. A :class:`GrabLoop` runs
the source on its own thread and does all the bookkeeping that needs no hardware:

- **double-buffer handoff**: the source writes into the back buffer without a lock; publishing swaps
  front and back under a lock, and readers copy the front under the same lock, so a reader never
  sees a half-written frame and the grab thread never waits for more than one copy;
- **sequence numbers and timestamps**: every published frame gets the next ``seq`` (from 1); a
  frame whose timestamp is not newer than the last one is a duplicate and is dropped and counted;
- **failures**: a failed grab (:class:`GrabError`, or any exception the source lets out) is counted
  and backed off, never raised out of the thread; a source that ends (:class:`SourceExhausted`,
  a recording's last frame) stops the loop cleanly;
- **dropped frames**: a frame the source received but must not be used (:class:`FrameDropped`, a
  ZED ``CORRUPTED_FRAME``) is counted and not published, without back-off (the next frame is
  already on its way); a run of them lets the data age into ``stale`` like a stalled camera;
- **staleness**: :meth:`GrabLoop.health` reports the newest frame's age and ``stale`` when it is
  older than ``stale_after_ms`` (or no frame came at all), so a stalled camera shows up as data
  that stops being new, never as a crash.

:meth:`GrabLoop.step` is one iteration of the thread's loop; tests drive it directly.
"""

from __future__ import annotations

import abc
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = [
    "GrabError",
    "SourceExhausted",
    "FrameDropped",
    "FrameSource",
    "LatestFrame",
    "GrabHealth",
    "GrabLoop",
]

log = logging.getLogger(__name__)

Clock = Callable[[], int]


class GrabError(RuntimeError):
    """One grab failed (camera error code, timeout); the loop counts it and tries again."""


class FrameDropped(GrabError):
    """The source received a frame that must not be used; the loop counts it as dropped."""


class SourceExhausted(Exception):
    """The source has no more frames (a recording reached its end); the loop stops."""


class FrameSource(abc.ABC):
    """Produces frames of one fixed shape and dtype on the caller's thread.

    The grab thread calls :meth:`open` once, then :meth:`grab` in a loop, then :meth:`close`.
    :meth:`interrupt` is the only method called from another thread.
    """

    @abc.abstractmethod
    def open(self) -> tuple[tuple[int, ...], np.dtype]:
        """Open the device or file; returns the (shape, dtype) of every frame.

        Raises:
            hal.devices.base.DeviceError: the source cannot be opened (the message says why).
        """

    @abc.abstractmethod
    def grab(self, out: np.ndarray) -> int:
        """Block until the next frame, write it into ``out`` and return its timestamp.

        The timestamp is ``time.monotonic_ns()`` of the moment the frame was measured.

        Raises:
            GrabError: no frame this time (counted; the loop goes on).
            SourceExhausted: there will be no more frames (the loop ends).
        """

    def interrupt(self) -> None:
        """Make a blocked :meth:`grab` return soon; the loop is stopping. Default: nothing."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the device or file. Called once, on the grab thread's owner, after the loop."""


class LatestFrame:
    """Two buffers and a lock: the newest published frame, and the one being written.

    Only one thread (the grab thread) may write :attr:`back` and call :meth:`publish`; any number
    of threads may call :meth:`read_into`.
    """

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype | type) -> None:
        self._front = np.zeros(shape, dtype=dtype)
        self._back = np.zeros(shape, dtype=dtype)
        self._lock = threading.Lock()
        self._seq = 0
        self._timestamp_ns = 0

    @property
    def shape(self) -> tuple[int, ...]:
        return self._front.shape

    @property
    def dtype(self) -> np.dtype:
        return self._front.dtype

    @property
    def back(self) -> np.ndarray:
        """The buffer the grab thread writes the next frame into (never read by readers)."""
        return self._back

    @property
    def seq(self) -> int:
        """Seq of the newest published frame (0 before the first)."""
        return self._seq

    @property
    def timestamp_ns(self) -> int:
        """Timestamp of the newest published frame (0 before the first)."""
        return self._timestamp_ns

    def publish(self, timestamp_ns: int) -> int:
        """Make the back buffer the newest frame; returns its seq."""
        with self._lock:
            self._front, self._back = self._back, self._front
            self._seq += 1
            self._timestamp_ns = timestamp_ns
            return self._seq

    def read_into(self, out: np.ndarray, newer_than_seq: int = 0) -> tuple[int, int] | None:
        """Copy the newest frame into ``out`` if its seq exceeds ``newer_than_seq``.

        Returns:
            ``(seq, timestamp_ns)`` of the copied frame, or None (``out`` untouched).
        """
        with self._lock:
            if self._seq <= newer_than_seq:
                return None
            np.copyto(out, self._front, casting="same_kind")
            return self._seq, self._timestamp_ns


@dataclass(frozen=True)
class GrabHealth:
    """What a grab loop has done so far, and whether its data is still fresh."""

    running: bool  # the thread is alive
    ended: bool  # the source said it has no more frames
    frames: int  # frames published
    grab_failures: int  # grabs that raised (all time)
    consecutive_failures: int  # since the last good frame
    duplicates: int  # frames dropped because their timestamp was not newer
    dropped: int  # frames the source rejected (FrameDropped: a corrupted image)
    last_error: str  # the newest failure's message ("" if none)
    last_frame_age_ms: float  # age of the newest frame by its timestamp (inf before the first)
    stale: bool  # no frame newer than stale_after_ms

    def summary(self) -> str:
        """One line for logs and the doctor."""
        age = "none yet" if math.isinf(self.last_frame_age_ms) else f"{self.last_frame_age_ms:.0f} ms"
        state = "ended" if self.ended else ("running" if self.running else "stopped")
        text = (f"{state}, {self.frames} frames, newest {age} old, {self.grab_failures} failed grabs, "
                f"{self.duplicates} duplicates")
        if self.dropped:
            text += f", {self.dropped} dropped"
        if self.stale:
            text += ", STALE"
        if self.last_error:
            text += f", last error: {self.last_error}"
        return text


class GrabLoop:
    """Runs a :class:`FrameSource` on its own daemon thread and keeps its newest frame.

    Args:
        source: What produces the frames.
        name: Thread name and log prefix.
        stale_after_ms: A frame older than this (by its timestamp) makes :meth:`health` stale.
        clock_ns: The clock frame timestamps are on (``time.monotonic_ns``); tests inject one.
        max_backoff_ms: Longest wait after repeated failures (doubles from 1 ms).
    """

    def __init__(self, source: FrameSource, name: str, stale_after_ms: float,
                 clock_ns: Clock = time.monotonic_ns, max_backoff_ms: float = 100.0) -> None:
        if not stale_after_ms > 0:
            raise ValueError(f"{name}: stale_after_ms must be positive, got {stale_after_ms}")
        self.source = source
        self.name = name
        self._stale_after_ns = int(stale_after_ms * 1e6)
        self._clock_ns = clock_ns
        self._max_backoff_s = max_backoff_ms / 1e3
        self._frame: LatestFrame | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._started_ns = 0
        self._ended = False
        self._failures = 0
        self._consecutive_failures = 0
        self._duplicates = 0
        self._dropped = 0
        self._last_error = ""
        self._opened = False

    # -- lifecycle ------------------------------------------------------------------------------

    def open(self) -> None:
        """Open the source and allocate the buffers (on the caller's thread, so errors surface)."""
        try:
            shape, dtype = self.source.open()
        except BaseException:
            try:
                self.source.close()  # release what a half-done open() acquired
            except Exception:  # noqa: BLE001 - the open error is the one to report
                log.exception("%s: closing the source after a failed open failed too", self.name)
            raise
        self._opened = True
        self._frame = LatestFrame(tuple(shape), dtype)
        self._started_ns = self._clock_ns()

    def start(self) -> None:
        """Open the source (if not yet) and start the grab thread."""
        if self._frame is None:
            self.open()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop the thread (joined with a timeout) and close the source. Safe to call twice."""
        self._stop.set()
        if self._opened:
            self.source.interrupt()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.error("%s: grab thread did not stop within %.1f s (source blocked in grab); "
                          "closing the source anyway", self.name, timeout_s)
            self._thread = None
        if self._opened:
            self._opened = False
            try:
                self.source.close()
            except Exception:  # noqa: BLE001 - closing must not raise out of a shutdown path
                log.exception("%s: closing the source failed", self.name)

    @property
    def frame_shape(self) -> tuple[int, ...]:
        if self._frame is None:
            raise RuntimeError(f"{self.name}: not opened")
        return self._frame.shape

    # -- the loop -------------------------------------------------------------------------------

    def step(self) -> bool:
        """Grab one frame and do its bookkeeping. Returns False once the source has ended."""
        frame = self._frame
        if frame is None:
            raise RuntimeError(f"{self.name}: step() before open()")
        try:
            timestamp_ns = int(self.source.grab(frame.back))
        except SourceExhausted:
            self._ended = True
            log.info("%s: source ended after %d frames", self.name, frame.seq)
            return False
        except FrameDropped as exc:  # not published: a run of them ages the data into stale
            self._dropped += 1
            self._last_error = str(exc)
            return True
        except Exception as exc:  # noqa: BLE001 - a failing grab is data, never a crash
            if self._stop.is_set():  # interrupted on purpose by stop()
                return False
            self._failures += 1
            self._consecutive_failures += 1
            self._last_error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, GrabError) else str(exc)
            if self._consecutive_failures == 1 or self._consecutive_failures % 100 == 0:
                log.warning("%s: grab failed (%d in a row): %s", self.name,
                            self._consecutive_failures, self._last_error)
            return True
        if frame.seq > 0 and timestamp_ns <= frame.timestamp_ns:
            self._duplicates += 1
            return True
        frame.publish(timestamp_ns)
        self._consecutive_failures = 0
        return True

    def backoff_s(self) -> float:
        """How long the thread waits before the next grab (0 unless grabs are failing)."""
        if self._consecutive_failures == 0:
            return 0.0
        return min(1e-3 * 2.0 ** (self._consecutive_failures - 1), self._max_backoff_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.step():
                    return
            except Exception:  # noqa: BLE001 - the thread must outlive any bookkeeping bug
                log.exception("%s: unexpected error in the grab loop", self.name)
                self._failures += 1
                self._consecutive_failures += 1
            wait = self.backoff_s()
            if wait > 0:
                self._stop.wait(wait)

    # -- readers --------------------------------------------------------------------------------

    def read_into(self, out: np.ndarray, newer_than_seq: int = 0) -> tuple[int, int] | None:
        """``(seq, timestamp_ns)`` after copying the newest frame into ``out``, or None."""
        if self._frame is None:
            return None
        return self._frame.read_into(out, newer_than_seq)

    @property
    def seq(self) -> int:
        return 0 if self._frame is None else self._frame.seq

    def health(self) -> GrabHealth:
        now = self._clock_ns()
        frame = self._frame
        if frame is None or frame.seq == 0:
            age_ns = math.inf
            stale = True
        else:
            age_ns = now - frame.timestamp_ns
            stale = age_ns > self._stale_after_ns
        return GrabHealth(
            running=self._thread is not None and self._thread.is_alive(),
            ended=self._ended,
            frames=0 if frame is None else frame.seq,
            grab_failures=self._failures,
            consecutive_failures=self._consecutive_failures,
            duplicates=self._duplicates,
            dropped=self._dropped,
            last_error=self._last_error,
            last_frame_age_ms=age_ns / 1e6,
            stale=stale,
        )

    def wait_for_frame(self, timeout_s: float, newer_than_seq: int = 0) -> bool:
        """Wait (polling every millisecond) until a frame newer than ``newer_than_seq`` exists."""
        deadline = time.monotonic() + timeout_s
        while self.seq <= newer_than_seq:
            if time.monotonic() >= deadline or self._ended:
                return self.seq > newer_than_seq
            if self._thread is not None and not self._thread.is_alive():
                return self.seq > newer_than_seq
            time.sleep(1e-3)
        return True

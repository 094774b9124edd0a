"""Recorded-sensor backend: plays a recording (see :mod:`hal.playback.recording`) back at its
original timing, through the same grab thread (:class:`~hal.devices.grab_loop.GrabLoop`) and device
classes (:class:`~hal.devices.threaded.ThreadedDepthCamera`, ``ThreadedImu``) as the live ZED.

Timing: a :class:`PlaybackClock` maps recording time onto this machine's monotonic clock from the
moment playback starts (``host = start + (t - t0) / speed``); camera and IMU share one clock so
they stay in step. Each sample is released at its mapped time and stamped with it, so the server's
staleness checks work as with a live sensor. A source that falls behind skips to the newest due
sample (a real camera does not queue old frames) and counts the skipped ones. At the end the
recording either loops (the next lap is shifted by the recording's length plus one frame period)
or ends, after which the data goes stale like a stalled camera.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np

from hal.config.fields import setting
from hal.devices.base import DeviceError
from hal.devices.grab_loop import FrameSource, GrabError, SourceExhausted
from hal.playback.recording import Recording, load_recording
from hal.devices.threaded import DepthFrameSource, ThreadedDepthCamera, ThreadedImu

__all__ = [
    "RecordedConfig",
    "PlaybackClock",
    "RecordedSource",
    "RecordedDepthSource",
    "RecordedDepthCamera",
    "RecordedImu",
    "make_recorded_devices",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordedConfig:
    """Playback settings.

    Attributes:
        speed: Playback rate relative to the original (2.0 plays twice as fast).
        recording: The recording file (the registered ``recorded`` camera plays it).
        loop: Start over at the end instead of ending.
        stale_after_ms: Depth older than this is stale.
        imu_stale_after_ms: IMU samples older than this are stale.
    """

    section: ClassVar[str] = "recorded"
    title: ClassVar[str] = "recorded sensors (--camera recorded)"

    speed: float = 1.0
    loop: bool = setting(False, flag="--loop-recording",
                         help="start the recording over at its end instead of ending")
    stale_after_ms: float = 200.0
    imu_stale_after_ms: float = 50.0
    recording: Path | None = setting(None, metavar="PATH",
                                     help="a sensor recording (.npz, hal.playback.recording): "
                                          "--camera recorded plays it; krabby-hal-doctor checks "
                                          "the camera/IMU path on it")

    def __post_init__(self) -> None:
        for name in ("speed", "stale_after_ms", "imu_stale_after_ms"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"RecordedConfig.{name} must be a positive number, got {value!r}")


class PlaybackClock:
    """Maps recording timestamps onto the host's monotonic clock; started once, shared.

    Args:
        recording_origin_ns: The recording time that plays at the start instant.
        speed: Playback rate.
        clock_ns: Host clock (``time.monotonic_ns``); tests inject one.
    """

    def __init__(self, recording_origin_ns: int, speed: float = 1.0,
                 clock_ns: Callable[[], int] = time.monotonic_ns) -> None:
        if not speed > 0:
            raise ValueError(f"playback speed must be positive, got {speed}")
        self.recording_origin_ns = int(recording_origin_ns)
        self.speed = float(speed)
        self.clock_ns = clock_ns
        self._start_ns: int | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Fix the start instant now (only the first call counts)."""
        with self._lock:
            if self._start_ns is None:
                self._start_ns = self.clock_ns()

    @property
    def started(self) -> bool:
        return self._start_ns is not None

    def host_time_ns(self, recording_ns: int) -> int:
        """When (host monotonic ns) the sample recorded at ``recording_ns`` plays."""
        if self._start_ns is None:
            raise RuntimeError("PlaybackClock.host_time_ns() before start()")
        return self._start_ns + int(round((int(recording_ns) - self.recording_origin_ns) / self.speed))


class RecordedSource(FrameSource):
    """Releases the samples of one recorded stream at their mapped times.

    ``samples[i]`` is one frame (a depth image, an IMU vector). ``wait_s(seconds) -> interrupted``
    is how it waits: an interruptible event wait by default; tests inject one that advances a fake
    clock.
    """

    def __init__(self, timestamps_ns: np.ndarray, samples: np.ndarray, clock: PlaybackClock,
                 lap_ns: int | None = None, wait_s: Callable[[float], bool] | None = None) -> None:
        if len(timestamps_ns) == 0 or len(timestamps_ns) != len(samples):
            raise ValueError(f"need as many samples as timestamps (>0), got {len(samples)} and {len(timestamps_ns)}")
        if lap_ns is not None and lap_ns <= int(timestamps_ns[-1] - timestamps_ns[0]):
            span = int(timestamps_ns[-1] - timestamps_ns[0])
            raise ValueError(f"lap_ns {lap_ns} must exceed the stream's span {span}")
        self.timestamps_ns = np.asarray(timestamps_ns, dtype=np.int64)
        self.samples = samples
        self.clock = clock
        self.lap_ns = lap_ns
        self._wake = threading.Event()
        self._wait_s = wait_s or self._wake.wait
        self._next = 0
        self._lap = 0
        self.skipped = 0  # samples passed over because the player fell behind
        self.delivered = 0

    def open(self) -> tuple[tuple[int, ...], np.dtype]:
        self.clock.start()
        return tuple(self.samples.shape[1:]), self.samples.dtype

    def _due_ns(self, index: int, lap: int) -> int:
        offset = 0 if self.lap_ns is None else lap * self.lap_ns
        return self.clock.host_time_ns(int(self.timestamps_ns[index]) + offset)

    def _advance(self, index: int, lap: int) -> tuple[int, int] | None:
        """The position after ``(index, lap)``, or None at the end of a non-looping stream."""
        index += 1
        if index < len(self.timestamps_ns):
            return index, lap
        return None if self.lap_ns is None else (0, lap + 1)

    def grab(self, out: np.ndarray) -> int:
        if self._next >= len(self.timestamps_ns):
            if self.lap_ns is None:
                raise SourceExhausted()
            self._next, self._lap = 0, self._lap + 1
        index, lap = self._next, self._lap
        now = self.clock.clock_ns()
        # Behind schedule: pass over every sample whose successor is already due.
        while True:
            nxt = self._advance(index, lap)
            if nxt is None or self._due_ns(*nxt) > now:
                break
            index, lap = nxt
            self.skipped += 1
        due = self._due_ns(index, lap)
        while (remaining := due - self.clock.clock_ns()) > 0:
            if self._wait_s(remaining / 1e9):
                raise GrabError("playback interrupted")
        out[...] = self.samples[index]
        self._next, self._lap = index + 1, lap
        self.delivered += 1
        return due

    def interrupt(self) -> None:
        self._wake.set()

    def close(self) -> None:
        pass


class RecordedDepthSource(RecordedSource, DepthFrameSource):
    """The depth stream of a recording, with its intrinsics."""

    def __init__(self, recording: Recording, clock: PlaybackClock, lap_ns: int | None) -> None:
        RecordedSource.__init__(self, recording.depth_timestamp_ns, recording.depth_m, clock, lap_ns)
        self._intrinsics = recording.intrinsics

    @property
    def intrinsics(self):
        return self._intrinsics


def _lap_ns(recording: Recording, loop: bool) -> int | None:
    """Length of one playback lap: the recording's span plus one depth frame period."""
    if not loop:
        return None
    stamps = [recording.depth_timestamp_ns]
    if recording.n_imu:
        stamps.append(recording.imu_timestamp_ns)
    first = min(int(s[0]) for s in stamps)
    last = max(int(s[-1]) for s in stamps)
    period = int(np.median(np.diff(recording.depth_timestamp_ns))) if recording.n_frames > 1 else 100_000_000
    return last - first + period


def _origin_ns(recording: Recording) -> int:
    first = int(recording.depth_timestamp_ns[0])
    return min(first, int(recording.imu_timestamp_ns[0])) if recording.n_imu else first


def _as_recording(recording: Recording | str | Path) -> Recording:
    return recording if isinstance(recording, Recording) else load_recording(recording)


class RecordedDepthCamera(ThreadedDepthCamera):
    """A :class:`~hal.devices.base.DepthCamera` that plays a recording's depth frames.

    Args:
        recording: A :class:`~hal.playback.recording.Recording` or the path of one.
        config: Playback settings.
        clock: Share a clock with a :class:`RecordedImu` (see :func:`make_recorded_devices`).
    """

    def __init__(self, recording: Recording | str | Path, config: RecordedConfig | None = None,
                 clock: PlaybackClock | None = None) -> None:
        self.recording = _as_recording(recording)
        self.config = config or RecordedConfig()
        self.clock = clock or PlaybackClock(_origin_ns(self.recording), self.config.speed)
        super().__init__("recorded-depth", self.config.stale_after_ms, first_frame_timeout_ms=0)

    def _make_source(self) -> RecordedDepthSource:
        return RecordedDepthSource(self.recording, self.clock, _lap_ns(self.recording, self.config.loop))


class RecordedImu(ThreadedImu):
    """An :class:`~hal.devices.base.Imu` that plays a recording's IMU samples."""

    def __init__(self, recording: Recording | str | Path, config: RecordedConfig | None = None,
                 clock: PlaybackClock | None = None) -> None:
        self.recording = _as_recording(recording)
        self.config = config or RecordedConfig()
        self.clock = clock or PlaybackClock(_origin_ns(self.recording), self.config.speed)
        # connect() waits for the first sample, which may be recorded after the first frame.
        first_ms = 0.0
        if self.recording.n_imu:
            first_ms = (int(self.recording.imu_timestamp_ns[0]) - _origin_ns(self.recording)) / 1e6 / self.config.speed
        super().__init__("recorded-imu", self.config.imu_stale_after_ms, first_sample_timeout_ms=first_ms + 1000.0)

    def _make_source(self) -> RecordedSource:
        if self.recording.n_imu == 0:
            raise DeviceError(f"recording ({self.recording.source or 'unnamed'}) holds no IMU samples")
        return RecordedSource(self.recording.imu_timestamp_ns, self.recording.imu_samples(), self.clock,
                              _lap_ns(self.recording, self.config.loop))


def make_recorded_devices(recording: Recording | str | Path, config: RecordedConfig | None = None,
                          ) -> tuple[RecordedDepthCamera, RecordedImu]:
    """A depth camera and an IMU playing one recording on one shared clock."""
    recording = _as_recording(recording)
    config = config or RecordedConfig()
    clock = PlaybackClock(_origin_ns(recording), config.speed)
    return RecordedDepthCamera(recording, config, clock), RecordedImu(recording, config, clock)

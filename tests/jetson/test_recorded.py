"""Recording file format and the recorded backend: frames and IMU samples come back at their
original timing, through the same grab thread as the live camera."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from hal.devices.base import CameraIntrinsics
from hal.devices.grab_loop import SourceExhausted
from hal.playback.devices import (
    PlaybackClock,
    RecordedConfig,
    RecordedDepthCamera,
    RecordedImu,
    RecordedSource,
    make_recorded_devices,
)
from hal.playback.recording import Recording, RecordingError, load_recording, write_recording

SIM_RECORDING = Path(__file__).resolve().parents[1] / "data" / "sim_recording.npz"
INTR = CameraIntrinsics(width=8, height=4, fx=4.0, fy=4.0, cx=3.5, cy=1.5)


def make_recording(n_frames: int = 5, period_ms: float = 40.0, n_imu: int = 20, imu_period_ms: float = 10.0,
                   t0_ns: int = 5_000_000_000) -> Recording:
    rng = np.random.default_rng(1)
    depth = rng.uniform(0.3, 3.0, (n_frames, 4, 8)).astype(np.float32)
    depth[0, 0, :4] = [np.nan, -np.inf, np.inf, 0.0]  # the ZED's invalid markers
    quat = np.tile([1.0, 0.0, 0.0, 0.0], (n_imu, 1))
    return Recording(
        depth_m=depth,
        depth_timestamp_ns=t0_ns + (np.arange(n_frames) * period_ms * 1e6).astype(np.int64),
        intrinsics=INTR,
        imu_timestamp_ns=t0_ns + 2_000_000 + (np.arange(n_imu) * imu_period_ms * 1e6).astype(np.int64),
        imu_quaternion_wxyz=quat,
        imu_angular_velocity_rad_s=rng.normal(size=(n_imu, 3)),
        imu_linear_acceleration_m_s2=rng.normal(size=(n_imu, 3)) + [0, 0, 9.81],
        source="synthetic",
    )


class FakeTime:
    """A host clock that only moves when the player waits (or a test moves it)."""

    def __init__(self, now_ns: int = 0) -> None:
        self.now_ns = now_ns
        self.waits: list[float] = []

    def clock(self) -> int:
        return self.now_ns

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now_ns += int(round(seconds * 1e9))
        return False


# -- file format --------------------------------------------------------------------------------

def test_write_then_load_round_trips_every_array(tmp_path):
    rec = make_recording()
    path = write_recording(tmp_path / "rec", rec)
    assert path.suffix == ".npz"
    back = load_recording(path)
    assert back.source == "synthetic" and back.intrinsics == INTR
    np.testing.assert_array_equal(back.depth_m, rec.depth_m)  # NaN and infinities included
    for name in ("depth_timestamp_ns", "imu_timestamp_ns", "imu_quaternion_wxyz",
                 "imu_angular_velocity_rad_s", "imu_linear_acceleration_m_s2"):
        np.testing.assert_array_equal(getattr(back, name), getattr(rec, name))
    with np.load(path, allow_pickle=False) as raw:  # plain arrays only
        assert all(raw[name].dtype != object for name in raw.files)


def test_load_rejects_files_that_are_not_recordings(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, depth_m=np.zeros((1, 2, 2), np.float32))
    with pytest.raises(RecordingError, match="missing array"):
        load_recording(bad)
    rec = make_recording()
    path = write_recording(tmp_path / "v.npz", rec)
    with np.load(path) as raw:
        arrays = dict(raw)
    arrays["format_version"] = np.array(99)
    np.savez(tmp_path / "v99.npz", **arrays)
    with pytest.raises(RecordingError, match="version 99"):
        load_recording(tmp_path / "v99.npz")


def test_recording_validation_names_the_bad_array():
    rec = make_recording()
    with pytest.raises(RecordingError, match="depth_timestamp_ns must increase strictly"):
        Recording(rec.depth_m, rec.depth_timestamp_ns[::-1].copy(), INTR, rec.imu_timestamp_ns,
                  rec.imu_quaternion_wxyz, rec.imu_angular_velocity_rad_s, rec.imu_linear_acceleration_m_s2)
    with pytest.raises(RecordingError, match="intrinsics are for 16x4"):
        Recording(rec.depth_m, rec.depth_timestamp_ns, CameraIntrinsics(16, 4, 4.0, 4.0, 8, 2),
                  rec.imu_timestamp_ns, rec.imu_quaternion_wxyz, rec.imu_angular_velocity_rad_s,
                  rec.imu_linear_acceleration_m_s2)
    with pytest.raises(RecordingError, match="imu_quaternion_wxyz must be float64"):
        Recording(rec.depth_m, rec.depth_timestamp_ns, INTR, rec.imu_timestamp_ns, rec.imu_quaternion_wxyz[:, :3],
                  rec.imu_angular_velocity_rad_s, rec.imu_linear_acceleration_m_s2)


def test_the_shipped_simulator_recording_is_valid_and_small():
    rec = load_recording(SIM_RECORDING)
    assert SIM_RECORDING.stat().st_size < 2_000_000
    assert rec.frame_shape == (60, 106) and 20 <= rec.n_frames <= 40 and rec.n_imu > rec.n_frames
    assert rec.source.startswith("mujoco")
    # The robot stands: gravity reaction ~ +9.81 up on average.
    assert rec.imu_linear_acceleration_m_s2[:, 2].mean() == pytest.approx(9.81, abs=1.0)


# -- playback timing (deterministic clock) ------------------------------------------------------

def test_samples_are_released_at_their_mapped_original_times():
    rec = make_recording()
    fake = FakeTime(now_ns=777)
    clock = PlaybackClock(int(rec.depth_timestamp_ns[0]), speed=2.0, clock_ns=fake.clock)
    source = RecordedSource(rec.depth_timestamp_ns, rec.depth_m, clock, wait_s=fake.wait)
    assert source.open() == ((4, 8), np.float32)
    out = np.empty((4, 8), np.float32)
    for i in range(rec.n_frames):
        stamp = source.grab(out)
        # Independent: start + (t_i - t_0) / speed.
        assert stamp == 777 + (int(rec.depth_timestamp_ns[i]) - int(rec.depth_timestamp_ns[0])) // 2
        assert fake.now_ns >= stamp  # never released early
        np.testing.assert_array_equal(out, rec.depth_m[i])
    with pytest.raises(SourceExhausted):
        source.grab(out)
    assert source.skipped == 0 and source.delivered == rec.n_frames


def test_a_player_that_falls_behind_skips_to_the_newest_due_sample():
    rec = make_recording(n_frames=6, period_ms=40)
    fake = FakeTime()
    clock = PlaybackClock(int(rec.depth_timestamp_ns[0]), clock_ns=fake.clock)
    source = RecordedSource(rec.depth_timestamp_ns, rec.depth_m, clock, wait_s=fake.wait)
    source.open()
    out = np.empty((4, 8), np.float32)
    assert source.grab(out) == 0
    fake.now_ns = 130_000_000  # frames 1..3 are due (40, 80, 120 ms); 3 is the newest
    assert source.grab(out) == 120_000_000
    np.testing.assert_array_equal(out, rec.depth_m[3])
    assert source.skipped == 2
    assert source.grab(out) == 160_000_000


def test_looping_shifts_each_lap_by_the_span_plus_one_period():
    rec = make_recording(n_frames=3, period_ms=50)
    fake = FakeTime()
    clock = PlaybackClock(int(rec.depth_timestamp_ns[0]), clock_ns=fake.clock)
    lap = 100_000_000 + 50_000_000
    source = RecordedSource(rec.depth_timestamp_ns, rec.depth_m, clock, lap_ns=lap, wait_s=fake.wait)
    source.open()
    out = np.empty((4, 8), np.float32)
    stamps = [source.grab(out) for _ in range(7)]
    assert stamps == [0, 50e6, 100e6, 150e6, 200e6, 250e6, 300e6]
    np.testing.assert_array_equal(out, rec.depth_m[0])  # frame 6 is lap 2, frame 0


def test_camera_and_imu_share_one_clock_origin():
    rec = make_recording()
    camera, imu = make_recorded_devices(rec)
    assert camera.clock is imu.clock
    assert camera.clock.recording_origin_ns == int(rec.depth_timestamp_ns[0])  # depth starts first here


# -- the device classes, on the real clock and grab thread -------------------------------------

def test_recorded_camera_delivers_every_frame_at_its_original_timing():
    rec = load_recording(SIM_RECORDING)
    speed = 4.0
    camera = RecordedDepthCamera(rec, RecordedConfig(speed=speed, stale_after_ms=100))
    with camera:
        assert camera.frame_shape == rec.frame_shape and camera.intrinsics == rec.intrinsics
        # Independent schedule: frame i plays at start + (t_i - t_0) / speed.
        start = camera.clock.host_time_ns(int(rec.depth_timestamp_ns[0]))
        schedule = {start + int(round((int(t) - int(rec.depth_timestamp_ns[0])) / speed)): i
                    for i, t in enumerate(rec.depth_timestamp_ns)}
        out = np.empty(camera.frame_shape, np.float32)
        seq, played = 0, []
        deadline = time.monotonic() + 30
        while not (camera.health().ended and camera.read_into(out, seq) is None):
            assert time.monotonic() < deadline
            info = camera.read_into(out, seq)
            if info is None:
                time.sleep(0.001)
                continue
            assert time.monotonic_ns() >= info.timestamp_ns  # never handed out early
            assert info.timestamp_ns in schedule
            index = schedule[info.timestamp_ns]
            np.testing.assert_array_equal(out, rec.depth_m[index])
            played.append(index)
            seq = info.seq
        health = camera.health()
        assert health.ended and health.frames == rec.n_frames and health.grab_failures == 0
        assert played == sorted(played) and played[-1] == rec.n_frames - 1
        # The recording is over: the camera reports stale data, never an error.
        while not camera.stale:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert camera.read_into(out, seq) is None


def test_a_camera_that_stalls_goes_stale_and_recovers_without_errors():
    """Frames stop for 1.5 s mid-recording (a stalled camera): the same seq stays newest and turns
    stale; when frames resume the camera is fresh again. Nothing raises."""
    ms = 1_000_000
    stamps = np.array([0, 30, 60] + [1500 + 30 * k for k in range(8)], dtype=np.int64) * ms
    base = make_recording(n_frames=len(stamps))
    rec = Recording(base.depth_m, stamps + 10**9, INTR, base.imu_timestamp_ns, base.imu_quaternion_wxyz,
                    base.imu_angular_velocity_rad_s, base.imu_linear_acceleration_m_s2)
    camera = RecordedDepthCamera(rec, RecordedConfig(stale_after_ms=150))
    samples = []  # (seq of the newest frame, stale)
    with camera:
        deadline = time.monotonic() + 20
        while not camera.health().ended:
            assert time.monotonic() < deadline
            health = camera.health()
            samples.append((health.frames, health.stale))
            time.sleep(0.005)
        assert camera.health().grab_failures == 0
    assert any(seq == 3 and stale for seq, stale in samples)  # stalled on frame 3 and reported stale
    assert any(seq > 3 and not stale for seq, stale in samples)  # fresh again once frames resume


def test_recorded_imu_plays_samples_in_order_with_their_values():
    rec = make_recording(n_imu=30, imu_period_ms=5)
    imu = RecordedImu(rec, RecordedConfig(imu_stale_after_ms=20))
    with imu:
        start = imu.clock.host_time_ns(int(rec.imu_timestamp_ns[0]))
        last = -1
        deadline = time.monotonic() + 10
        while not imu.health().ended:
            assert time.monotonic() < deadline
            sample = imu.read()
            index = int(round((sample.timestamp_ns - start) / 5e6))
            assert sample.timestamp_ns == imu.clock.host_time_ns(int(rec.imu_timestamp_ns[index]))
            assert index >= last
            last = index
            np.testing.assert_array_equal(sample.angular_velocity_rad_s, rec.imu_angular_velocity_rad_s[index])
            np.testing.assert_array_equal(sample.linear_acceleration_m_s2, rec.imu_linear_acceleration_m_s2[index])
            time.sleep(0.002)
        assert imu.read().timestamp_ns == imu.clock.host_time_ns(int(rec.imu_timestamp_ns[-1]))


def test_invalid_depth_markers_reach_the_caller_unchanged():
    rec = make_recording()
    camera = RecordedDepthCamera(rec)
    with camera:
        out = np.zeros((4, 8), np.float32)
        info = camera.read_into(out)
        deadline = time.monotonic() + 5
        while info is None:
            assert time.monotonic() < deadline
            time.sleep(0.001)
            info = camera.read_into(out)
        assert info.seq == 1
        assert np.isnan(out[0, 0]) and out[0, 1] == -np.inf and out[0, 2] == np.inf and out[0, 3] == 0.0


def test_read_into_rejects_a_buffer_of_the_wrong_shape_or_dtype():
    camera = RecordedDepthCamera(make_recording())
    with camera:
        with pytest.raises(ValueError, match=r"float32 array of shape \(4, 8\)"):
            camera.read_into(np.empty((4, 9), np.float32))
        with pytest.raises(ValueError, match="float64"):
            camera.read_into(np.empty((4, 8), np.float64))


def test_recorded_imu_without_samples_fails_to_connect_clearly():
    rec = make_recording()
    empty = Recording(rec.depth_m, rec.depth_timestamp_ns, INTR, np.zeros(0, np.int64), np.zeros((0, 4)),
                      np.zeros((0, 3)), np.zeros((0, 3)), source="depth only")
    with pytest.raises(Exception, match="holds no IMU samples"):
        RecordedImu(empty).connect()

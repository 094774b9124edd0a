"""A recorder that cannot keep up drops records and counts them; the loop never waits for it."""

from __future__ import annotations

from .sim_helpers import make_sim_server
from hal.recorder import FileRecorder, FileRecorderConfig, RecorderTap, layouts_for, read_log


def _ticks_with(go2, tmp_path, config: FileRecorderConfig, n_ticks: int, frames=None):
    server, _ = make_sim_server(go2, rate_hz=50.0, realtime=False, budget_ms=0.2)
    if frames is not None:
        server.tick_listeners.append(
            lambda r: frames.append(r.new_depth.copy()) if r.new_depth is not None else None)
    server.start()
    layouts = layouts_for(go2, frame_shape=server.devices.camera.frame_shape)
    recorder = FileRecorder(tmp_path / "drops.mcap", layouts, {"robot": go2.name}, config,
                            server.safety)
    tap = RecorderTap(layouts, [recorder])
    tap.attach(server)
    try:
        # The writer thread is not started: nothing leaves the queue while the loop runs.
        report = server.run(max_ticks=n_ticks)
        recorder.start()
    finally:
        server.close()
        recorder.close()
    return report, tap, recorder


def test_full_queue_drops_and_counts(go2, tmp_path):
    report, tap, recorder = _ticks_with(go2, tmp_path, FileRecorderConfig(queue_size=4), 40)
    assert report["cycles"] == 40
    assert tap.costs["tick"].count == 40  # every listener call returned
    stats = recorder.stats()
    assert stats["written"]["tick"] == 4 and stats["dropped"]["tick"] == 36
    log = read_log(tmp_path / "drops.mcap")
    assert log.ticks.column("seq").tolist() == [1, 2, 3, 4]
    assert log.recorder["dropped"]["tick"] == 36


def test_exhausted_rows_drop_and_count(go2, tmp_path):
    config = FileRecorderConfig(queue_size=100, tick_rows=3, record_frames=True, frame_rows=2)
    seen: list = []
    report, _, recorder = _ticks_with(go2, tmp_path, config, 30, seen)
    stats = recorder.stats()
    assert stats["written"]["tick"] == 3 and stats["dropped"]["tick"] == 27
    frames = report["counters"]["depth_frames"]
    assert frames > 2
    assert stats["written"]["frame"] == 2 and stats["dropped"]["frame"] == frames - 2
    log = read_log(tmp_path / "drops.mcap")
    assert [seq for seq, _, _ in log.frames] == [1, 2]
    for (_, _, frame), original in zip(log.frames, seen):  # the frames as the HAL wrote them
        assert frame.dtype == original.dtype and frame.shape == original.shape
        assert frame.tobytes() == original.tobytes()

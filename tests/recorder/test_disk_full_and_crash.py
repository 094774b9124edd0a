"""The recorder under a full disk and a killed process.

A disk about to fill stops the log cleanly (readable, later records dropped and counted); a write
that fails anyway (an injected ENOSPC) is one log line, the file cut back to its last complete
flush; a flight dump that cannot be written leaves no ``.part``; a log whose process was killed
with SIGKILL reads without ``--partial``, and "written" counts only records in the file.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from hal.recorder import FileRecorder, FileRecorderConfig, RecorderTap, layouts_for, read_log
from hal.recorder import log_writer
from hal.recorder.flight import FlightRecorder, FlightRecorderConfig
from hal.recorder.replay import main as replay_main

from .sim_helpers import make_sim_server

MIB = 1 << 20


def _record(go2, path, config, n_ticks, free_bytes=None, realtime=False):
    server, _ = make_sim_server(go2, rate_hz=50.0, realtime=realtime, budget_ms=0.2)
    server.start()
    layouts = layouts_for(go2, frame_shape=server.devices.camera.frame_shape)
    recorder = FileRecorder(path, layouts, {"robot": go2.name}, config, server.safety,
                            free_bytes=free_bytes)
    RecorderTap(layouts, [recorder]).attach(server)
    recorder.start()
    try:
        server.safety.request_start(run_policy=False)
        report = server.run(max_ticks=n_ticks)
    finally:
        server.close()
        recorder.close()
    return report, recorder


def test_log_stops_cleanly_before_the_disk_fills(go2, tmp_path, caplog):
    path = tmp_path / "run.mcap"
    config = FileRecorderConfig(flush_interval_s=0.05, poll_interval_s=0.01,
                                min_free_bytes=100 * MIB, chunk_size=16 * 1024)
    # The disk "fills" as the log grows: 100 MiB + 20 KiB free at the start.
    start_free = 100 * MIB + 20 * 1024

    def free_bytes(_directory):
        return start_free - (path.stat().st_size if path.exists() else 0)

    with caplog.at_level(logging.ERROR, logger="hal.recorder.file_recorder"):
        report, recorder = _record(go2, path, config, 150, free_bytes, realtime=True)
    assert report["cycles"] == 150  # the loop never noticed
    stats = recorder.stats()
    assert stats["stopped"].startswith("disk almost full")
    assert stats["dropped"]["tick"] > 0
    log = read_log(path)  # finished cleanly: no --partial, not even unclosed
    assert not log.unclosed and log.damage is None
    assert len(log.ticks) == stats["written"]["tick"] > 0
    assert len(log.ticks) + stats["dropped"]["tick"] == 150
    assert log.recorder["stopped"] == stats["stopped"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None


def test_a_recorder_refuses_to_start_on_a_full_disk(go2, tmp_path):
    server, _ = make_sim_server(go2)
    layouts = layouts_for(go2, frame_shape=(60, 106))
    with pytest.raises(OSError, match="MiB free, below the 256 MiB"):
        FileRecorder(tmp_path / "x.mcap", layouts, {}, FileRecorderConfig(), server.safety,
                     free_bytes=lambda _: 10 * MIB)
    assert not (tmp_path / "x.mcap").exists()


@pytest.fixture
def disk_full_after(monkeypatch):
    """Injected ENOSPC: log files accept ``limit`` bytes in all, then every write fails (with
    the bytes that fit written first, as a real full disk does)."""
    state = {"limit": None, "written": 0}
    real_write = log_writer._WholeWriteFile.write

    def write(self, data):
        limit = state["limit"]
        if limit is not None:
            room = limit - state["written"]
            if len(data) > room:
                if room > 0:
                    self._file.write(bytes(data[:room]))
                    state["written"] += room
                raise OSError(errno.ENOSPC, "No space left on device")
        state["written"] += len(data)
        return real_write(self, data)

    monkeypatch.setattr(log_writer._WholeWriteFile, "write", write)
    return state


def test_write_error_is_one_line_and_the_file_keeps_its_flushed_records(
        go2, tmp_path, caplog, disk_full_after):
    path = tmp_path / "run.mcap"
    disk_full_after["limit"] = 40 * 1024
    config = FileRecorderConfig(flush_interval_s=0.05, poll_interval_s=0.01, min_free_bytes=0,
                                chunk_size=8 * 1024)
    with caplog.at_level(logging.ERROR):
        report, recorder = _record(go2, path, config, 150, realtime=True)
    assert report["cycles"] == 150
    stats = recorder.stats()
    assert "No space left" in stats["stopped"] and "No space left" in stats["error"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None
    assert "\n" not in errors[0].getMessage()
    assert path.stat().st_size <= 40 * 1024
    log = read_log(path)  # cut back to a record boundary: an unclosed log, no --partial
    assert log.unclosed and log.damage is None
    # "written" counted only what reached the file.
    assert len(log.ticks) == stats["written"]["tick"] > 0
    assert stats["written"]["tick"] + stats["dropped"]["tick"] <= 150


def test_a_flight_dump_on_a_full_disk_leaves_no_part_file(go2, tmp_path, caplog,
                                                          disk_full_after):
    server, _ = make_sim_server(go2, rate_hz=50.0, realtime=False, budget_ms=0.2)
    server.start()
    layouts = layouts_for(go2, frame_shape=server.devices.camera.frame_shape)
    flight = FlightRecorder(layouts, {"robot": go2.name}, 50.0, 10.0,
                            FlightRecorderConfig(window_s=2.0, directory=tmp_path / "flight"),
                            server.safety)
    RecorderTap(layouts, [flight]).attach(server)
    try:
        server.run(max_ticks=100)
    finally:
        server.close()
    for limit in (0, 3000):  # nothing fits; the header fits but not the rows
        disk_full_after["written"], disk_full_after["limit"] = 0, limit
        with caplog.at_level(logging.ERROR):
            flight._safe_dump("test")
    assert flight.failures == 2 and flight.dumps == []
    assert list((tmp_path / "flight").iterdir()) == []  # no .part, no 0-byte file
    errors = [r for r in caplog.records if "dump (test) failed" in r.getMessage()]
    assert len(errors) == 2 and all(r.exc_info is None for r in errors)
    disk_full_after["limit"] = None
    assert flight.dump("after") is not None  # space again: dumps work


def test_a_log_cut_by_kill_9_reads_and_replays_without_partial(exported_policy, tmp_path,
                                                               capsys):
    path = tmp_path / "killed.mcap"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hal.server.sim.main", "--engine", str(exported_policy),
         "--duration", "60", "--control_rate", "50", "--estop_bind", "none", "--record",
         str(path), "--flight-recorder-s", "0", "--log-level", "WARNING"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        # Wait for a few flushes (about one a second) into the policy's run.
        while time.monotonic() < deadline and (not path.exists()
                                               or path.stat().st_size < 150 * 1024):
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.2)
        time.sleep(1.5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    log = read_log(path)
    assert log.unclosed and log.damage is None and log.recorder is None
    assert len(log.ticks) >= 100 and len(log.actor) >= 50
    # krabby-replay takes it without --partial (exit 2 would be a log it cannot read; whether
    # the actions reproduce, exit 0 or 1, is test_record_replay's business).
    capsys.readouterr()
    assert replay_main([str(path), "--engine", str(exported_policy)]) in (0, 1)
    err = capsys.readouterr().err
    assert "was not closed by its writer" in err and "partial" not in err

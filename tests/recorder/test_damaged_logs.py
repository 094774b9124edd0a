"""Truncated and corrupted logs: a clear error naming the byte offset, never a traceback."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from mcap.writer import Writer

from .sim_helpers import make_sim_server
from hal.recorder import LogFormatError, RecordingSession, read_log
from hal.recorder.file_recorder import FileRecorderConfig
from hal.recorder.replay import main as replay_main


@pytest.fixture(scope="module")
def small_log(go2, tmp_path_factory):
    """A real log of 200 sim ticks with raw frames, in several chunks (one per ~40 ticks)."""
    path = tmp_path_factory.mktemp("damaged") / "run.mcap"
    server, _ = make_sim_server(go2, rate_hz=50.0, realtime=False, budget_ms=0.2)
    session = RecordingSession(path, flight_window_s=0, file_config=FileRecorderConfig(
        record_frames=True, chunk_size=64 * 1024))
    try:
        server.start()
        session.attach(server, None)
        server.safety.request_start(run_policy=False)
        server.run(max_ticks=200)
    finally:
        server.close()
        session.close()
    return path


def _damaged(src, dst, data: bytes):
    dst.write_bytes(data)
    return dst


@pytest.mark.parametrize("fraction", [0.0005, 0.3, 0.6, 0.999])
def test_truncated_log_names_the_offset(small_log, tmp_path, fraction, capsys):
    data = small_log.read_bytes()
    cut = max(1, int(len(data) * fraction))
    bad = _damaged(small_log, tmp_path / "cut.mcap", data[:cut])
    with pytest.raises(LogFormatError) as info:
        read_log(bad)
    err = info.value
    assert 0 <= err.offset <= cut and f"byte offset {err.offset}" in str(err)
    assert str(bad) in str(err)
    assert replay_main([str(bad), "--engine", "model.onnx"]) == 2
    stderr = capsys.readouterr().err
    assert "byte offset" in stderr and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_partial_read_keeps_what_precedes_the_cut(small_log, tmp_path):
    full = read_log(small_log)
    data = small_log.read_bytes()
    bad = _damaged(small_log, tmp_path / "cut.mcap", data[: int(len(data) * 0.6)])
    part = read_log(bad, allow_partial=True)
    assert part.damage is not None and part.recorder is None  # the writer's close never came
    n = len(part.ticks)
    assert 0 < n < len(full.ticks)
    np.testing.assert_array_equal(part.ticks.ints, full.ticks.ints[:n])
    np.testing.assert_array_equal(part.ticks.floats, full.ticks.floats[:n])
    for (seq, _, frame), (seq_full, _, frame_full) in zip(part.frames, full.frames):
        assert seq == seq_full and frame.tobytes() == frame_full.tobytes()


def test_flipped_bytes_are_detected(small_log, tmp_path, capsys):
    data = small_log.read_bytes()
    # Footer: opcode, length, summary_start (u64), summary_offset_start, crc; then the magic.
    summary_start = struct.unpack_from("<Q", data, len(data) - 8 - 29 + 9)[0]
    bad = tmp_path / "flipped.mcap"
    # Positions across the data section: chunk headers and payloads, message indexes.
    for at in np.linspace(200, summary_start - 8, 15).astype(int):
        damaged = bytearray(data)
        for i in range(at, at + 4):
            damaged[i] ^= 0xFF
        bad.write_bytes(bytes(damaged))
        with pytest.raises(LogFormatError) as info:
            read_log(bad)
        assert f"byte offset {info.value.offset}" in str(info.value)
        assert info.value.offset <= summary_start  # in the data section, where the damage is
    assert replay_main([str(bad), "--plot", str(tmp_path / "x.png")]) == 2
    stderr = capsys.readouterr().err
    assert "byte offset" in stderr and "Traceback" not in stderr


def test_not_a_krabby_log(tmp_path, capsys):
    text = tmp_path / "notes.mcap"
    text.write_text("hello, this is not MCAP\n")
    with pytest.raises(LogFormatError, match="not an MCAP file"):
        read_log(text)
    other = tmp_path / "other.mcap"
    with open(other, "wb") as stream:  # a valid MCAP from some other program
        writer = Writer(stream)
        writer.start()
        writer.finish()
    with pytest.raises(LogFormatError, match="not a krabby flight log"):
        read_log(other)
    assert replay_main([str(tmp_path / "missing.mcap"), "--plot", "x.png"]) == 2
    assert "no such file" in capsys.readouterr().err

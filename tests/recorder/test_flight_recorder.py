"""The always-on flight recorder: a fault dumps the last seconds to a file a log line names; a
request (API or SIGUSR1) does too; memory stays what was allocated."""

from __future__ import annotations

import logging
import os
import signal
import time

import numpy as np
import pytest

from .sim_helpers import make_sim_server
from hal.recorder import FlightRecorderConfig, RecordingSession, read_log


def _run_until(server, predicate, max_ticks: int = 400) -> None:
    for _ in range(max_ticks):
        server.tick()
        if predicate():
            return
    raise AssertionError("condition not reached")


def test_estop_dumps_the_window_and_names_the_file(go2, tmp_path, caplog):
    server, _ = make_sim_server(go2, rate_hz=50.0, realtime=False, budget_ms=0.2)
    session = RecordingSession(flight_window_s=1.0, flight_dir=tmp_path / "flight",
                               flight_config=FlightRecorderConfig(
                                   window_s=1.0, directory=tmp_path / "flight",
                                   post_trigger_s=0.0))
    caplog.set_level(logging.WARNING, logger="hal.recorder.flight")
    try:
        server.start()
        session.attach(server, None)
        rings = {k: (r.floats, r.ints) for k, r in session.flight._rings.items()}
        server.safety.request_start(run_policy=False)
        server.pacer.start()
        _run_until(server, lambda: str(server.safety.mode) == "ready")
        for _ in range(80):  # more than the window: the ring wraps
            server.tick()
        server.safety.estop("drill")
        server.tick()
        estop_seq = server._seq
        deadline = time.monotonic() + 10.0
        while not session.flight.dumps and time.monotonic() < deadline:
            server.tick()  # the loop keeps running while the recorder's thread writes
        for _ in range(5):
            server.tick()
    finally:
        server.close()
        session.close()
    dumps = session.flight.dumps
    assert len(dumps) == 1 and dumps[0].is_file() and dumps[0].parent == tmp_path / "flight"
    assert "ready-to-estop" in dumps[0].name
    assert any(str(dumps[0]) in r.getMessage() for r in caplog.records)
    # The rings are the ones allocated at attach: the recorder never grows.
    for kind, (floats, ints) in rings.items():
        assert session.flight._rings[kind].floats is floats and session.flight._rings[kind].ints is ints
    log = read_log(dumps[0])
    seqs = log.ticks.column("seq")
    assert np.all(np.diff(seqs) == 1)
    assert 40 <= len(seqs) <= 52  # one second at 50 Hz (ring of window + 2)
    assert seqs[0] > 1  # older ticks were overwritten
    assert estop_seq in seqs.tolist()
    estops = [t for t in log.transitions if t["to"] == "estop"]
    assert len(estops) == 1 and estops[0]["reason"] == "estop" and estops[0]["detail"] == "drill"
    assert estops[0]["seq"] == estop_seq and estops[0]["from"] == "ready"
    modes = log.ticks.column("safety_mode")
    assert modes[list(seqs).index(estop_seq)] == 6  # estop


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="no SIGUSR1 on this platform")
def test_sigusr1_asks_for_a_dump(go2, tmp_path):
    server, _ = make_sim_server(go2, rate_hz=50.0, realtime=False, budget_ms=0.2)
    session = RecordingSession(flight_window_s=2.0, flight_dir=tmp_path)
    previous = signal.getsignal(signal.SIGUSR1)
    try:
        server.start()
        session.attach(server, None)
        server.pacer.start()
        for _ in range(30):
            server.tick()
        os.kill(os.getpid(), signal.SIGUSR1)
        deadline = time.monotonic() + 10.0
        while not session.flight.dumps and time.monotonic() < deadline:
            server.tick()
    finally:
        server.close()
        session.close()
    assert signal.getsignal(signal.SIGUSR1) == previous  # restored at close
    assert len(session.flight.dumps) == 1 and "SIGUSR1" in session.flight.dumps[0].name
    log = read_log(session.flight.dumps[0])
    assert len(log.ticks) >= 30 and log.run["trigger"] == "SIGUSR1"
    assert session.report()["flight"]["dumps"] == [str(session.flight.dumps[0])]

"""Record a sim run of an exported policy, replay it: the same engine reproduces every action,
a changed engine is detected; the CLI says so with its exit status."""

from __future__ import annotations

import json

import numpy as np
import pytest

from compute.parkour.policy_engines import open_policy_engines
from hal.devices.base import CONTROL_MODE_DAMP
from hal.recorder import read_log, replay_log
from hal.recorder.replay import main as replay_main

pytestmark = pytest.mark.slow  # records and replays appliance runs


def test_log_holds_what_the_run_did(recorded_run, go2):
    log = read_log(recorded_run.log_path)
    assert log.damage is None and log.recorder is not None
    assert log.recorder["dropped_total"] == 0 and recorded_run.report["dropped"] == 0
    # Every tick, in order; the applied command equals what the joint driver received.
    seqs = log.ticks.column("seq")
    assert list(seqs) == [seq for seq, _ in recorded_run.ticks]
    written = recorded_run.joints.written[: len(seqs)]
    np.testing.assert_array_equal(log.ticks.field("applied.target_rad"),
                                  np.array([c.target_rad for c in written]))
    np.testing.assert_array_equal(log.ticks.column("applied.mode"),
                                  [c.mode for c in written])
    # The actor's recorded raw actions are the ones the HAL received for the same observation.
    received = {seq: action for seq, action in recorded_run.ticks if action is not None}
    actor_seq = log.actor.column("obs_seq")
    raw = log.actor.field("raw_action")
    matched = [i for i, s in enumerate(actor_seq) if int(s) in received]
    assert len(matched) >= 0.8 * len(seqs)
    for i in matched:
        np.testing.assert_array_equal(raw[i], received[int(actor_seq[i])])
    assert len(log.actor) == recorded_run.client_stats["counters"]["commands_sent"]
    assert len(log.depth) == recorded_run.client_stats["counters"]["depth_steps"] >= 10
    assert log.depth.field("depth").shape[1:] == (58, 87)
    # Transitions with their reasons, into policy.
    tos = [t["to"] for t in log.transitions]
    assert "policy" in tos and log.transitions[0]["reason"] == "operator_start"
    assert log.run["joint_names_hardware"] == list(go2.joint_names_hardware)
    assert log.run["command"] == {"forward_speed_m_s": 0.5, "mode": "parkour"}


def test_same_engine_reproduces_and_another_is_detected(recorded_run, go2, exported_policy,
                                                        other_policy):
    log = read_log(recorded_run.log_path)
    same = open_policy_engines(go2, engine=exported_policy)
    try:
        result = replay_log(log, go2, same.actor, same.depth, tolerance=1e-5)
    finally:
        same.close()
    assert result.steps == len(log.actor) and result.skipped == 0
    assert result.reseeds == 0 and result.latent_fallbacks == 0
    assert result.depth_steps == len(log.depth)
    assert result.action_max_abs <= 1e-5
    assert result.observation_max_abs <= 1e-5 and result.latent_max_abs <= 1e-5
    assert result.passed
    # The latents the actor used changed during the run (the depth timing was replayed).
    assert len(set(log.actor.column("depth_seq_used").tolist())) >= 5

    other = open_policy_engines(go2, engine=other_policy)
    try:
        changed = replay_log(log, go2, other.actor, other.depth, tolerance=1e-5)
    finally:
        other.close()
    assert not changed.passed
    assert changed.action_max_abs > 1e-4
    assert changed.action_max_abs_per_joint.shape == (12,)


def test_replay_cli_exit_status_plot_and_json(recorded_run, exported_policy, other_policy,
                                              tmp_path, capsys):
    plot, summary = tmp_path / "summary.png", tmp_path / "replay.json"
    assert replay_main([str(recorded_run.log_path), "--engine", str(exported_policy),
                        "--plot", str(plot), "--json", str(summary)]) == 0
    out = capsys.readouterr().out
    assert "OK: reproduced" in out and "FR_hip_joint" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(summary.read_text())
    assert data["passed"] and data["action_max_abs"] <= 1e-5
    assert replay_main([str(recorded_run.log_path), "--engine", str(other_policy)]) == 1
    assert "DIFFERS" in capsys.readouterr().out


def test_flight_dump_mid_run_replays_from_its_window(recorded_run, go2, exported_policy):
    log = read_log(recorded_run.flight_path)
    assert log.run["log"] == "flight" and log.run["starts"] == "window"
    # A 1 s window at 50 Hz: the last ~50 ticks of the 150, contiguous.
    seqs = log.ticks.column("seq")
    assert 45 <= len(seqs) <= 52
    assert np.all(np.diff(seqs) == 1)
    assert seqs[-1] == recorded_run.ticks[-1][0]
    policy = open_policy_engines(go2, engine=exported_policy)
    try:
        result = replay_log(log, go2, policy.actor, policy.depth)
    finally:
        policy.close()
    assert result.reseeds >= 1  # the builder and GRU state came from the window's first records
    assert result.steps >= 40 and result.passed, result.summary()
    last_applied = recorded_run.joints.written[len(recorded_run.ticks) - 1]
    assert last_applied.mode != CONTROL_MODE_DAMP


def test_sim_server_flags_record_and_report(exported_policy, tmp_path, capsys):
    pytest.importorskip("mujoco")  # the [sim] extra
    from hal.server.sim.main import main as sim_main

    log_path, report_path = tmp_path / "logs" / "run.mcap", tmp_path / "report.json"
    assert sim_main(["--engine", str(exported_policy), "--fast", "--duration", "1.5",
                     "--control-rate", "50", "--estop-bind", "none", "--record", str(log_path),
                     "--flight-recorder-s", "0", "--report", str(report_path),
                     "--log-level", "WARNING"]) == 0
    assert f"records to {log_path}" in capsys.readouterr().out
    report = json.loads(report_path.read_text())
    recorder = report["recorder"]
    assert "flight" not in recorder  # --flight-recorder-s 0
    assert recorder["dropped"] == 0 and recorder["written"] >= report["cycles"]
    assert recorder["listener_us"]["tick"]["count"] == report["cycles"]
    assert recorder["listener_us"]["tick"]["p99"] > 0
    log = read_log(log_path)
    assert len(log.ticks) == report["cycles"]
    assert log.run["policy"]["path"] == str(exported_policy)
    assert replay_main([str(log_path), "--engine", str(exported_policy)]) == 0
    # A --record path that cannot be a file is refused before the robot moves, in one line.
    assert sim_main(["--engine", str(exported_policy), "--fast", "--duration", "1",
                     "--estop-bind", "none", "--record", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--record" in err and "is a directory" in err and "Traceback" not in err


def test_gaps_from_dropped_records_are_bridged(recorded_run, go2, exported_policy):
    """Records a full queue dropped leave gaps; the replay restarts its state from the next
    record and still reproduces everything it replays."""
    import dataclasses

    from hal.recorder import RecordTable

    log = read_log(recorded_run.log_path)

    def without(table, rows):
        keep = np.setdiff1d(np.arange(len(table)), rows)
        return RecordTable(table.layout, table.floats[keep], table.ints[keep],
                           {k: v[keep] for k, v in table.images.items()})

    gappy = dataclasses.replace(log, actor=without(log.actor, np.arange(60, 66)),
                                depth=without(log.depth, [4, 5]),
                                ticks=without(log.ticks, [90]))
    policy = open_policy_engines(go2, engine=exported_policy)
    try:
        result = replay_log(gappy, go2, policy.actor, policy.depth)
    finally:
        policy.close()
    assert result.passed, result.summary()
    assert result.reseeds >= 3  # actor gap, depth gap, missing tick
    assert result.skipped == 1 and result.latent_fallbacks >= 1

"""``python -m benchmarks --quick`` runs end to end and its JSON holds every case (no speed checks:
speed is the benchmark's output, not a test's assertion)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Every case runs: the [sim], [export] and [plots] extras.
for _extra in ("mujoco", "torch", "onnx", "matplotlib"):
    pytest.importorskip(_extra)
pytestmark = pytest.mark.slow

STAT_KEYS = {"p50", "p99", "max"}


def has_stats(block: dict) -> bool:
    return STAT_KEYS <= set(block) and all(block[k] == block[k] for k in STAT_KEYS)  # not NaN


def test_quick_benchmark_writes_every_case(tmp_path):
    out = tmp_path / "bench"
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["machine"]["cores"] >= 1 and results["machine"]["python"]

    for graph in ("actor", "depth"):
        cases = results["engine_step"]["graphs"][graph]["cases"]
        assert {"onnxruntime", "torch_eager", "torchscript"} <= set(cases)
        assert all(has_stats(c) for c in cases.values())
        assert results["engine_step"]["graphs"][graph]["ratios"]

    for size in ("depth_106x60", "depth_672x376"):
        cases = results["transport"][size]["cases"]
        assert set(cases) == {"inproc_slots", "inproc_frames", "tcp_frames", "naive_pickle",
                              "naive_json"}
        assert all(has_stats(c) for c in cases.values())

    e2e = results["e2e"]["cases"]
    assert set(e2e) == {"krabby_100hz", "krabby_100hz_no_depth", "krabby_100hz_no_gc_control",
                        "krabby_500hz", "naive_json_100hz", "naive_pickle_100hz"}
    for name, case in e2e.items():
        assert has_stats(case["obs_to_command"]), name
        assert has_stats(case["period_error"]), name
        if name.startswith("krabby"):
            assert has_stats(case["loop_jitter"]), name
    assert set(results["e2e"]["headline"]) >= {"obs_to_command_p99_naive_json_over_krabby",
                                               "obs_to_command_p99_naive_pickle_over_krabby"}
    assert results["e2e"]["rate_sweep"]["rates"]

    assert has_stats(results["sim_step"]["cases"]["tick_with_frame"])
    assert has_stats(results["recorder"]["cases"]["tick_on"])
    live = results["live"]
    for condition in ("off", "on_no_client", "on_client"):
        assert has_stats(live["cases"][f"tick_{condition}"]), condition
    assert live["client_messages_received"] > 0 and live["live"]["sent"]["joints"] > 0
    throughput = results["eval_throughput"]["cases"]
    assert set(throughput) == {"episode_teacher", "episode_student", "bare_advance"}
    assert all(c["real_time_factor_p50"] > 0 and c["episodes_per_minute_per_core"] > 0
               for c in throughput.values())
    for plot in ("obs_to_command.png", "loop_period.png", "transport.png"):
        assert (out / plot).stat().st_size > 10_000
    assert "headline ratios" in proc.stdout


def test_gil_grab_benchmark_writes_every_case(tmp_path):
    out = tmp_path / "gil.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.gil_grab", "--seconds", "0.3", "--grab-ms", "5",
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert set(results["tick_lateness_us"]) == {"none", "release", "hold"}
    assert all(has_stats(block) for block in results["tick_lateness_us"].values())

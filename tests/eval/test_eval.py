"""krabby-eval: the report's cells, the interval, identical results per seed, Ray = local pool."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest

from hal.eval.cli import main as eval_main
from hal.eval.episode import EpisodeSpec, run_episode
from hal.eval.summary import cell_summary, differences, wilson_interval

CELL_FIELDS = {"terrain", "difficulty", "episodes", "successes", "success_rate",
               "success_rate_ci95", "mean_progress", "mean_x_displacement",
               "edge_violations_per_episode", "falls", "safety_trips", "seeds"}


def test_wilson_interval_against_hand_values():
    # p = 0.7, n = 10, z = 1.96: centre (0.7 + 0.19208) / 1.38416 = 0.64449,
    # half 1.96 * sqrt(0.021 + 0.009604) / 1.38416 = 0.24772
    low, high = wilson_interval(7, 10)
    assert (low, high) == pytest.approx((0.3968, 0.8922), abs=2e-4)
    assert wilson_interval(0, 5) == pytest.approx((0.0, 0.4345), abs=2e-4)  # z²/(n+z²)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def _episode(seed: int, success: bool, reached: int, trips: dict) -> dict:
    return {"terrain": "gap", "difficulty": 0.5, "seed": seed, "success": success,
            "progress": reached / 8, "x_displacement": reached / 10, "edge_violations": seed,
            "fell": not success, "safety_trips": trips}


def test_cell_summary_and_differences():
    cell = cell_summary("gap", 0.5, [_episode(0, True, 8, {}),
                                     _episode(1, False, 2, {"attitude": 1}),
                                     _episode(2, False, 4, {"attitude": 1, "estop": 1})])
    assert set(cell) == CELL_FIELDS
    assert cell["successes"] == 1 and cell["success_rate"] == pytest.approx(1 / 3)
    assert cell["mean_progress"] == pytest.approx((1 + 0.25 + 0.5) / 3)
    assert cell["edge_violations_per_episode"] == pytest.approx(1.0)
    assert cell["falls"] == 2 and cell["safety_trips"] == {"attitude": 2, "estop": 1}
    better = dict(cell, success_rate=1.0, mean_progress=1.0)
    diff = differences([cell], [better])[0]
    assert diff["success_rate"] == pytest.approx(2 / 3)


def test_krabby_eval_writes_every_cell_for_two_engines(tmp_path, demo_engine, teacher_engine):
    report_path, plot = tmp_path / "eval.json", tmp_path / "eval.png"
    assert eval_main(["--engine", str(demo_engine), "--engine", str(teacher_engine),
                      "--terrains", "gap,step", "--difficulties", "0.2,0.8", "--episodes", "1",
                      "--episode-s", "1", "--workers", "2", "--report", str(report_path),
                      "--plot", str(plot)]) == 0
    report = json.loads(report_path.read_text())
    assert plot.stat().st_size > 1000
    assert {"krabby_version", "machine", "engine_sha256", "cells", "overall_success_rate",
            "engines", "differences"} <= set(report)
    for entry in report["engines"]:
        assert len(entry["sha256"]) == 64
        cells = entry["cells"]
        assert {(c["terrain"], c["difficulty"]) for c in cells} == {
            ("gap", 0.2), ("gap", 0.8), ("step", 0.2), ("step", 0.8)}
        for c in cells:
            assert set(c) == CELL_FIELDS
            assert c["episodes"] == 1 and c["seeds"] == [0]
            low, high = c["success_rate_ci95"]
            assert 0.0 <= low <= c["success_rate"] <= high
    assert len(report["differences"]) == 4
    teacher = report["engines"][1]["episodes"][0]["randomization"]
    assert teacher["source"] == "manifest teacher.json"  # the training config's ranges
    assert 0.8 <= teacher["friction"] <= 0.9 and teacher["added_mass_kg"] == 0.0


def test_an_episode_is_a_function_of_its_seed(demo_engine):
    spec = EpisodeSpec(engine=str(demo_engine), terrain="hurdle", difficulty=0.5, seed=5,
                       episode_s=1.5)
    first, again = run_episode(spec), run_episode(spec)
    other = run_episode(replace(spec, seed=6))
    for result in (first, again, other):
        result.pop("wall_s")
    assert first == again
    assert first["randomization"] != other["randomization"]


def test_ray_gives_the_local_pool_s_results(demo_engine):
    pytest.importorskip("ray")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    from hal.eval.runners import run_local, run_ray

    specs = [EpisodeSpec(engine=str(demo_engine), terrain="gap", difficulty=0.3, seed=s,
                         episode_s=1.0) for s in (1, 2)]
    local = run_local(specs, workers=1)
    remote = run_ray(specs, address=None, num_cpus=1)
    for result in local + remote:
        result.pop("wall_s")
    assert remote == local


@pytest.mark.slow
def test_video_worst_keeps_a_video_per_cell(tmp_path, teacher_engine):
    from hal.optional import available

    if not (available("av") and available("PIL.Image")):
        pytest.skip("--video-worst needs pip install 'krabby[video]'")
    import threading

    from hal.sim.video import offscreen_gl_context

    works: list[bool] = []

    def probe() -> None:
        try:
            offscreen_gl_context(32, 32).free()
            works.append(True)
        except Exception:  # noqa: BLE001
            works.append(False)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join(60)
    if not (works and works[0]):
        pytest.skip("no offscreen OpenGL (EGL/OSMesa)")
    report_path = tmp_path / "eval.json"
    assert eval_main(["--engine", str(teacher_engine), "--terrains", "hurdle",
                      "--difficulties", "0.5", "--episodes", "2", "--episode-s", "0.5",
                      "--workers", "1", "--report", str(report_path), "--video-worst"]) == 0
    cell = json.loads(report_path.read_text())["cells"][0]
    video = tmp_path / cell["worst_video"].split("/")[-1]
    assert video.is_file() and video.stat().st_size > 1000
    assert (tmp_path / video.name.replace(".mp4", "_contact.png")).is_file()

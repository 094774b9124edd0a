"""The typed run report: ``run.json`` through its JSON Schema and back, the schema files kept
true to their dataclasses, and every field the exit table prints present in the schema.

The round trip runs the real ``krabby-hal-server-sim --fast --duration 4 --scene gap:0.3 --report
run.json`` in its own process (``python -m hal.server.sim.main``, this checkout first on the
path): 4 s so that the policy takes over (stand-up takes ~2.5 s) and the report has the policy's
and the course's sections filled, not only their empty shapes.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hal.report.schema import ReportFormatError, ReportSection, section_fields
from hal.server.cli import AppliancePlan, format_report
from hal.server.run_report import RunReport, load_run_report, run_report_schema
from hal.sim.ground_truth import format_sim_section
from hal.tools.report_schema import DOCS, SCHEMAS, schema_text

jsonschema = pytest.importorskip("jsonschema")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run_json(exported_policy, tmp_path_factory) -> Path:
    """A real run's report file (4 s of simulated time, lockstep, on a course)."""
    pytest.importorskip("mujoco")
    where = tmp_path_factory.mktemp("run")
    report = where / "run.json"
    env = dict(os.environ, PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-m", "hal.server.sim.main", "--engine", str(exported_policy), "--fast",
         "--duration", "4", "--scene", "gap:0.3", "--estop-bind", "tcp://127.0.0.1:*", "--report", str(report)],
        capture_output=True, text=True, timeout=180, cwd=where, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "deadline misses" in proc.stdout  # the exit table was printed from the typed report
    return report


@pytest.mark.parametrize("name", SCHEMAS)
def test_the_committed_schema_files_are_what_the_dataclasses_generate(name):
    assert (DOCS / name).read_text() == schema_text(name), \
        "regenerate with: python -m hal.tools.report_schema"


def test_a_real_report_validates_loads_back_and_reserialises_the_same(run_json):
    text = run_json.read_text()
    data = json.loads(text)
    jsonschema.validate(data, run_report_schema())
    report = load_run_report(run_json)
    assert isinstance(report, RunReport)
    assert report.report_version == 1 and report.config["duration"]["duration_s"] == 4.0
    assert report.cycles == data["cycles"] > 0 and report.safety.mode_final == "damping"
    assert report.policy is not None and report.inference is not None and report.sim is not None
    assert report.sim.handover_sim_time_s is not None and report.sim.course is not None
    assert report.safety.target_edits is not None and report.safety.target_edits.policy_ticks > 0
    again = json.dumps(report.to_dict(), indent=2, default=str) + "\n"
    assert again == text  # same keys, same order, same values
    # The same report printed from the file equals the table printed at exit.
    assert format_report(data) == format_report(report)


def test_the_report_keeps_the_keys_it_always_had(run_json):
    data = json.loads(run_json.read_text())
    for key in ("robot", "control_rate_hz", "command_interval_ticks", "latency_budget_ms",
                "realtime", "cycles", "published", "commands_applied", "deadline_misses",
                "malformed_dropped", "counters", "latency_us", "loop_jitter_us", "safety",
                "clients", "estop", "training_contract", "inference", "command", "policy",
                "operator", "sim", "report_version", "config"):
        assert key in data, key
    assert set(data["latency_us"]["obs_to_command"]) == {"count", "p50", "p90", "p99", "max",
                                                        "mean"}
    assert set(data["safety"]["events"][0]) == {"t_ns", "from", "to", "reason", "detail"}
    assert data["estop"] == {"received": 0, "rejected": 0, "refused": 0}


# -- every field the exit table prints exists in the schema ----------------------------------

class _Probe:
    """A report section that records the path of every field read from it (JSON keys)."""

    def __init__(self, section: ReportSection, path: str, seen: set[str]) -> None:
        self._section, self._path, self._seen = section, path, seen
        self._keys = {name: json_key for name, json_key, *_ in section_fields(type(section))}

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._section, name)  # a renamed field: AttributeError, the test fails
        if name not in self._keys:
            return value  # a method
        path = f"{self._path}/{self._keys[name]}"
        self._seen.add(path)
        return _probe(value, path, self._seen)


def _probe(value: Any, path: str, seen: set[str]) -> Any:
    if isinstance(value, ReportSection):
        return _Probe(value, path, seen)
    if isinstance(value, list):
        return [_probe(v, f"{path}/[]", seen) for v in value]
    if isinstance(value, dict):
        return {k: _probe(v, f"{path}/{{}}", seen) for k, v in value.items()}
    return value


def _resolve(schema: dict[str, Any], path: str) -> dict[str, Any]:
    """The schema node at ``path`` (``/key``, ``/[]`` list item, ``/{}`` dict value)."""
    root, node = schema, schema
    for part in [p for p in path.split("/") if p]:
        node = _deref(root, node)
        if part == "[]":
            node = node["items"]
        elif part == "{}":
            node = node["additionalProperties"]
        else:
            assert part in node.get("properties", {}), f"{path}: no {part!r} in the schema"
            node = node["properties"][part]
    return _deref(root, node)


def _deref(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    if "anyOf" in node:
        node = next(n for n in node["anyOf"] if n.get("type") != "null")
    if "$ref" in node:
        node = root["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _every_branch(real: dict[str, Any]) -> RunReport:
    """The real report with what a 2 s run lacks: e-stop traffic, a refused client, target
    edits, fired and unfired drills, a run log with a flight dump, the live view, a course."""
    data = copy.deepcopy(real)
    data["estop"] = {"received": 2, "rejected": 0, "refused": 1}
    data["clients"] = {"owner": "a", "refused": ["b"], "foreign_commands": 3}
    data["safety"]["target_edits"]["policy_ticks"] = 10
    data["safety"]["target_edits"]["edited_ticks"] = 1
    response = {"mode": "damping", "reason": "invalid_command", "detail": None, "seq": 5,
                "ticks": 1, "sim_time_s": 1.0}
    fired = {"fault": "nan-actions@1", "kind": "nan-actions", "at_s": 1.0, "duration_s": None,
             "fired": True, "seq": 4, "sim_time_s": 1.0, "after_policy_s": 1.0,
             "via": "client", "mode_before": "policy", "response": response,
             "first_missed_seq": None, "note": None, "errors": []}
    data["faults"] = [fired, {**fired, "response": None, "note": "no mode change"},
                      {**fired, "fired": False, "note": "not fired"}]
    data["recorder"] = {"listener_us": {"tick": {"count": 3, "p50": 1.0, "p99": 2.0, "max": 3.0}},
                        "path": "run.mcap", "written": 10, "dropped": 0, "error": None,
                        "flight": {"window_s": 10.0, "directory": "flight", "memory_mb": 1.0,
                                   "dumps": ["flight/a.mcap"], "suppressed": 0, "failures": 0}}
    data["live"] = {"host": "127.0.0.1", "port": 8765, "sent": {"tf": 3}, "dropped": {"tf": 1},
                    "offered": {"tf": 4}, "errors": 0}
    sim = {"handover_sim_time_s": 0.5, "duration_s": 1.0, "distance_m": 0.4, "forward_m": 0.4,
           "lateral_drift_m": 0.0, "mean_forward_speed_m_s": 0.4, "mean_speed_command_m_s": 0.5,
           "heading_change_rad": 0.0, "max_abs_roll_rad": 0.1, "max_abs_pitch_rad": 0.1,
           "min_base_height_m": 0.3, "mean_base_height_m": 0.3,
           "falls": [{"t_s": 1.0, "kind": "tilt", "value": 1.2, "mode": "policy"}],
           "fall_limits": {"tilt_rad": 1.0, "height_m": 0.1}, "track_rate_hz": 10.0,
           "track": {"columns": ["t_s"], "rows": [[0.0]]},
           "course": {"terrain": "gap", "difficulty": 0.5, "length_m": 8.0,
                      "goals_m": [[1.0, 0.0]], "params": {}},
           "goals_total": 2, "goals_reached": 1, "goal_times_s": [0.9], "edge_violations": 0,
           "left_policy_s": None, "x_displacement": 0.5, "success": False}
    data["sim"] = sim
    return load_run_report(data)


def test_every_field_the_exit_table_prints_exists_in_the_schema(run_json):
    real = json.loads(run_json.read_text())
    report = _every_branch(real)
    seen: set[str] = set()
    table = format_report(_Probe(report, "", seen))  # type: ignore[arg-type]
    sim_lines = format_sim_section(_Probe(report.sim, "/sim", seen))  # type: ignore[arg-type]
    # The probe saw the table's fields (the branches above all ran).
    for path in ("/deadline_misses", "/estop/refused", "/clients/foreign_commands",
                 "/safety/target_edits/outside_torque_window_ticks",
                 "/safety/policy_targets/joints/{}/action_range_used",
                 "/faults/[]/response/ticks", "/recorder/flight/dumps", "/live/port",
                 "/sim/course/terrain", "/sim/falls/[]/mode", "/safety/events/[]/from"):
        assert path in seen, path
    schema = run_report_schema()
    for path in sorted(seen):
        _resolve(schema, path)
    assert "flight recorder dump: flight/a.mcap" in table and "SUCCESS" not in sim_lines[2]
    # The check bites: a schema without one of those fields fails it.
    broken = copy.deepcopy(schema)
    del broken["properties"]["deadline_misses"]
    with pytest.raises(AssertionError, match="deadline_misses"):
        _resolve(broken, "/deadline_misses")


def test_a_renamed_key_fails_by_name_instead_of_printing_none(run_json):
    data = json.loads(run_json.read_text())
    data["deadline_missed"] = data.pop("deadline_misses")
    with pytest.raises(ReportFormatError, match="deadline_missed.*valid"):
        format_report(data)
    del data["deadline_missed"]
    with pytest.raises(ReportFormatError, match="missing key 'deadline_misses'"):
        load_run_report(data)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, run_report_schema())


def test_a_wrong_type_or_another_version_is_refused(run_json):
    data = json.loads(run_json.read_text())
    with pytest.raises(ReportFormatError, match=r"safety\.mode_final: expected str"):
        load_run_report({**data, "safety": {**data["safety"], "mode_final": 3}})
    with pytest.raises(ReportFormatError, match="report_version 99"):
        load_run_report({**data, "report_version": 99})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**data, "report_version": 99}, run_report_schema())


def test_listeners_add_typed_sections_by_name_only():
    from hal.report.schema import check_field
    from hal.report.sections import VideoReport

    plan = AppliancePlan(robot=None, server_config=None, make_devices=None,  # type: ignore
                         engine=None, checkpoint=None, duration_s=None, report_path=None)
    with pytest.raises(ValueError, match="'vidoe'.*'video'"):
        plan.add_report_section("vidoe", lambda: None)
    plan.add_report_section("video", lambda: None)
    with pytest.raises(ValueError, match="added twice"):
        plan.add_report_section("video", lambda: None)
    video = VideoReport(path="a.mp4", frames=1, fps=30.0, size=[4, 4], contact_sheet=None,
                        error=None)
    check_field(RunReport, "video", video)
    with pytest.raises(TypeError, match="RunReport.video"):
        check_field(RunReport, "video", {"path": "a.mp4"})  # a dict is not the section
    with pytest.raises(TypeError, match="RunReport.faults"):
        check_field(RunReport, "faults", [video])


def test_krabby_eval_summarises_a_run_report_through_the_typed_loader(run_json, exported_policy):
    from hal.eval.episode import EpisodeSpec, summarise

    spec = EpisodeSpec(engine=str(exported_policy), terrain="flat", difficulty=0.0, seed=1)
    data = json.loads(run_json.read_text())
    row = summarise(spec, run_json, wall_s=1.0)
    assert row == summarise(spec, load_run_report(data), wall_s=1.0)
    sim = data["sim"]
    assert row["sim_s"] == pytest.approx(sim.get("duration_s") or 0.0)
    assert row["fell"] == bool(sim["falls"]) and row["goals_total"] == sim.get("goals_total", 0)
    assert row["safety_trips"] == {}  # the run ended by its duration: damped by "shutdown" only
    renamed = copy.deepcopy(data)
    renamed["sim"]["fallen"] = renamed["sim"].pop("falls")
    with pytest.raises(ReportFormatError, match=r"sim: unknown keys \['fallen'\]"):
        summarise(spec, renamed, wall_s=1.0)

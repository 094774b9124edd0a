"""``krabby-hal-server-jetson --motors go2 --network lo`` against ``krabby-go2-sim``, unchanged.

Start-up checks, the sport-mode release, the control loop and the safety layer, shutdown to
damping, all over real DDS; and the same policy both ways: through the simulator backend
(``krabby-hal-server-sim``) and through the Go2 backend against the simulated Go2.

The policy is the synthetic (untrained) teacher exported to ONNX: it needs no depth, so the Go2
run uses ``--camera none`` (the robot's own sensors only; a teacher on hardware sees flat ground,
as ``--no-height-scan`` makes the simulator backend show it). An untrained policy does not walk
far: what must agree is what it does — where it ends, which way it faces, whether it falls. A
wrong joint order or sign on the wire makes the robot fall or drift, and fails here.
"""

from __future__ import annotations

import json
import math
import subprocess

import pytest

from .conftest import PY, ROOT, appliance_against_go2_sim, child_env

pytestmark = pytest.mark.slow

DURATION_S = 8.0
# Same policy, both ways: the DDS run's trunk starts lying down (the backend lies the robot down
# before releasing sport mode) and stands up with the safety layer's ramp, the simulator
# backend's starts standing; both are measured from the hand-over on.
TOLERANCE_DISTANCE_M = 0.15
TOLERANCE_HEADING_RAD = 0.15


@pytest.fixture(scope="module")
def dds_run(tmp_path_factory, teacher_engine):
    code, output, report, sim_report = appliance_against_go2_sim(
        tmp_path_factory.mktemp("go2dds"), teacher_engine, 50, DURATION_S)
    assert code == 0, output[-4000:]
    return report, sim_report, output


def run_sim_backend(directory, engine, port: int, *camera: str) -> dict:
    """``krabby-hal-server-sim`` on ``engine`` for DURATION_S; its report."""
    report = directory / "sim.json"
    result = subprocess.run([PY, "-m", "hal.server.sim.main", "--engine", str(engine),
                             "--duration", str(DURATION_S), "--report", str(report),
                             "--estop-bind", f"tcp://127.0.0.1:{port}", "--insecure", *camera],
                            capture_output=True, text=True, timeout=180, env=child_env(), cwd=str(ROOT))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(report.read_text())


@pytest.fixture(scope="module")
def sim_backend_run(tmp_path_factory, teacher_engine):
    return run_sim_backend(tmp_path_factory.mktemp("simbackend"), teacher_engine, 15051,
                           "--no-height-scan", "--camera-fps", "0")


@pytest.fixture(scope="module")
def student_runs(tmp_path_factory, student_engine):
    """The demo's kind of policy (a depth student) both ways: the simulator backend's camera,
    and krabby-go2-sim's camera through the ZED's stand-in (hal.sim.depth_link)."""
    endpoint = "tcp://127.0.0.1:15253"
    code, output, report, sim_report = appliance_against_go2_sim(
        tmp_path_factory.mktemp("student-dds"), student_engine, 53, DURATION_S,
        sim_args=("--camera-bind", endpoint),
        jetson_args=("--camera", "go2-sim", "--camera-connect", endpoint))
    assert code == 0, output[-4000:]
    backend = run_sim_backend(tmp_path_factory.mktemp("student-sim"), student_engine, 15054)
    return report, sim_report, backend


def transitions(report: dict) -> list[tuple[str, str, str]]:
    return [(t["from"], t["to"], t["reason"]) for t in report["safety"]["events"]]


def test_the_appliance_drives_the_simulated_go2_over_dds(dds_run):
    report, sim, output = dds_run
    steps = transitions(report)
    assert ("ready", "policy", "entry_gate") in steps, steps
    assert steps[-1][1] == "damping" and steps[-1][2] == "shutdown", steps
    assert report["commands_applied"] > 0.4 * report["cycles"]
    wire = report["motor_health"]["wire"]
    assert wire["lowcmd"] > 0 and wire["lowstate_crc_rejected"] == 0 and wire["motor_fault"] is None
    remote = report["operator"]["sources"]["go2-remote"]  # the 40 bytes in every LowState
    assert remote["frames"] > 100 and remote["bad_frames"] == 0
    health = report["motor_health"]
    assert health["max_temperature_c"] == 35.0  # what the simulated Go2 reports
    assert set(health["lost_since_connect"]) == set(health["motor_temperature_c"]) and \
        set(health["lost_since_connect"].values()) == {0}
    counters, events = sim["wire"]["counters"], sim["wire"]["events"]
    # Sport mode released (after lying down) before the first LowCmd; none went to sport mode.
    assert counters["rpc_stand_down"] == 1 and counters["rpc_release_mode"] >= 1
    assert events["released_s"] < events["first_lowcmd_s"]
    assert counters.get("lowcmd_in_sport_mode", 0) == 0
    assert counters.get("lowcmd_crc_rejected", 0) == 0
    # Every LowCmd sent arrived with a good CRC (the report is written before the last damping
    # commands of the shutdown, which arrive too).
    assert wire["lowcmd"] <= counters["lowcmd_accepted"] <= wire["lowcmd"] + 10
    # The simulated Go2 stood up under krabby's commands and did not fall.
    assert sim["sim"]["handover_sim_time_s"] is not None
    assert sim["sim"]["falls"] == []
    assert sim["sim"]["min_base_height_m"] > 0.2
    # Shutdown to damping: the last command on the wire has kp 0 and kd > 0 on every leg motor.
    assert all(v["kp"] == 0.0 and v["kd"] > 0 for v in sim["command_in_force"].values())
    assert "handback_s" in events


def assert_same_walk(go2: dict, sim: dict) -> None:
    """Both reports' ``sim`` sections (ground truth from the hand-over): same falls, and end
    point, heading and height within the stated tolerances."""
    assert sim["handover_sim_time_s"] is not None and go2["handover_sim_time_s"] is not None
    assert len(go2["falls"]) == len(sim["falls"])
    assert abs(go2["forward_m"] - sim["forward_m"]) < TOLERANCE_DISTANCE_M
    assert abs(go2["lateral_drift_m"] - sim["lateral_drift_m"]) < TOLERANCE_DISTANCE_M
    assert abs(go2["heading_change_rad"] - sim["heading_change_rad"]) < TOLERANCE_HEADING_RAD
    assert abs(go2["mean_base_height_m"] - sim["mean_base_height_m"]) < 0.05
    assert math.isfinite(go2["distance_m"]) and math.isfinite(sim["distance_m"])


def test_the_same_policy_walks_the_same_both_ways(dds_run, sim_backend_run):
    assert_same_walk(dds_run[1]["sim"], sim_backend_run["sim"])


def test_the_demo_student_walks_the_same_both_ways(student_runs):
    report, go2, backend = student_runs
    assert_same_walk(go2["sim"], backend["sim"])



def test_a_go2_dry_run_publishes_no_lowcmd_and_leaves_sport_mode_on(tmp_path, teacher_engine):
    code, output, report, sim_report = appliance_against_go2_sim(
        tmp_path, teacher_engine, 51, 4.0, jetson_args=("--dry-run",))
    assert code == 0, output[-4000:]
    counters = sim_report["wire"]["counters"]
    assert counters.get("lowcmd_accepted", 0) == 0 and counters.get("lowcmd_in_sport_mode", 0) == 0
    assert counters.get("rpc_check_mode", 0) == 0 and counters.get("rpc_stand_down", 0) == 0
    assert sim_report["wire"]["sport_mode"] == "normal"
    assert report["dry_run"]["commands"] > 0  # recorded, not sent


def test_a_depth_student_sees_the_simulated_camera_through_the_zed_stand_in(student_runs):
    result, sim_report, _ = student_runs
    assert ("ready", "policy", "entry_gate") in transitions(result)  # depth fresh: the gate opened
    assert result["counters"]["depth_frames"] > 50  # 30 fps for seconds
    assert sim_report["depth_frames_published"] >= result["counters"]["depth_frames"]
    assert sim_report["sim"]["falls"] == []

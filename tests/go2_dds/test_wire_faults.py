"""Faults on the wire, a drill each: ``krabby-go2-sim --fault`` against the real appliance over DDS.

Each ends in its documented safe state (:mod:`hal.sim.go2_faults`): while running, the safety
layer damps the motors (kp 0, kd > 0) for the stated reason and the robot double's last command
is damping; at start, the appliance refuses to start and no LowCmd reaches the robot.
"""

from __future__ import annotations

import pytest

from .conftest import appliance_against_go2_sim, fault_began_ns

pytestmark = pytest.mark.slow

FAULT_AFTER_S = 3.5  # after the first LowCmd: past the 2 s stand-up, in the policy (or the gate)
RUN_S = 8.0

RUNNING_DRILLS = [
    # (fault, domain id, the safety layer's reason for damping)
    ("drop-lowstate", 60, "joints_stale"),
    ("delay-lowstate", 61, "joints_stale"),
    ("corrupt-lowstate", 62, "joints_stale"),
    ("silent", 63, "joints_stale"),
    ("hot-motor", 64, "joints_invalid"),
    ("lost-packets", 65, "joints_invalid"),
]


def damped(sim_report: dict) -> bool:
    return all(v["kp"] == 0.0 and v["kd"] > 0 for v in sim_report["command_in_force"].values())


@pytest.mark.parametrize("kind,domain,reason", RUNNING_DRILLS, ids=[d[0] for d in RUNNING_DRILLS])
def test_a_fault_while_running_ends_damped(tmp_path, teacher_engine, kind, domain, reason):
    code, output, report, sim_report = appliance_against_go2_sim(
        tmp_path, teacher_engine, domain, RUN_S, sim_args=("--fault", f"{kind}@{FAULT_AFTER_S}"),
        fault=kind)
    assert code == 0, output[-4000:]
    assert kind in sim_report["faults"]["began_s"], sim_report["faults"]
    events = report["safety"]["events"]
    to_damping = [e for e in events if e["to"] == "damping"]
    assert to_damping and to_damping[0]["reason"] == reason, events
    assert to_damping[0]["t_ns"] >= fault_began_ns(sim_report, kind)  # the fault did it
    assert report["safety"]["mode_final"] == "damping"
    assert damped(sim_report)  # the last command that reached the robot: damping
    wire = report["motor_health"]["wire"]
    if kind == "corrupt-lowstate":
        assert wire["lowstate_crc_rejected"] > 0
    if kind == "hot-motor":
        assert "FR_calf_joint is at 85" in wire["motor_fault"]
    if kind == "lost-packets":
        assert "packets/s" in wire["motor_fault"]


@pytest.mark.parametrize("kind,domain,message", [
    ("hot-motor", 66, "FR_calf_joint is at 85 °C"),
    ("lost-packets", 67, "packets/s"),
    ("refuse-release", 68, "still active after 5 release attempts"),
    ("mute-rpc", 69, "CheckMode failed (code 3104)"),
], ids=["hot-motor-at-start", "lost-packets-at-start", "refuse-release", "mute-rpc"])
def test_a_fault_at_start_refuses_to_start(tmp_path, teacher_engine, kind, domain, message):
    code, output, _, sim_report = appliance_against_go2_sim(
        tmp_path, teacher_engine, domain, RUN_S, sim_args=("--fault", kind))
    assert code != 0
    assert message in output, output[-4000:]
    counters = sim_report["wire"]["counters"]
    assert counters.get("lowcmd_accepted", 0) == 0  # nothing reached the motors
    assert counters.get("lowcmd_in_sport_mode", 0) == 0
    if kind in ("refuse-release", "mute-rpc"):
        assert sim_report["wire"]["sport_mode"] == "normal"  # Unitree's controller still in charge
    if kind == "refuse-release":
        assert counters["rpc_release_mode"] == 5
    if kind == "mute-rpc":
        assert counters.get("rpc_release_mode", 0) == 0 and counters.get("rpc_stand_down", 0) == 0

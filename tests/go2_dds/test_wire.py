"""The Go2's wire, for real: CRC, motor order, sport-mode release and DDS start-up errors.

Real ``unitree_sdk2py`` and Cyclone DDS between separate processes on ``lo``; each test its own
domain id.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from hal.robot import load_robot

from .conftest import PY, ROOT, UNITREE_MOTOR_INDEX, child_env, go2_sim, run_probe

pytestmark = pytest.mark.slow


def test_go2_sim_and_backend_refuse_to_start_without_network(teacher_engine):
    sim = subprocess.run([PY, "-m", "hal.sim.go2_dds", "--duration", "1"], capture_output=True,
                         text=True, timeout=60, env=child_env(), cwd=str(ROOT))
    assert sim.returncode == 2
    assert "--network is required" in sim.stderr
    assert "eth0" in sim.stderr and " lo " in sim.stderr  # the robot's wired port, and lo for the sim
    jetson = subprocess.run([PY, "-m", "hal.server.jetson.main", "--motors", "go2", "--camera", "none",
                             "--engine", str(teacher_engine), "--device", "cpu", "--duration", "1"],
                            capture_output=True, text=True, timeout=60, env=child_env(), cwd=str(ROOT))
    assert jetson.returncode == 2 and "Traceback" not in jetson.stderr
    assert "--motors go2 needs --network" in jetson.stderr + jetson.stdout
    assert "eth0" in jetson.stderr + jetson.stdout


def test_a_wrong_interface_names_it_and_lists_the_machines_interfaces():
    # A process of its own: the SDK's DDS factory is process-wide.
    code = ("import socket\n"
            "from hal.unitree_dds import DdsInitError, initialize_dds\n"
            "try:\n"
            "    initialize_dds(41, 'krabby-no-such-if0')\n"
            "except DdsInitError as exc:\n"
            "    print('ERROR ' + str(exc))\n"
            "print('IFS ' + ','.join(n for _, n in socket.if_nameindex()))\n")
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=60,
                         env=child_env(), cwd=str(ROOT)).stdout
    error = next(line for line in out.splitlines() if line.startswith("ERROR "))
    names = next(line for line in out.splitlines() if line.startswith("IFS "))[4:].split(",")
    assert "'krabby-no-such-if0' (no such interface)" in error
    assert "\n" not in error
    listed = error.split("this machine has: ")[1].split(".")[0].split(", ")
    assert listed == names and "lo" in listed


def test_lowcmd_crc_accepted_and_rejected_and_sport_mode_gates_lowcmd(tmp_path):
    with go2_sim(tmp_path, 42, "--fixed-base") as sim:
        probe = run_probe("crc", 42)
        report = sim.finish()
    assert probe["check_before"] == [0, {"form": "0", "name": "normal"}]
    assert probe["release"] == [0, None]
    assert probe["check_after"] == [0, {"form": "0", "name": ""}]
    # rt/sportmodestate (50 Hz) says the same: 1 (balance stand) before, 0 (idle) after.
    assert probe["sportmodestate_before"] == 1 and probe["sportmodestate_after"] == 0
    assert probe["sportmodestate_count"] > 20
    counters = report["wire"]["counters"]
    assert counters["lowcmd_in_sport_mode"] == 5  # before the release: ignored (and counted)
    assert counters["lowcmd_accepted"] == 3 + 20
    assert counters["lowcmd_crc_rejected"] == 15
    # A NaN target with a stiffness is not applied (the robot double keeps running): counted.
    assert 1 <= counters["lowcmd_non_finite"] <= 3
    # The last command in force is a good one: damping (kp 0, kd 0.5) on every leg motor.
    assert {v["kp"] for v in report["command_in_force"].values()} == {0.0}
    assert {v["kd"] for v in report["command_in_force"].values()} == {0.5}


def test_motor_order_on_the_wire_matches_unitrees_table(tmp_path):
    robot = load_robot("go2")
    names = robot.joint_names_hardware
    lower = np.asarray(robot.to_hardware(robot.position_lower))
    upper = np.asarray(robot.to_hardware(robot.position_upper))
    # Distinct poses, each joint well inside its limits: no two values within 0.1 rad of each other
    # in the same joint family, so a swapped slot cannot pass.
    initial = np.round(lower + (upper - lower) * np.linspace(0.25, 0.75, 12), 4)
    targets = np.round(lower + (upper - lower) * np.linspace(0.7, 0.3, 12), 4)
    with go2_sim(tmp_path, 43, "--fixed-base",
                "--initial-pose=" + ",".join(f"{v:.4f}" for v in initial)) as sim:
        probe = run_probe("order", 43, ",".join(f"{v:.4f}" for v in targets))
        report = sim.finish()
    assert tuple(probe["joint_names"]) == names
    for i, name in enumerate(names):
        slot = UNITREE_MOTOR_INDEX[name]
        # LowState: the robot reports joint `name` in slot `slot` (held at its initial pose).
        assert probe["lowstate_before"][slot] == pytest.approx(initial[i], abs=0.08), name
        # LowCmd: krabby's backend puts the target of `name` in slot `slot` ...
        assert probe["lowcmd_q"][slot] == pytest.approx(targets[i], abs=1e-5), name
        assert probe["lowcmd_kp"][slot] == pytest.approx(40.0), name
        # ... the robot applies it to that joint, which goes there ...
        assert report["last_position_command"][name]["q"] == pytest.approx(targets[i], abs=1e-5), name
        assert report["last_position_command"][name]["kp"] == pytest.approx(40.0), name
        assert probe["lowstate_after"][slot] == pytest.approx(targets[i], abs=0.08), name
        # ... and the backend reads it back in the robot definition's order.
        assert probe["backend_read"][i] == pytest.approx(targets[i], abs=0.08), name
    events = report["wire"]["events"]
    assert events["released_s"] < events["first_lowcmd_s"]
    assert report["wire"]["counters"].get("lowcmd_in_sport_mode", 0) == 0
    assert report["wire"]["counters"]["rpc_stand_down"] == 1  # lay down before letting go
    # The backend closed to damping: kp 0 everywhere, kd > 0.
    assert all(v["kp"] == 0.0 and v["kd"] > 0 for v in report["command_in_force"].values())

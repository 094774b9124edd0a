"""Fault drills on the simulated appliance: each fault of ``krabby-hal-server-sim --fault`` gets the
stated response within the stated number of ticks (hal.server.sim.faults), no applied target ever
breaks a limit, the step cap or the torque window, and no NaN ever reaches the joint driver.

Real pieces throughout: the MuJoCo world, the exported ONNX policy in the inference client's
threads, ZMQ between them (and for the e-stop), the sim CLI's own parser, plan and run
(``run_appliance``). Fast mode (simulated clock) keeps each drill to a few seconds of wall time and
makes the tick counts exact.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hal.safety import ACTIVE_MODES, Mode, SafetyConfig
from hal.safety.attitude import roll_pitch
from hal.server.cli import format_report, run_appliance
from hal.server.sim.faults import FaultKind, FaultSpec, FaultSpecError, parse_fault
from hal.server.sim.main import config_from_argv, main, plan_from_config
from tests.safety.guarantees import check_guarantees

from .recording import RecordingJoints, TickLog

RATE_HZ = 50
PERIOD_MS = 1000 / RATE_HZ
CFG = SafetyConfig()  # the CLI runs the safety layer with its defaults
POLICY_AT_S = 2.8  # stand-up (2 s) + priming at the stand pose (0.5 s) + the gate, with room
# The HAL runs at the policy rate here: every tick is a command period.
STEP_RAD = CFG.max_target_rate_rad_s / RATE_HZ
# A slam: a step of at least this share of the 2.4 rad action range (clip 4.8 × scale 0.25 × 2).
SLAM_STEP_RAD = CFG.implausible_slam_fraction * 2.4
# With the default counted torque window the motors clip torque: no torque-window guarantee.
TAU_CHECKED = CFG.torque_window == "clamp"
_runs = itertools.count()


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path, monkeypatch):
    """Whatever a run writes next to itself (flight recorder dumps) lands in the test's tmp dir."""
    monkeypatch.chdir(tmp_path)


def hardware(robot, values) -> np.ndarray:
    """Hardware-order array built by joint name (independent of the robot's index arrays)."""
    lookup = dict(zip(robot.joint_names_policy, values, strict=True))
    return np.array([lookup[name] for name in robot.joint_names_hardware], dtype=np.float64)


@dataclass
class DrillRun:
    report: dict[str, Any]
    ticks: TickLog
    joints: RecordingJoints
    client: Any
    robot: Any

    def fault(self, kind: str) -> dict[str, Any]:
        records = [f for f in self.report["faults"] if f["kind"] == kind]
        assert len(records) == 1, self.report["faults"]
        record = records[0]
        assert record["fired"], record
        return record

    @property
    def policy_seq(self) -> int:
        return next(t.seq for t in self.ticks if t.mode is Mode.POLICY)

    def after(self, seq: int) -> list:
        return [t for t in self.ticks if t.seq >= seq]


def run_drills(policy: Path, faults: list[str], duration_s: float, *extra: str) -> DrillRun:
    """The sim CLI's plan and run, in-process, with the joint driver and every tick recorded."""
    pytest.importorskip("mujoco")  # the [sim] extra
    tag = f"{os.getpid()}_{next(_runs)}"
    argv = ["--engine", str(policy), "--robot", "go2", "--fast", "--control-rate", str(RATE_HZ),
            "--latency-budget-ms", "16", "--duration", str(duration_s), "--log-level", "WARNING",
            "--observation-bind", f"inproc://drill_obs_{tag}",
            "--command-bind", f"inproc://drill_cmd_{tag}",
            "--estop-bind", f"inproc://drill_estop_{tag}", *extra]
    for spec in faults:
        argv += ["--fault", spec]
    config = config_from_argv(argv)
    plan = plan_from_config(config)
    make_devices = plan.make_devices
    holder: dict[str, Any] = {}

    def recording_devices(robot):
        devices = make_devices(robot)
        devices.joints = holder["joints"] = RecordingJoints(devices.joints)
        return devices

    ticks = TickLog()

    def record(server, client) -> None:
        ticks.server = server
        server.tick_listeners.append(ticks)
        holder["client"] = client

    plan.make_devices = recording_devices
    plan.on_started.append(record)
    report = run_appliance(plan, config)
    json.dumps(report.to_dict())  # the report stays writable (plain JSON values only)
    run = DrillRun(report, ticks, holder["joints"], holder["client"], plan.robot)
    check_motors_safe(run, clamp=config.safety.policy_targets_past_limits == "clamp")
    return run


def check_motors_safe(run: DrillRun, clamp: bool = False) -> None:
    """Every command that reached the driver: finite; position targets inside their bounds (the
    joint limits; in policy the action range, default ± 4.8 × 0.25 rad) and the step cap, and the
    torque window when the layer clamps to it (hal.safety.targets guarantees, recomputed); damping
    exact."""
    robot, n = run.robot, run.robot.n_joints
    lower = hardware(robot, robot.position_lower)
    upper = hardware(robot, robot.position_upper)
    default = hardware(robot, robot.default_angles)
    # (the layer accepts 1e-5 rad past either end: a float32 target's rounding)
    action_lo, action_hi = default - 4.8 * 0.25 - 1e-5, default + 4.8 * 0.25 + 1e-5
    if clamp:  # --policy-targets-past-limits clamp: the range's overlap with the limits
        action_lo, action_hi = np.maximum(action_lo, lower), np.minimum(action_hi, upper)
    tau = hardware(robot, robot.torque_limit)
    written = run.joints.written
    assert len(written) == len(run.ticks) + 1  # one per tick, and the shutdown damping
    for command in written:
        for array in (command.target_rad, command.kp, command.kd):
            assert np.isfinite(array).all(), command
    previous = None
    for tick, command in zip(run.ticks, written):
        np.testing.assert_array_equal(command.target_rad, tick.target)
        if tick.damped:
            assert (tick.kp == 0).all() and (tick.kd == CFG.damping_kd).all()
            assert (tick.target >= lower).all() and (tick.target <= upper).all()
            previous = None
            continue
        assert tick.mode in ACTIVE_MODES
        assert (tick.kp >= CFG.kp_min).all() and (tick.kp <= CFG.kp_max).all()
        reference = np.clip(tick.q, lower, upper) if previous is None else previous
        lo, hi = (action_lo, action_hi) if tick.mode is Mode.POLICY else (lower, upper)
        check_guarantees(tick.target, np.full(n, np.nan), reference, tick.q, tick.dq, tick.kp,
                         tick.kd, lo, hi, tau if TAU_CHECKED else np.full(n, np.inf),
                         STEP_RAD)
        previous = tick.target
    last = written[-1]
    assert last.mode == 1 and (last.kp == 0).all() and (last.kd > 0).all()


def check_fired_on_time(run: DrillRun, record: dict[str, Any]) -> int:
    """@T counts simulated seconds from the tick the policy took over (exact in fast mode)."""
    expected = run.policy_seq + math.ceil(round(record["at_s"] * RATE_HZ, 9))
    assert record["seq"] == expected, (record, run.policy_seq)
    assert record["after_policy_s"] == pytest.approx((expected - run.policy_seq) / RATE_HZ)
    assert record["mode_before"] == "policy"
    return expected


def check_response(record: dict[str, Any], mode: str, reason: str, seq: int) -> None:
    response = record["response"]
    assert response is not None, record
    assert (response["mode"], response["reason"], response["seq"]) == (mode, reason, seq), record
    assert response["ticks"] == seq - record["seq"] + 1


def check_hold_then_damp(run: DrillRun, first_miss: int) -> None:
    """Hold the last applied target from the first missed tick; damping on the
    damp_after_ticks-th consecutive missed tick; damped from then on."""
    held = run.ticks.by_seq(first_miss - 1).target
    damp_seq = first_miss + CFG.damp_after_ticks - 1
    for tick in run.after(first_miss):
        if tick.seq < damp_seq:
            assert not tick.has_command and tick.mode is Mode.POLICY and not tick.damped, tick.seq
            np.testing.assert_array_equal(tick.target, held)
        else:
            assert tick.mode is Mode.DAMPING and tick.damped, tick.seq


# ----------------------------------------------------------------------------------- drills

def test_stall_inference_holds_then_damps(exported_policy):
    run = run_drills(exported_policy, ["stall-inference@0.5:0.6"], POLICY_AT_S + 1.6)
    record = run.fault("stall-inference")
    fired = check_fired_on_time(run, record)
    assert record["duration_s"] == 0.6 and "blocks the actor thread" in record["via"]
    # The actor blocks on the very observation of the first tick that sees the drill.
    first_miss = next(t.seq for t in run.after(fired) if not t.has_command)
    assert first_miss == fired == record["first_missed_seq"]
    check_hold_then_damp(run, first_miss)
    check_response(record, "damping", "command_watchdog", first_miss + CFG.damp_after_ticks - 1)
    # The stall ends after 0.6 s of simulated time: commands come back, the motors stay damped.
    resumed = [t.seq for t in run.after(first_miss) if t.has_command]
    assert resumed and resumed[0] >= first_miss + int(0.6 * RATE_HZ)
    assert run.report["safety"]["mode_final"] == "damping"
    assert run.report["inference"]["errors"] == []


def test_kill_inference_holds_then_damps(exported_policy):
    run = run_drills(exported_policy, ["kill-inference@0.5"], POLICY_AT_S + 1.0)
    record = run.fault("kill-inference")
    fired = check_fired_on_time(run, record)
    assert record["via"].startswith("client.stop()")
    first_miss = record["first_missed_seq"]
    # The actor may answer the observation it already holds before it sees the stop.
    assert fired <= first_miss <= fired + 3
    assert not any(t.has_command for t in run.after(first_miss))  # the threads are gone
    assert not run.client.running
    check_hold_then_damp(run, first_miss)
    check_response(record, "damping", "command_watchdog", first_miss + CFG.damp_after_ticks - 1)


def test_nan_actions_damp_on_the_first_nan_command(exported_policy):
    run = run_drills(exported_policy, ["nan-actions@0.5"], POLICY_AT_S + 1.0)
    record = run.fault("nan-actions")
    fired = check_fired_on_time(run, record)
    first = next(t for t in run.after(fired) if t.has_command)
    assert first.non_finite and np.isnan(first.command_target).all()
    assert first.mode is Mode.DAMPING and first.damped
    assert all(not t.has_command and t.mode is Mode.POLICY for t in run.ticks
               if fired <= t.seq < first.seq)
    assert all(t.mode is Mode.DAMPING for t in run.after(first.seq))
    check_response(record, "damping", "invalid_command", first.seq)
    assert record["response"]["ticks"] == 1 or first.seq > fired  # tick 1 unless it missed
    assert run.report["counters"]["non_finite_commands"] >= 1
    assert run.report["inference"]["counters"]["non_finite_actions"] >= 1
    assert run.report["safety"]["counters"]["command.rejected.nonfinite"] >= 1


def test_wild_actions_stay_within_the_action_range_and_end_damped(exported_policy):
    run = run_drills(exported_policy, ["wild-actions@0.5"], POLICY_AT_S + 1.0)
    record = run.fault("wild-actions")
    fired = check_fired_on_time(run, record)
    robot = run.robot
    default = hardware(robot, robot.default_angles)
    wild = [t for t in run.after(fired) if t.has_command]
    # The client clips ±50 to ±4.8 and scales by 0.25: ±1.2 rad about the default, flipping.
    for a, b in zip(wild, wild[1:]):
        np.testing.assert_allclose(np.abs(a.command_target - default), 1.2, atol=1e-5)
        if b.seq == a.seq + 1:  # (a late, dropped command in between would flip once more)
            np.testing.assert_allclose(a.command_target - default,
                                       -(b.command_target - default), atol=1e-5)
    # The plausibility watchdog damps on the implausible_after_ticks-th slam (a step of at least
    # SLAM_STEP_RAD from the previous command): every wild command after the first steps 2.4 rad;
    # the first steps about 1.2 rad from the policy's last command, a slam or not. The
    # measured-velocity limit (1.5 × rated speed for 3 ticks) catches runaways, not this.
    before = [t for t in run.ticks if t.seq < wild[0].seq and t.has_command][-1]
    first_slams = np.abs(wild[0].command_target - before.command_target).max() >= SLAM_STEP_RAD
    damp_seq = wild[CFG.implausible_after_ticks - (1 if first_slams else 0)].seq
    for tick in run.after(fired):
        assert (tick.mode is Mode.POLICY) is (tick.seq < damp_seq), tick.seq
    check_response(record, "damping", "implausible_command", damp_seq)
    counters = run.report["safety"]["counters"]
    assert counters["command.implausible"] == CFG.implausible_after_ticks
    assert counters["check.step_capped"] >= CFG.implausible_after_ticks - 1
    # Meanwhile the targets moved by at most the step cap per tick (check_motors_safe checked
    # every guarantee); here the cap visibly did the work.
    steps = [np.abs(b.target - a.target).max()
             for a, b in zip(run.ticks, run.ticks[1:]) if fired <= b.seq < damp_seq]
    assert max(steps) == pytest.approx(STEP_RAD, abs=1e-9)


@pytest.mark.parametrize("past_limits", ["pass", "clamp"])
def test_a_trained_landing_past_the_calf_limits_runs_on(exported_policy, past_limits):
    """The landing drill asks for calf targets at the end of the action range, 0.538 rad past the
    calf's limit, 0.06 s past it: the policy keeps control and the report counts it, per joint. The
    targets reach the motors as asked (or clamped to the limit with --policy-targets-past-limits
    clamp)."""
    run = run_drills(exported_policy, ["landing@0.6"], POLICY_AT_S + 1.4,
                     "--policy-targets-past-limits", past_limits)
    record = run.fault("landing")
    fired = check_fired_on_time(run, record)
    assert record["response"] is None
    assert record["note"] == "no mode change after it fired (stayed policy)"
    after = run.after(fired)
    assert after and all(tick.mode is Mode.POLICY for tick in after)
    robot = run.robot
    calves = [i for i, name in enumerate(robot.joint_names_hardware) if "calf" in name]
    upper = hardware(robot, robot.position_upper)
    end_of_range = hardware(robot, robot.default_angles) + 4.8 * 0.25
    asked = max(float((t.command_target[calves] - upper[calves]).max()) for t in after
                if t.has_command)
    applied = max(float((t.target[calves] - upper[calves]).max()) for t in after)
    # -1.5 + 1.2 - (-0.83776): the Go2 calf's range ends 0.53776 rad past its limit.
    assert asked == pytest.approx(0.53776, abs=1e-5)
    if past_limits == "pass":
        assert applied == pytest.approx(asked, abs=1e-5)  # sent on, as training would have
    else:
        assert applied <= 1e-12
    assert np.all(end_of_range[calves] - upper[calves] == pytest.approx(0.53776))
    safety = run.report["safety"]
    counters = safety["counters"]
    assert "command.implausible" not in counters
    assert "reason.joint_position_limit" not in counters
    asked_report = safety["policy_targets"]
    assert "calf" in asked_report["furthest_past_limit"]["joint"]
    assert asked_report["furthest_past_limit"]["rad"] == pytest.approx(0.53776, abs=1e-5)
    for i in calves:
        joint = asked_report["joints"][robot.joint_names_hardware[i]]
        # Past the limit from 0.55 of the clip (the limit is 0.66 rad from the default, the clip
        # 1.2): the profile's 0.75, 1.0, 0.75 steps.
        assert joint["ticks_past_limit"] >= 3
        assert joint["time_past_limit_s"] >= 3 / RATE_HZ - 1e-9
        assert joint["action_range_used"] == pytest.approx(1.0, abs=1e-5)
    table = format_report(run.report)
    assert "policy targets past joint limits: " in table
    assert "0.538 rad" in table
    name = robot.joint_names_hardware[calves[0]]
    calf_row = next(line for line in table.splitlines() if line.strip().startswith(name))
    seconds = asked_report["joints"][name]["time_past_limit_s"]
    assert calf_row.split()[1:] == ["0.538", "rad", f"{seconds:.2f}", "s", "100%"]


def test_drop_imu_damps_once_the_sample_is_stale(exported_policy):
    run = run_drills(exported_policy, ["drop-imu@0.5"], POLICY_AT_S + 1.0)
    record = run.fault("drop-imu")
    fired = check_fired_on_time(run, record)
    frozen_ns = run.ticks.by_seq(fired - 1).imu_ns
    assert all(t.imu_ns == frozen_ns for t in run.after(fired))  # the IMU stopped updating
    # Damping on the first tick whose IMU sample is older than imu_stale_ms (the tick's time is
    # its encoder timestamp: the joints keep updating), no later than the stated bound.
    stale = next(t for t in run.after(fired) if (t.joints_ns - t.imu_ns) / 1e6 > CFG.imu_stale_ms)
    assert stale.seq - fired + 1 <= math.ceil(CFG.imu_stale_ms / PERIOD_MS) + 1
    for tick in run.after(fired):
        assert (tick.mode is Mode.POLICY) is (tick.seq < stale.seq), tick.seq
    check_response(record, "damping", "imu_stale", stale.seq)


def test_drop_depth_stands(exported_policy):
    run = run_drills(exported_policy, ["drop-depth@0.5"], POLICY_AT_S + 2.0)
    record = run.fault("drop-depth")
    fired = check_fired_on_time(run, record)
    last_seq = run.ticks.by_seq(fired - 1).depth_seq
    assert all(t.depth_seq == last_seq for t in run.after(fired))  # no new frame
    stale = next(t for t in run.after(fired)
                 if (t.joints_ns - t.depth_ns) / 1e6 > CFG.depth_stale_ms)
    assert stale.seq - fired + 1 <= math.ceil(CFG.depth_stale_ms / PERIOD_MS) + 1
    ramp_ticks = round(CFG.stand_ramp_duration_s * RATE_HZ)
    for tick in run.after(fired):
        # The stand ramp ends in ready (the stand pose held, the gate closed while depth is stale).
        expected = (Mode.POLICY if tick.seq < stale.seq else
                    Mode.STAND if tick.seq < stale.seq + ramp_ticks else Mode.READY)
        assert tick.mode is expected, tick.seq
        assert not tick.damped
    check_response(record, "stand", "depth_stale", stale.seq)
    # Standing: after the stand ramp the target is the default pose with stiff gains, the robot
    # upright on its four feet.
    end = run.ticks[-1]
    assert end.seq >= stale.seq + CFG.stand_ramp_duration_s * RATE_HZ + 10
    robot = run.robot
    np.testing.assert_allclose(end.target, hardware(robot, robot.default_angles), atol=1e-9)
    np.testing.assert_allclose(end.kp, hardware(robot, robot.kp))
    roll, pitch = roll_pitch(*end.imu_quat)
    assert abs(roll) < 0.1 and abs(pitch) < 0.1
    assert (end.feet_n > robot.contact_force_threshold_n).all()
    assert run.report["safety"]["counters"]["gate.blocked.depth_stale"] > 0


def test_estop_message_latches_on_the_next_tick(exported_policy):
    run = run_drills(exported_policy, ["estop@0.5"], POLICY_AT_S + 1.0)
    record = run.fault("estop")
    fired = check_fired_on_time(run, record)
    assert record["via"].startswith("ESTOP message over zmq to inproc://drill_estop_")
    assert record["note"] is None  # not the API fallback
    check_response(record, "estop", "estop", fired)
    assert record["response"]["detail"] == "remote: fault drill estop@0.5"
    for tick in run.after(fired):
        assert tick.mode is Mode.ESTOP and tick.damped and (tick.kp == 0).all()
    assert run.report["safety"]["mode_final"] == "estop"  # latched through the shutdown


def test_estop_without_endpoint_uses_the_api_and_says_so(exported_policy):
    run = run_drills(exported_policy, ["estop@0.2"], POLICY_AT_S + 0.5, "--estop-bind", "none")
    record = run.fault("estop")
    fired = check_fired_on_time(run, record)
    assert record["via"] == "safety layer API (SafetyLayer.estop)"
    assert "no e-stop endpoint" in record["note"]
    check_response(record, "estop", "estop", fired)


def test_drills_in_sequence_and_one_that_never_fires(exported_policy):
    """Several drills in one run: each is recorded; one due after the run's end is reported as
    not fired; the printed report lists them."""
    run = run_drills(exported_policy, ["drop-depth@0.2", "estop@0.6", "nan-actions@30"],
                     POLICY_AT_S + 1.0)
    depth, estop = run.fault("drop-depth"), run.fault("estop")
    assert depth["response"]["mode"] == "stand"
    assert estop["mode_before"] == "stand" and estop["response"]["mode"] == "estop"
    late = [f for f in run.report["faults"] if f["kind"] == "nan-actions"][0]
    assert not late["fired"] and late["note"] == "not fired: the run ended first"
    table = format_report(run.report)
    assert "fault drills" in table
    assert f"estop@0.6: from tick {estop['seq']}" in table
    assert "nan-actions@30: not fired: the run ended first" in table


def test_a_normal_run_never_trips_the_plausibility_watchdog(exported_policy):
    """The untrained synthetic policy, through the entry blend and over the parkour scene, asks
    for nothing the watchdog calls implausible; and its steps stay far below the threshold."""
    run = run_drills(exported_policy, [], POLICY_AT_S + 3.0, "--scene", "parkour",
                     "--speed", "1.5")
    counters = run.report["safety"]["counters"]
    assert "command.implausible" not in counters
    assert counters["ticks.policy"] >= 3 * RATE_HZ
    assert [e["reason"] for e in run.report["safety"]["events"]][-1] == "shutdown"
    robot = run.robot
    default = hardware(robot, robot.default_angles)
    worst_step = worst_outside = 0.0
    for a, b in zip(run.ticks, run.ticks[1:]):
        if b.mode is Mode.POLICY and b.has_command:
            worst_step = max(worst_step, float(np.abs(b.command_target - a.target).max()))
            outside = np.maximum(default - 1.2 - b.command_target,
                                 b.command_target - (default + 1.2))
            worst_outside = max(worst_outside, float(outside.max()))
    assert worst_step < 0.5 * SLAM_STEP_RAD
    assert worst_outside <= 1e-6  # the client clips the actions to the range


# ----------------------------------------------------------------------------------- the CLI

@pytest.mark.parametrize("text,expected", [
    ("nan-actions@3", FaultSpec(FaultKind.NAN_ACTIONS, 3.0)),
    ("wild-actions@0", FaultSpec(FaultKind.WILD_ACTIONS, 0.0)),
    ("stall-inference@3", FaultSpec(FaultKind.STALL_INFERENCE, 3.0, 1.0)),
    ("stall-inference@2.5:0.25", FaultSpec(FaultKind.STALL_INFERENCE, 2.5, 0.25)),
    (" Drop-IMU@1.5 ", FaultSpec(FaultKind.DROP_IMU, 1.5)),
    ("kill-inference@1e-1", FaultSpec(FaultKind.KILL_INFERENCE, 0.1)),
])
def test_parse_fault(text, expected):
    spec = parse_fault(text)
    assert spec == expected and spec.kind is expected.kind  # the enum, not an equal string


@pytest.mark.parametrize("text,match", [
    ("bogus@1", r"unknown fault 'bogus'; valid: stall-inference, kill-inference, nan-actions, "
                r"wild-actions, drop-imu, drop-depth, estop"),
    ("nan-actions", r"missing the time; write nan-actions@T"),
    ("nan-actions@", r"missing the time"),
    ("nan-actions@soon", r"time 'soon' must be a finite number of seconds >= 0"),
    ("nan-actions@-1", r"time '-1' must be a finite number of seconds >= 0"),
    ("drop-depth@inf", r"time 'inf' must be a finite number"),
    ("estop@1:2", r"only stall-inference takes a duration \(stall-inference@T:D\); write estop@1"),
    ("stall-inference@1:0", r"duration '0' must be a finite number of seconds > 0"),
    ("stall-inference@1:", r"duration '' must be"),
])
def test_bad_fault_specs_say_what_is_wrong(text, match):
    with pytest.raises(FaultSpecError, match=match):
        parse_fault(text)


@pytest.mark.parametrize("argv,message", [
    (["--fault", "bogus@1"], "error: --fault 'bogus@1': unknown fault 'bogus'"),
    (["--fault", "estop@x"], "error: --fault 'estop@x': time 'x' must be"),
    (["--fault", "nan-actions@1", "--no-client"],
     "error: --fault nan-actions act on the in-process inference client; drop --no-client"),
    (["--fault", "drop-depth@1", "--camera-fps", "0"],
     "error: --fault drop-depth needs the depth camera; use --camera-fps > 0"),
])
def test_cli_rejects_bad_faults_in_one_line(argv, message, capsys):
    assert main(["--engine", "nowhere.onnx", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and "\n" not in err and "Traceback" not in err


def test_cli_drill_end_to_end(exported_policy, tmp_path):
    """``krabby-hal-server-sim --fast --fault nan-actions@2`` in its own process."""
    pytest.importorskip("mujoco")  # the [sim] extra
    script = Path(sys.executable).with_name("krabby-hal-server-sim")
    command = [str(script)] if script.is_file() else [sys.executable, "-m",
                                                       "hal.server.sim.main"]
    report_path = tmp_path / "r.json"
    proc = subprocess.run(
        [*command, "--engine", str(exported_policy), "--fast", "--control-rate", str(RATE_HZ),
         "--duration", "6", "--fault", "nan-actions@2", "--fault", "estop@2.5",
         "--estop-bind", "tcp://127.0.0.1:*", "--report", str(report_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(report_path.read_text())
    nan, estop = report["faults"]
    assert nan["fault"] == "nan-actions@2" and nan["fired"] and nan["mode_before"] == "policy"
    assert nan["after_policy_s"] == pytest.approx(2.0)
    assert nan["response"]["mode"] == "damping"
    assert nan["response"]["reason"] == "invalid_command"
    assert nan["response"]["ticks"] == 1
    # The e-stop went over tcp to the listener the CLI bound on a free port.
    assert estop["via"].startswith("ESTOP message over zmq to tcp://127.0.0.1:")
    assert estop["response"]["mode"] == "estop" and estop["response"]["ticks"] <= 2
    assert report["safety"]["mode_final"] == "estop"
    reasons = [(e["to"], e["reason"]) for e in report["safety"]["events"]]
    assert ("damping", "invalid_command") in reasons and ("estop", "estop") in reasons
    assert "fault drills (T: simulated seconds after the policy took over):" in proc.stdout
    assert (f"nan-actions@2: from tick {nan['seq']}" in proc.stdout
            and "-> damping (invalid_command)" in proc.stdout)


def test_a_client_that_dies_in_lockstep_ends_damped_without_stalling(exported_policy,
                                                                     monkeypatch):
    """--fast runs in lockstep (the server waits up to the lockstep timeout for each command).
    When the client dies, one timeout is waited, then the latency budget: the command watchdog
    damps within damp_after_ticks, and the run ends instead of waiting on every tick."""
    pytest.importorskip("mujoco")
    import hal.server.sim.main as sim_main

    monkeypatch.setattr(sim_main, "LOCKSTEP_TIMEOUT_MS", 400.0)
    tag = f"{os.getpid()}_{next(_runs)}"
    config = config_from_argv([
        "--engine", str(exported_policy), "--robot", "go2", "--fast", "--control-rate", "50",
        "--duration", str(POLICY_AT_S + 3.0), "--log-level", "WARNING",
        "--observation-bind", f"inproc://lockstep_obs_{tag}",
        "--command-bind", f"inproc://lockstep_cmd_{tag}", "--estop-bind", "none"])
    plan = plan_from_config(config)
    assert plan.server_config.lockstep_timeout_ms == 400.0
    killed: dict[str, int] = {}

    def kill_after_hand_over(server, client) -> None:
        def listener(record) -> None:
            if record.safety_mode == "policy" and "seq" not in killed:
                killed["seq"] = record.seq
                client.stop()
        server.tick_listeners.append(listener)

    plan.on_started.append(kill_after_hand_over)
    start_ns = time.monotonic_ns()
    report = run_appliance(plan, config)
    wall_s = (time.monotonic_ns() - start_ns) / 1e9
    events = report["safety"]["events"]
    assert "seq" in killed
    assert [e["reason"] for e in events if e["to"] == "damping"][0] == "command_watchdog"
    # One lockstep timeout (0.4 s) and the rest at the policy's pace: not 0.4 s per tick (the
    # remaining ~150 ticks would take a minute).
    assert wall_s < 30.0, wall_s

"""The appliance's run report (``run.json``): the server's part, the policy's and the listeners'.

:class:`RunReport` extends :class:`~hal.report.server.ServerReport` (so the loop's keys stay at
the top level of the file) with the report's version, the effective configuration, the policy's
sections and every listener's (:meth:`hal.server.cli.AppliancePlan.add_report_section`). It is
built in one place, :func:`hal.server.cli.run_appliance`; :func:`load_run_report` reads a file
back and :func:`format_report` prints the exit table from it; ``python -m hal.tools.report_schema`` writes its JSON Schema, ``docs/run-report.schema.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hal.report.schema import (
    ReportFormatError,
    ReportSection,
    VersionedReport,
    json_schema,
    optional,
)
from hal.report.sections import (
    DryRunReport,
    FaultReport,
    LiveReport,
    OperatorReport,
    RecorderReport,
    SimReport,
    VideoReport,
)
from hal.report.server import LatencyRow, PolicyTargets, ServerReport

__all__ = ["InferenceReport", "CommandReport", "PolicyReport", "RunReport", "load_run_report",
           "run_report_schema", "format_report", "SECTION_NAMES"]



@dataclass(kw_only=True)
class InferenceReport(ReportSection):
    """The in-process inference client: counters, per-stage timings (µs), errors (repr).

    ``counters`` is open (every client counter by name); ``timings_us`` keyed by stage.
    """

    counters: dict[str, int]
    timings_us: dict[str, LatencyRow]
    errors: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class CommandReport(ReportSection):
    """The client's last velocity command."""

    forward_speed_m_s: float
    mode: str
    yaw_rate_rad_s: float


@dataclass(kw_only=True)
class PolicyReport(ReportSection):
    """The policy that ran: its file, backend and where it came from."""

    path: str
    backend: str
    source: str


@dataclass(kw_only=True)
class RunReport(VersionedReport, ServerReport):
    """A run of ``krabby-hal-server-sim`` / ``-jetson``: the file ``--report`` writes.

    Open content: ``config`` (the effective configuration, ``hal.config.config_to_dict``),
    ``training_contract`` (``compute.parkour.contract.TrainingContract.to_dict``, whose own
    ``from_dict`` checks it), ``randomization`` (``hal.sim.randomization.EpisodeDraw``),
    ``motor_health`` and ``camera`` (the backend's own records).
    """

    title = "krabby run report"

    config: dict[str, Any] = field(default_factory=dict)
    training_contract: dict[str, Any] | None = optional()
    inference: InferenceReport | None = optional()
    command: CommandReport | None = optional()
    policy: PolicyReport | None = optional()
    recorder: RecorderReport | None = optional()
    operator: OperatorReport | None = optional()
    live: LiveReport | None = optional()
    faults: list[FaultReport] | None = optional()
    sim: SimReport | None = optional()
    video: VideoReport | None = optional()
    randomization: dict[str, Any] | None = optional()
    dry_run: DryRunReport | None = optional()
    motor_health: dict[str, Any] | None = optional()
    camera: dict[str, Any] | None = optional()


SECTION_NAMES = ("recorder", "operator", "live", "faults", "sim", "video", "randomization",
                 "dry_run", "motor_health", "camera")
"""The sections a listener may add (:meth:`hal.server.cli.AppliancePlan.add_report_section`)."""


def load_run_report(source: str | Path | dict[str, Any]) -> RunReport:
    """A run report from its file (or its parsed JSON).

    Raises:
        ReportFormatError: a missing, unknown or mistyped key (named), or another version.
    """
    if isinstance(source, dict):
        return RunReport.from_dict(source)
    path = Path(source)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ReportFormatError(f"{path}: not JSON ({exc})") from None
    return RunReport.from_dict(data, str(path))


def run_report_schema() -> dict[str, Any]:
    """The JSON Schema of ``run.json``, generated from :class:`RunReport`."""
    return json_schema(RunReport, "run-report.schema.json")


def format_report(report: RunReport) -> str:
    """The short table printed at exit, read from the typed report (a renamed field fails here,
    it never prints ``None``)."""
    if isinstance(report, dict):  # a report read from its JSON file
        report = load_run_report(report)
    lines = [f"robot {report.robot} at {report.control_rate_hz} Hz: "
             f"{report.cycles} cycles, {report.commands_applied} commands applied, "
             f"{report.deadline_misses} deadline misses, "
             f"{report.malformed_dropped} malformed dropped"]
    lines.append(f"{'latency (µs)':<22}{'p50':>10}{'p99':>10}{'max':>10}{'n':>8}")
    rows = dict(report.latency_us)
    rows["loop_jitter"] = report.loop_jitter_us
    for name in ("obs_to_command", "actor_step", "depth_step", "loop_jitter", "tick_work",
                 "world_step"):
        row = rows.get(name)
        if row is not None and row.count:
            lines.append(f"{name:<22}{row.p50:>10.1f}{row.p99:>10.1f}{row.max:>10.1f}"
                         f"{row.count:>8}")
    safety = report.safety
    estop = report.estop
    if estop is not None:
        lines.append(f"e-stop endpoint: {estop.received} received, {estop.rejected} "
                     f"rejected (malformed), {estop.refused} refused (RESET/START without an "
                     "operator key)")
    clients = report.clients
    if clients is not None and clients.refused:
        lines.append(f"policy clients refused (another one drove): {len(clients.refused)}, "
                     f"{clients.foreign_commands} commands dropped")
    lines.append(f"safety: final mode {safety.mode_final}, {len(safety.events)} transitions")
    edits = safety.target_edits
    if edits is not None and edits.policy_ticks:
        lines.append(f"safety edited the policy's target on {edits.edited_ticks} of "
                     f"{edits.policy_ticks} policy ticks ({100 * edits.fraction:.2f}%, "
                     f"largest {edits.max_edit_rad:.3f} rad); outside the torque window "
                     f"(counted, the motors clip torque): {edits.outside_torque_window_ticks}")
    lines.extend(_policy_target_lines(safety.policy_targets))
    for event in safety.events[-8:]:
        lines.append(f"  {event.from_mode} -> {event.to_mode}: {event.reason} "
                     f"{event.detail}".rstrip())
    faults = report.faults or []
    if faults:
        lines.append("fault drills (T: simulated seconds after the policy took over):")
    for fault in faults:
        lines.append(_fault_line(fault))
    if report.policy is not None:
        lines.append(f"policy: {report.policy.path} ({report.policy.backend}, "
                     f"{report.policy.source})")
    recorder = report.recorder
    if recorder is not None:
        tick = (recorder.listener_us or {}).get("tick")
        if recorder.path is not None:
            lines.append(f"recorded {recorder.written} records to {recorder.path} "
                         f"({recorder.dropped} dropped)")
        if tick is not None and tick.count:
            lines.append(f"recorder cost per tick: p50 {tick.p50:.1f} µs, p99 {tick.p99:.1f} µs")
        for dump in (recorder.flight.dumps if recorder.flight is not None else []):
            lines.append(f"flight recorder dump: {dump}")
    live = report.live
    if live is not None:
        dropped = {k: v for k, v in (live.dropped or {}).items() if v}
        lines.append(f"live view ws://{live.host}:{live.port}: sent {live.sent or {}}, "
                     f"dropped {dropped or 'none'}")
    return "\n".join(lines)


def _fault_line(fault: FaultReport) -> str:
    """A fault drill's row: when it fired, how, and what the safety layer did."""
    if not fault.fired:
        return f"  {fault.fault}: {fault.note or 'not fired'}"
    line = (f"  {fault.fault}: from tick {fault.seq} (sim {fault.sim_time_s:.3f} s) "
            f"via {fault.via}")
    response = fault.response
    if response is not None:
        line += (f" -> {response.mode} ({response.reason}) on tick {response.seq}, tick "
                 f"{response.ticks} of the fault")
    else:
        line += f" -> {fault.note or 'no mode change'}"
    return line


def _policy_target_lines(asked: PolicyTargets | None) -> list[str]:
    """What the policy asked for, per joint: how far past its limit, how long, and the share of
    the action range used (one row per joint)."""
    if asked is None:
        return []
    past = [(name, joint) for name, joint in asked.joints.items()
            if joint.furthest_past_limit_rad > 0.0]
    lines = []
    if past:
        past.sort(key=lambda item: -item[1].furthest_past_limit_rad)
        lines.append("policy targets past joint limits: " + ", ".join(
            f"{name} {joint.furthest_past_limit_rad:.3f} rad" for name, joint in past))
    lines.append(f"{'policy targets':<22}{'past limit':>12}{'time past':>11}{'range used':>12}")
    for name, joint in asked.joints.items():
        lines.append(f"  {name:<20}{joint.furthest_past_limit_rad:>8.3f} rad"
                     f"{joint.time_past_limit_s:>9.2f} s"
                     f"{100 * joint.action_range_used:>11.0f}%")
    return lines

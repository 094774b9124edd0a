"""The appliance's run report (``run.json``): the server's part, the policy's and the listeners'.

:class:`RunReport` extends :class:`~hal.report.server.ServerReport` (so the loop's keys stay at
the top level of the file) with the report's version, the effective configuration, the policy's
sections and every listener's (:meth:`hal.server.cli.AppliancePlan.add_report_section`). It is
built in one place, :func:`hal.server.cli.run_appliance`; :func:`load_run_report` reads a file
back; ``python -m hal.tools.report_schema`` writes its JSON Schema, ``docs/run-report.schema.json``.
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
from hal.report.server import LatencyRow, ServerReport

__all__ = ["InferenceReport", "CommandReport", "PolicyReport", "RunReport", "load_run_report",
           "run_report_schema", "SECTION_NAMES"]



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

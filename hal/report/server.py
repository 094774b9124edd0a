"""The HAL server's part of the run report: loop counters, latencies, safety, who drove.

:class:`ServerReport` is what :meth:`hal.server.base.HalServer.report` returns; the appliance's
:class:`~hal.server.run_report.RunReport` extends it with the policy's and the listeners'
sections, so its keys stay at the top level of ``run.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hal.report.schema import ReportSection, key, optional

__all__ = ["LatencyRow", "SafetyEvent", "TargetEdits", "JointTargets", "JointShare",
           "JointDistance", "PolicyTargets", "SafetyReport", "ClientsReport", "EstopCounts",
           "ServerReport"]


@dataclass(kw_only=True)
class LatencyRow(ReportSection):
    """One timing's percentiles in µs (NaN where ``count`` is 0)."""

    count: int
    p50: float
    p90: float
    p99: float
    max: float
    mean: float


@dataclass(kw_only=True)
class SafetyEvent(ReportSection):
    """One mode transition of the safety layer."""

    t_ns: int
    from_mode: str = key("from")
    to_mode: str = key("to")
    reason: str
    detail: str = ""


@dataclass(kw_only=True)
class TargetEdits(ReportSection):
    """How often the safety layer changed the policy's target (ticks in ``policy``)."""

    policy_ticks: int
    edited_ticks: int
    fraction: float
    max_edit_rad: float
    outside_torque_window_ticks: int
    max_step_rad_per_period: float | None
    command_period_s: float | None


@dataclass(kw_only=True)
class JointTargets(ReportSection):
    """What the policy asked of one joint."""

    furthest_past_limit_rad: float
    time_past_limit_s: float
    ticks_past_limit: int
    action_range_used: float


@dataclass(kw_only=True)
class JointDistance(ReportSection):
    """The joint whose target went furthest past its limit."""

    joint: str
    rad: float


@dataclass(kw_only=True)
class JointShare(ReportSection):
    """The joint that used the largest share of its action range."""

    joint: str
    share: float


@dataclass(kw_only=True)
class PolicyTargets(ReportSection):
    """What the policy asked for, per joint (hardware order), and the extremes over joints."""

    joints: dict[str, JointTargets]
    furthest_past_limit: JointDistance
    most_action_range_used: JointShare


@dataclass(kw_only=True)
class SafetyReport(ReportSection):
    """The safety layer's final mode, transitions and counters.

    ``counters`` is open: one count per ``transition.*``, ``reason.*``, ``ticks.*``, ... name.
    """

    mode_final: str
    events: list[SafetyEvent] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    target_edits: TargetEdits | None = optional()
    policy_targets: PolicyTargets | None = optional()


@dataclass(kw_only=True)
class ClientsReport(ReportSection):
    """Who drove the command stream, who was refused and the commands dropped from them."""

    owner: str | None
    refused: list[str] = field(default_factory=list)
    foreign_commands: int = 0


@dataclass(kw_only=True)
class EstopCounts(ReportSection):
    """The network e-stop endpoint's messages."""

    received: int
    rejected: int
    refused: int


@dataclass(kw_only=True)
class ServerReport(ReportSection):
    """The control loop's report: rates, counters, latency percentiles (µs), safety, network.

    ``counters`` is open (every loop counter by name); the five the exit table prints are also
    fields of their own. ``latency_us`` is keyed by timing name (``obs_to_command``,
    ``actor_step``, ``depth_step``, ``tick_work``, ``world_step``, ...).
    """

    robot: str
    control_rate_hz: float
    command_interval_ticks: int
    latency_budget_ms: float
    realtime: bool
    cycles: int
    published: int
    commands_applied: int
    deadline_misses: int
    malformed_dropped: int
    counters: dict[str, int]
    latency_us: dict[str, LatencyRow]
    loop_jitter_us: LatencyRow
    safety: SafetyReport
    clients: ClientsReport | None = None  # null before the command socket was opened
    estop: EstopCounts | None = None  # null: no e-stop endpoint

    def server_fields(self) -> dict[str, Any]:
        """This report's fields as keyword arguments (to build a report that extends it)."""
        from hal.report.schema import section_fields

        return {name: getattr(self, name) for name, *_ in section_fields(ServerReport)}

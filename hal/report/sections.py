"""The listeners' sections of the run report: recorder, operator, live view, simulator (ground
truth, course, video, fault drills), motors and camera.

Each listener builds its section as one of these types and hands it to the appliance through
:meth:`hal.server.cli.AppliancePlan.add_report_section`. Open content (``dict[str, Any]``) is
kept where the shape is a backend's own: a motor driver's health, a camera's report, an
operator source's counts, a terrain's parameters, a fault drill's injected errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hal.report.schema import ReportSection, optional

__all__ = ["CostRow", "FlightReport", "RecorderReport", "OperatorCommand", "OperatorReport",
           "LiveReport", "FaultResponseReport", "FaultReport", "Fall", "FallLimits", "Track",
           "CourseReport", "SimReport", "VideoReport", "DryRunReport"]


@dataclass(kw_only=True)
class CostRow(ReportSection):
    """A listener's cost percentiles in µs."""

    count: int
    p50: float
    p99: float
    max: float


@dataclass(kw_only=True)
class FlightReport(ReportSection):
    """The flight recorder: its window, memory and the dumps it wrote."""

    window_s: float
    directory: str
    memory_mb: float
    dumps: list[str] = field(default_factory=list)
    suppressed: int = 0
    failures: int = 0


@dataclass(kw_only=True)
class RecorderReport(ReportSection):
    """``--record`` / the flight recorder: records written and dropped, the listeners' cost.

    The cost tables are keyed by stream (``tick``, ``actor``, ``depth``); ``*_by_kind`` by record
    kind.
    """

    listener_us: dict[str, CostRow] | None = optional()
    listener_cpu_us: dict[str, CostRow] | None = optional()
    path: str | None = optional()
    written: int | None = optional()
    dropped: int | None = optional()
    written_by_kind: dict[str, int] | None = optional()
    dropped_by_kind: dict[str, int] | None = optional()
    error: str | None = None
    flight: FlightReport | None = optional()

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.path is None:
            out.pop("error", None)  # only a run log has an error slot
        return out


@dataclass(kw_only=True)
class OperatorCommand(ReportSection):
    """The operator's last command."""

    forward_speed_m_s: float
    yaw_rate_rad_s: float
    mode: str


@dataclass(kw_only=True)
class OperatorReport(ReportSection):
    """The operator hub: its final command, limits, counters, sources and changes.

    ``sources`` (each source's own counts) and ``events`` (the change log's entries) are open.
    """

    command_final: OperatorCommand
    speed_range_m_s: list[float]
    max_yaw_rate_rad_s: float
    counters: dict[str, int] = field(default_factory=dict)
    sources: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass(kw_only=True)
class LiveReport(ReportSection):
    """``--live``: the address served and the messages sent, dropped and offered per stream."""

    host: str
    port: int
    sent: dict[str, int] | None = optional()
    dropped: dict[str, int] | None = optional()
    offered: dict[str, int] | None = optional()
    errors: int | None = optional()


@dataclass(kw_only=True)
class FaultResponseReport(ReportSection):
    """The safety layer's first mode change after a drill fired."""

    mode: str
    reason: str | None
    detail: str | None
    seq: int
    ticks: int
    sim_time_s: float


@dataclass(kw_only=True)
class FaultReport(ReportSection):
    """One fault drill (``--fault``): when it fired, how, and what the safety layer did."""

    fault: str
    kind: str
    at_s: float
    duration_s: float | None
    fired: bool
    seq: int | None
    sim_time_s: float | None
    after_policy_s: float | None
    via: str | None
    mode_before: str | None
    response: FaultResponseReport | None
    first_missed_seq: int | None
    note: str | None
    errors: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class Fall(ReportSection):
    """A fall: when (simulated s), by tilt or height, its value and the safety mode then."""

    t_s: float
    kind: str
    value: float
    mode: str


@dataclass(kw_only=True)
class FallLimits(ReportSection):
    """What counts as a fall."""

    tilt_rad: float
    height_m: float


@dataclass(kw_only=True)
class Track(ReportSection):
    """The trunk's pose over time: ``rows`` of ``columns`` (t_s, x, y, z, roll, pitch, yaw,
    mode)."""

    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)


@dataclass(kw_only=True)
class CourseReport(ReportSection):
    """The terrain a course runs on (``params`` are the terrain kind's own)."""

    terrain: str
    difficulty: float
    length_m: float
    goals_m: list[list[float]]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class SimReport(ReportSection):
    """The simulator's ground truth from the hand-over on; on a terrain with goals, the course.

    Before the policy took over only ``handover_sim_time_s`` (null), ``note``, ``falls`` and
    ``track`` are present.
    """

    handover_sim_time_s: float | None
    note: str | None = optional()
    duration_s: float | None = optional()
    distance_m: float | None = optional()
    forward_m: float | None = optional()
    lateral_drift_m: float | None = optional()
    mean_forward_speed_m_s: float | None = optional()
    mean_speed_command_m_s: float | None = None
    heading_change_rad: float | None = optional()
    max_abs_roll_rad: float | None = optional()
    max_abs_pitch_rad: float | None = optional()
    min_base_height_m: float | None = optional()
    mean_base_height_m: float | None = optional()
    falls: list[Fall] = field(default_factory=list)
    fall_limits: FallLimits | None = optional()
    track_rate_hz: float | None = optional()
    track: Track
    course: CourseReport | None = optional()
    goals_total: int | None = optional()
    goals_reached: int | None = optional()
    goal_times_s: list[float] | None = optional()
    edge_violations: int | None = optional()
    left_policy_s: float | None = None
    x_displacement: float | None = optional()
    success: bool | None = optional()

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.handover_sim_time_s is None:
            out.pop("mean_speed_command_m_s", None)  # written only once the policy took over
        if self.course is None:
            out.pop("left_policy_s", None)  # a course's key
        return out


@dataclass(kw_only=True)
class VideoReport(ReportSection):
    """``--video``: the file, its frames and the contact sheet."""

    path: str
    frames: int
    fps: float
    size: list[int]
    contact_sheet: str | None
    error: str | None


@dataclass(kw_only=True)
class DryRunReport(ReportSection):
    """``--dry-run``: the commands the motors did not get."""

    mode: str
    commands: int
    position_commands: int
    damp_commands: int
    max_target_minus_measured_rad: float | None
    record: str | None

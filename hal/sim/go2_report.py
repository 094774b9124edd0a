"""The report of ``krabby-go2-sim --report``: the simulated Go2's wire, faults and motors.

Same base and versioning as the appliance's run report (:mod:`hal.report.schema`); its ``sim``
section is the appliance's :class:`~hal.report.sections.SimReport`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hal.report.schema import ReportSection, VersionedReport
from hal.report.sections import SimReport

__all__ = ["WireReport", "WireFaultsReport", "MotorCommandInForce", "Go2SimReport"]


@dataclass(kw_only=True)
class WireReport(ReportSection):
    """The DDS wire: where it ran, its counters and first-time events (seconds since start).

    ``counters`` and ``events`` are open: one entry per message kind / event name.
    """

    network: str | None
    domain_id: int
    counters: dict[str, int] = field(default_factory=dict)
    events: dict[str, float] = field(default_factory=dict)
    sport_mode: str | None = None
    t0_monotonic_ns: int


@dataclass(kw_only=True)
class WireFaultsReport(ReportSection):
    """The wire faults asked for (``--wire-fault``, each as given) and when each began (s)."""

    asked: list[dict[str, Any]] = field(default_factory=list)
    began_s: dict[str, float] = field(default_factory=dict)


@dataclass(kw_only=True)
class MotorCommandInForce(ReportSection):
    """The low-level command a motor was holding at the end."""

    q: float
    kp: float
    kd: float
    kd_dq_plus_tau: float


@dataclass(kw_only=True)
class Go2SimReport(VersionedReport):
    """``krabby-go2-sim --report``: the robot double's view of a run (motors by hardware name)."""

    title = "krabby-go2-sim report"

    wire: WireReport
    faults: WireFaultsReport
    motor_slots: dict[str, int]
    command_in_force: dict[str, MotorCommandInForce]
    last_position_command: dict[str, dict[str, float]] | None
    joint_position_rad: dict[str, float]
    depth_frames_published: int | None
    sim: SimReport

"""What a fault drill is and what it leaves behind: its kind, its ``--fault`` spec, its record.

The drills themselves (how each fault is injected, the stated responses) are in
:mod:`hal.server.sim.faults`; this module holds the types they and the report share.
"""

from __future__ import annotations

import enum
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from hal.safety.events import Mode

__all__ = [
    "FaultKind", "FAULT_KINDS", "CLIENT_FAULTS", "DEFAULT_STALL_S", "FaultSpecError", "FaultSpec",
    "parse_fault", "parse_faults", "FaultResponse", "FaultRecord",
]


class FaultKind(str, enum.Enum):
    """The faults ``krabby-hal-server-sim --fault`` rehearses (values as written on the CLI)."""

    STALL_INFERENCE = "stall-inference"
    KILL_INFERENCE = "kill-inference"
    NAN_ACTIONS = "nan-actions"
    WILD_ACTIONS = "wild-actions"
    DROP_IMU = "drop-imu"
    DROP_DEPTH = "drop-depth"
    ESTOP = "estop"
    LANDING = "landing"

    def __str__(self) -> str:
        return self.value


FAULT_KINDS: tuple[FaultKind, ...] = tuple(FaultKind)
CLIENT_FAULTS = frozenset({FaultKind.STALL_INFERENCE, FaultKind.KILL_INFERENCE,
                           FaultKind.NAN_ACTIONS, FaultKind.WILD_ACTIONS, FaultKind.LANDING})
"""Drills that act on the in-process inference client (they need it running)."""
DEFAULT_STALL_S = 1.0


class FaultSpecError(ValueError):
    """A ``--fault`` value does not follow ``KIND@T[:D]`` (the message says what and how)."""


@dataclass(frozen=True)
class FaultSpec:
    """One drill: ``kind`` at ``at_s`` seconds of simulated time after the policy took over."""

    kind: FaultKind
    at_s: float
    duration_s: float | None = None

    @property
    def text(self) -> str:
        """The spec as written on the command line (normalised)."""
        base = f"{self.kind.value}@{self.at_s:g}"
        return base if self.duration_s is None else f"{base}:{self.duration_s:g}"


def _seconds(text: str, what: str, spec: str, positive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise FaultSpecError(f"--fault {spec!r}: {what} {text!r} must be a finite number of "
                             f"seconds {bound}")
    return value


def parse_fault(text: str) -> FaultSpec:
    """Parse ``KIND@T`` or ``KIND@T:D`` (see :mod:`hal.server.sim.faults`).

    Raises:
        FaultSpecError: unknown kind, missing or bad time, or a duration where none is taken.
    """
    spec = str(text).strip()
    name, at, rest = spec.partition("@")
    name = name.strip().lower()
    try:
        kind = FaultKind(name)
    except ValueError:
        raise FaultSpecError(f"--fault {text!r}: unknown fault {name!r}; valid: "
                             f"{', '.join(k.value for k in FaultKind)} (as KIND@T, e.g. "
                             "nan-actions@3)") from None
    if not at or not rest.strip():
        raise FaultSpecError(f"--fault {text!r}: missing the time; write {kind}@T with T in "
                             f"seconds after the policy took over (e.g. {kind}@3)")
    time_text, colon, duration_text = rest.partition(":")
    at_s = _seconds(time_text.strip(), "time", spec, positive=False)
    duration_s = None
    if colon:
        if kind is not FaultKind.STALL_INFERENCE:
            raise FaultSpecError(f"--fault {text!r}: only stall-inference takes a duration "
                                 f"(stall-inference@T:D); write {kind}@{time_text.strip()}")
        duration_s = _seconds(duration_text.strip(), "duration", spec, positive=True)
    elif kind is FaultKind.STALL_INFERENCE:
        duration_s = DEFAULT_STALL_S
    return FaultSpec(kind, at_s, duration_s)


def parse_faults(texts: Sequence[str] | None) -> list[FaultSpec]:
    """Parse every ``--fault`` value, in order."""
    return [parse_fault(t) for t in texts or ()]


@dataclass
class FaultResponse:
    """The safety layer's first mode change after a drill fired."""

    mode: Mode
    reason: str | None
    detail: str | None
    seq: int  # the tick it happened on
    ticks: int  # counted from the drill's first tick (1: that tick)
    sim_time_s: float  # since the world's clock origin


@dataclass
class FaultRecord:
    """One drill in the run report: when it fired, how it was injected, what the layer did.

    ``seq`` is the first tick that can see the fault; times are simulated seconds since the
    world's clock origin (``sim_time_s``) and since the policy took over (``after_policy_s``).
    """

    spec: FaultSpec
    fired: bool = False
    seq: int | None = None
    sim_time_s: float | None = None
    after_policy_s: float | None = None
    via: str | None = None
    mode_before: Mode | None = None
    response: FaultResponse | None = None
    first_missed_seq: int | None = None  # stalls and kills: the first tick without a command
    note: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def kind(self) -> FaultKind:
        return self.spec.kind

    def as_dict(self) -> dict[str, Any]:
        """The record as the JSON report holds it (enums as their values)."""
        out: dict[str, Any] = {"fault": self.spec.text, "kind": self.kind.value,
                               "at_s": self.spec.at_s, "duration_s": self.spec.duration_s}
        out.update((k, v) for k, v in asdict(self).items() if k != "spec")
        if self.mode_before is not None:
            out["mode_before"] = self.mode_before.value
        if self.response is not None:
            out["response"]["mode"] = self.response.mode.value
        return out

"""Faults on the wire of the simulated Go2 (``krabby-go2-sim --fault``), and their safe states.

``KIND[=VALUE][@T]``: the fault starts ``T`` seconds (default 0) after the first LowCmd the robot
double accepted; ``T`` given as ``start`` (or a kind without ``@``) means from the start, before
any client connects. Each ends in a documented safe state of the krabby side:

===================  ==================================================  =========================
kind (VALUE)         what the robot double does                          krabby's safe state
===================  ==================================================  =========================
drop-lowstate (s)    publishes no LowState for VALUE s (default 0.5)     joints stale → damping
delay-lowstate (ms)  publishes each LowState VALUE ms late (default 200) stale (tick-anchored
                                                                         stamps) → damping
corrupt-lowstate     every LowState carries a wrong CRC                  dropped, counted → stale
                                                                         → damping
silent               stops publishing and answering for good             stale → damping
hot-motor (°C)       FR_calf reports VALUE °C (default 85)               at start: refuses to
                                                                         start; running: damping
lost-packets (/s)    the lost counters rise by VALUE per s (default 200) as hot-motor
refuse-release       ReleaseMode answers 0 but sport mode stays          refuses to start: no
                                                                         LowCmd is ever sent
mute-rpc             motion switcher and sport services answer too late  refuses to start
                     (the client's RPC times out)                        (CheckMode failed)
===================  ==================================================  =========================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["WireFault", "WIRE_FAULT_KINDS", "parse_wire_fault", "WireFaultState"]

WIRE_FAULT_KINDS: dict[str, float | None] = {
    "drop-lowstate": 0.5, "delay-lowstate": 200.0, "corrupt-lowstate": None, "silent": None,
    "hot-motor": 85.0, "lost-packets": 200.0, "refuse-release": None, "mute-rpc": None,
}


@dataclass(frozen=True)
class WireFault:
    """One fault: ``kind``, its ``value`` (see the table) and ``after_s`` (None: from the start)."""

    kind: str
    value: float | None = None
    after_s: float | None = None


def parse_wire_fault(text: str) -> WireFault:
    """Parse ``KIND[=VALUE][@T]``.

    Raises:
        ValueError: unknown kind, or a bad value or time (the message lists the valid ones).
    """
    spec, _, when = text.partition("@")
    kind, _, value_text = spec.partition("=")
    if kind not in WIRE_FAULT_KINDS:
        raise ValueError(f"--fault {text!r}: unknown kind {kind!r}; valid: {', '.join(WIRE_FAULT_KINDS)}")
    default = WIRE_FAULT_KINDS[kind]
    value = default
    if value_text:
        if default is None:
            raise ValueError(f"--fault {text!r}: {kind} takes no value")
        try:
            value = float(value_text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"--fault {text!r}: the value must be a positive number, got {value_text!r}")
    after = None
    if when and when != "start":
        try:
            after = float(when)
        except ValueError:
            after = math.nan
        if not (math.isfinite(after) and after >= 0):
            raise ValueError(f"--fault {text!r}: the time after the first LowCmd must be a number "
                             f">= 0 (seconds) or 'start', got {when!r}")
    return WireFault(kind, value, after)


class WireFaultState:
    """Which faults are active at a given time (seconds since the first accepted LowCmd, or None
    before it); records when each began for the report."""

    def __init__(self, faults: tuple[WireFault, ...]) -> None:
        self.faults = faults
        self.began_s: dict[str, float] = {}

    def active(self, since_first_cmd_s: float | None, now_s: float) -> dict[str, float | None]:
        """The active faults (kind → value) at ``now_s`` (the robot double's run time)."""
        out: dict[str, float | None] = {}
        for fault in self.faults:
            if fault.after_s is None:
                start = 0.0
            elif since_first_cmd_s is None or since_first_cmd_s < fault.after_s:
                continue
            else:
                start = now_s - since_first_cmd_s + fault.after_s
            if fault.kind == "drop-lowstate" and now_s - start > (fault.value or 0.0):
                continue  # a drop lasts VALUE seconds
            self.began_s.setdefault(fault.kind, round(start, 4))
            out[fault.kind] = fault.value
        return out

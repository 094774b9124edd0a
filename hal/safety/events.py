"""Modes of the safety layer and the record of what it did: transitions, counters, limited logs.

Every transition is logged (repeats of the same from/to/reason at most once per interval, with the
number suppressed), counted twice (``transition.<from>-><to>`` and ``reason.<reason>``) and kept in
a bounded list for the run report. Reasons are short stable codes (the ``REASON_*`` constants); the
numbers behind a transition go in its ``detail`` text.
"""

from __future__ import annotations

import collections
import enum
import logging
from typing import Any

__all__ = [
    "Mode",
    "ACTIVE_MODES",
    "mode_code",
    "mode_from_code",
    "REASON_OPERATOR_START",
    "REASON_OPERATOR_STAND",
    "REASON_STAND_UP_DONE",
    "REASON_STAND_DONE",
    "REASON_ENTRY_GATE",
    "REASON_DEPTH_STALE",
    "REASON_COMMAND_WATCHDOG",
    "REASON_INVALID_COMMAND",
    "REASON_IMPLAUSIBLE_COMMAND",
    "REASON_JOINTS_INVALID",
    "REASON_JOINTS_STALE",
    "REASON_IMU_INVALID",
    "REASON_IMU_STALE",
    "REASON_TILT",
    "REASON_JOINT_VELOCITY",
    "REASON_JOINT_POSITION",
    "REASON_ESTOP",
    "REASON_ESTOP_RESET",
    "REASON_SHUTDOWN",
    "REASON_CLIENT_DAMP",
    "REASON_INTERNAL_ERROR",
    "TransitionLog",
]


class Mode(str, enum.Enum):
    """What the safety layer sends to the motors."""

    IDLE = "idle"  # damped, waiting for the operator
    STAND_UP = "stand_up"  # ramp from the measured pose to the default pose
    READY = "ready"  # holding the default pose; the entry gate decides when the policy starts
    POLICY = "policy"  # the policy's targets (blended in at first), checked every tick
    STAND = "stand"  # ramp to and hold the default pose; re-enters the policy through the gate
    DAMPING = "damping"  # kp 0, kd > 0 after a fault; the operator may start again
    ESTOP = "estop"  # damped and latched until an explicit reset

    def __str__(self) -> str:
        return self.value


ACTIVE_MODES = frozenset({Mode.STAND_UP, Mode.READY, Mode.POLICY, Mode.STAND})

_MODE_CODES = {mode: code for code, mode in enumerate(Mode)}
_MODES_BY_CODE = tuple(Mode)


def mode_code(mode: Mode) -> int:
    """The mode's code on the wire (the observation header's ``control_mode``)."""
    return _MODE_CODES[mode]


def mode_from_code(code: int) -> Mode:
    """The mode a wire code names.

    Raises:
        ValueError: an unknown code (a peer speaking another protocol revision).
    """
    if not 0 <= code < len(_MODES_BY_CODE):
        raise ValueError(f"mode code {code}: valid codes are 0..{len(_MODES_BY_CODE) - 1} "
                         f"({', '.join(m.value for m in _MODES_BY_CODE)})")
    return _MODES_BY_CODE[code]
"""Modes that send position targets (all others send the damping command)."""

REASON_OPERATOR_START = "operator_start"
REASON_OPERATOR_STAND = "operator_stand"
REASON_STAND_UP_DONE = "stand_up_done"
REASON_STAND_DONE = "stand_done"
REASON_ENTRY_GATE = "entry_gate"
REASON_DEPTH_STALE = "depth_stale"
REASON_COMMAND_WATCHDOG = "command_watchdog"
REASON_INVALID_COMMAND = "invalid_command"
REASON_IMPLAUSIBLE_COMMAND = "implausible_command"
REASON_JOINTS_INVALID = "joints_invalid"
REASON_JOINTS_STALE = "joints_stale"
REASON_JOINT_VELOCITY = "joint_velocity_limit"
REASON_JOINT_POSITION = "joint_position_limit"
REASON_IMU_INVALID = "imu_invalid"
REASON_IMU_STALE = "imu_stale"
REASON_TILT = "tilt"
REASON_ESTOP = "estop"
REASON_ESTOP_RESET = "estop_reset"
REASON_CLIENT_DAMP = "client_damp"
REASON_SHUTDOWN = "shutdown"
REASON_INTERNAL_ERROR = "internal_error"

_FAULT_TARGETS = frozenset({Mode.DAMPING, Mode.ESTOP})


class TransitionLog:
    """Bounded event list, counters and a rate limit on repeated log lines.

    Args:
        max_events: Events kept; older ones are dropped (and counted in ``events.dropped``).
        log_interval_ns: Repeats of one log key within this interval are suppressed and counted.
        logger: Where log lines go.
    """

    def __init__(self, max_events: int, log_interval_ns: int, logger: logging.Logger) -> None:
        self._events: collections.deque[dict[str, Any]] = collections.deque(maxlen=max_events)
        self._counters: dict[str, int] = {}
        self._log_interval_ns = int(log_interval_ns)
        self._last_logged_ns: dict[str, int] = {}
        self._suppressed: dict[str, int] = {}
        self._logger = logger

    def record(self, t_ns: int, from_mode: Mode, to_mode: Mode, reason: str, detail: str) -> None:
        """Keep, count and log one transition."""
        if len(self._events) == self._events.maxlen:
            self.count("events.dropped")
        self._events.append({"t_ns": int(t_ns), "from": from_mode.value, "to": to_mode.value,
                             "reason": reason, "detail": detail})
        self.count(f"transition.{from_mode.value}->{to_mode.value}")
        self.count(f"reason.{reason}")
        level = logging.WARNING if to_mode in _FAULT_TARGETS else logging.INFO
        self.log(f"transition.{from_mode.value}->{to_mode.value}.{reason}", t_ns, level,
                 "safety: %s -> %s (%s)%s", from_mode.value, to_mode.value, reason,
                 f": {detail}" if detail else "")

    def count(self, key: str, n: int = 1) -> None:
        """Add ``n`` to counter ``key``."""
        self._counters[key] = self._counters.get(key, 0) + n

    def log(self, key: str, now_ns: int, level: int, message: str, *args: Any,
            exc_info: bool = False) -> bool:
        """Log unless ``key`` was logged less than the interval ago; returns True if logged."""
        last = self._last_logged_ns.get(key)
        if last is not None and 0 <= now_ns - last < self._log_interval_ns:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._last_logged_ns[key] = now_ns
        suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            message += " [%d similar suppressed]"
            args = (*args, suppressed)
        self._logger.log(level, message, *args, exc_info=exc_info)
        return True

    def events(self) -> list[dict[str, Any]]:
        """The kept transitions, oldest first: dicts {t_ns, from, to, reason, detail} (copies)."""
        return [dict(e) for e in self._events]

    def counters(self) -> dict[str, int]:
        """A copy of every counter."""
        return dict(self._counters)

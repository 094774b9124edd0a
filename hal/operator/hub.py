"""One command path: every source's events, applied on the control loop's thread.

:class:`OperatorHub` is a server tick listener. Each tick it polls every source (each returns at
once), then, in the order the events came:

- ``start`` / ``stop`` / ``estop`` / ``reset`` go to the safety layer (``request_start()``,
  ``request_stand()``, ``estop(reason)``, ``reset_estop()``) — here, on the loop's thread, so they
  take effect in the very next safety step;
- set-points and increments change the :class:`~hal.operator.base.OperatorCommand` in force. The
  forward speed is clamped into the trained range (``speed_range_m_s``, from the policy's manifest)
  and the yaw rate into ±``max_yaw_rate_rad_s``, with a (rate-limited) warning;

and when the command changed, hands it to ``on_command`` (the entry point turns it into the
policy's command). Every action and every change is logged and kept (``events``, the run report's
``operator`` section) and passed to ``change_listeners`` (the recorder). A source that raises is
logged and skipped for that tick; the loop goes on.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Callable, Protocol

from hal.log_limit import RateLimitedLog
from hal.operator.base import MODES, Action, OperatorCommand, OperatorEvent, OperatorSource

__all__ = ["OperatorConfig", "OperatorHub", "SafetyRequests", "OPERATOR_EVENT_SCHEMA"]

class SafetyRequests(Protocol):
    """What the hub asks of the safety layer (:class:`hal.safety.SafetyLayer` is one): the
    operator's actions, never a motor command."""

    def estop(self, reason: str = ..., now_ns: int | None = None) -> None: ...

    def reset_estop(self, now_ns: int | None = None) -> bool: ...

    def request_start(self) -> bool: ...

    def request_stand(self) -> None: ...


OPERATOR_EVENT_SCHEMA: dict[str, Any] = {
    "title": "krabby.OperatorEvent",
    "description": "An operator action (start/stop/estop/reset, with whether the safety layer "
                   "accepted it) or a change of the command in force (after clamping).",
    "type": "object",
    "properties": {
        "seq": {"type": "integer", "description": "the tick that applied it"},
        "t_ns": {"type": "integer", "description": "the loop's clock (sensor clock)"},
        "source": {"type": "string"}, "what": {"type": "string"},
        "forward_speed_m_s": {"type": "number"}, "yaw_rate_rad_s": {"type": "number"},
        "mode": {"type": "string"}, "accepted": {"type": "boolean"},
        "reason": {"type": "string"}},
    "required": ["seq", "t_ns", "source", "what"]}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OperatorConfig:
    """Limits of the operator's command.

    Attributes:
        speed_range_m_s: the trained forward speed range (the policy's manifest); outside is clamped.
        max_yaw_rate_rad_s: |yaw rate| beyond this is clamped.
        max_events: events kept for the report (the oldest are dropped first).
    """

    speed_range_m_s: tuple[float, float] = (0.0, 1.5)
    max_yaw_rate_rad_s: float = 1.0
    max_events: int = 2000

    def __post_init__(self) -> None:
        lo, hi = self.speed_range_m_s
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise ValueError(f"speed_range_m_s {self.speed_range_m_s}: need finite lo <= hi")
        if not (math.isfinite(self.max_yaw_rate_rad_s) and self.max_yaw_rate_rad_s >= 0):
            raise ValueError(f"max_yaw_rate_rad_s {self.max_yaw_rate_rad_s}: need a finite "
                             f"number >= 0")


class OperatorHub:
    """Polls the sources and applies their events (see the module docstring).

    Args:
        safety: the safety layer (``request_start``, ``request_stand``, ``estop``, ``reset_estop``).
        sources: the command sources (connected by :meth:`connect`).
        initial: the command in force at start (clamped like any other).
        on_command: called with each new command (on the loop's thread: keep it cheap).
        config: limits.
        clock_ns: the loop's clock (a simulator's in sim), for event times and the safety calls.
    """

    def __init__(self, safety: SafetyRequests, sources: list[OperatorSource],
                 initial: OperatorCommand | None = None,
                 on_command: Callable[[OperatorCommand], None] | None = None,
                 config: OperatorConfig | None = None,
                 clock_ns: Callable[[], int] = time.monotonic_ns) -> None:
        self.safety = safety
        self.sources = list(sources)
        self.config = config or OperatorConfig()
        self.on_command = on_command
        self.clock_ns = clock_ns
        self.change_listeners: list[Callable[[dict[str, Any]], None]] = []
        self.events: deque[dict[str, Any]] = deque(maxlen=self.config.max_events)
        self.counters = {"events": 0, "actions": 0, "changes": 0, "clamped": 0,
                         "source_errors": 0, "refused": 0}
        self._warn = RateLimitedLog(log, 2.0)
        self._seq = 0
        self.last_tick_ns = 0
        self.command = self._clamp(initial or OperatorCommand(), "initial")
        self._connected: list[OperatorSource] = []

    # -- lifecycle ----------------------------------------------------------------------------

    def connect(self) -> None:
        """Connect every source; on a failure the ones opened are closed and it raises."""
        try:
            for source in self.sources:
                source.connect()
                self._connected.append(source)
                log.info("operator source %s ready", source.name)
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        for source in reversed(self._connected):
            try:
                source.close()
            except Exception:  # noqa: BLE001 - close the others
                log.exception("closing operator source %s failed", source.name)
        self._connected.clear()

    # -- per tick -----------------------------------------------------------------------------

    def __call__(self, record: Any) -> None:
        self._seq = getattr(record, "seq", self._seq + 1)
        self.last_tick_ns = getattr(record, "tick_ns", 0)  # monotonic: the recorder's stamps
        now_ns = self.clock_ns()
        for source in self.sources:
            try:
                events = source.poll(now_ns)
            except Exception as exc:  # noqa: BLE001 - one broken source must not stop the loop
                self.counters["source_errors"] += 1
                self._warn.warning(f"error.{source.name}", "operator source %s failed: %s",
                                   source.name, exc)
                continue
            for event in events:
                self.apply(event, now_ns)

    def apply(self, event: OperatorEvent, now_ns: int | None = None) -> None:
        """Apply one event now (the loop's thread only)."""
        now_ns = self.clock_ns() if now_ns is None else now_ns
        self.counters["events"] += 1
        before = self.command
        try:
            command = self._next_command(before, event)
        except ValueError as exc:
            self.counters["refused"] += 1
            self._warn.warning(f"refused.{event.source}", "operator %s: %s (ignored)",
                               event.source, exc)
            command = before
        if command != before:
            self.command = command = self._clamp(command, event.source)
        if command != before:
            self.counters["changes"] += 1
            self._note(now_ns, event, "command", {
                "forward_speed_m_s": command.forward_speed_m_s,
                "yaw_rate_rad_s": command.yaw_rate_rad_s, "mode": command.mode})
            if self.on_command is not None:
                self.on_command(command)
        if event.action is not None:
            self.counters["actions"] += 1
            accepted = self._act(event, now_ns)
            self._note(now_ns, event, event.action.value, {"accepted": accepted})

    def _next_command(self, command: OperatorCommand, event: OperatorEvent) -> OperatorCommand:
        speed, yaw, mode = command.forward_speed_m_s, command.yaw_rate_rad_s, command.mode
        if event.forward_speed_m_s is not None:
            speed = float(event.forward_speed_m_s)
        if event.yaw_rate_rad_s is not None:
            yaw = float(event.yaw_rate_rad_s)
        speed += float(event.speed_step_m_s)
        yaw += float(event.yaw_step_rad_s)
        if event.mode is not None:
            mode = event.mode
        if event.toggle_mode:
            mode = MODES[(MODES.index(mode) + 1) % len(MODES)]
        return OperatorCommand(speed, yaw, mode)  # validates: finite, known mode

    def _clamp(self, command: OperatorCommand, source: str) -> OperatorCommand:
        lo, hi = self.config.speed_range_m_s
        limit = self.config.max_yaw_rate_rad_s
        speed = min(max(command.forward_speed_m_s, lo), hi)
        yaw = min(max(command.yaw_rate_rad_s, -limit), limit)
        if speed != command.forward_speed_m_s or yaw != command.yaw_rate_rad_s:
            self.counters["clamped"] += 1
            self._warn.warning("clamp", "operator (%s): speed %.2f m/s, yaw rate %.2f rad/s "
                               "clamped to %.2f m/s (trained range %.2f-%.2f), %.2f rad/s "
                               "(limit ±%.2f)", source, command.forward_speed_m_s,
                               command.yaw_rate_rad_s, speed, lo, hi, yaw, limit)
            return replace(command, forward_speed_m_s=speed, yaw_rate_rad_s=yaw)
        return command

    def _act(self, event: OperatorEvent, now_ns: int) -> bool:
        safety, action = self.safety, event.action
        if action is Action.ESTOP:
            safety.estop(f"operator {event.source}" + (f": {event.reason}" if event.reason else ""),
                         now_ns=now_ns)
            return True
        if action is Action.RESET:
            return bool(safety.reset_estop(now_ns=now_ns))
        if action is Action.START:
            return bool(safety.request_start())
        safety.request_stand()
        return True

    def _note(self, now_ns: int, event: OperatorEvent, what: str, value: dict[str, Any]) -> None:
        entry = {"seq": self._seq, "t_ns": now_ns, "source": event.source, "what": what,
                 **value}
        if event.reason:
            entry["reason"] = event.reason
        self.events.append(entry)
        log.info("operator %s: %s %s%s", event.source, what,
                 " ".join(f"{k}={v}" for k, v in value.items()),
                 f" ({event.reason})" if event.reason else "")
        for listener in self.change_listeners:
            listener(entry)

    def report(self) -> dict[str, Any]:
        """The run report's ``operator`` section."""
        return {"command_final": {"forward_speed_m_s": self.command.forward_speed_m_s,
                                  "yaw_rate_rad_s": self.command.yaw_rate_rad_s,
                                  "mode": self.command.mode},
                "speed_range_m_s": list(self.config.speed_range_m_s),
                "max_yaw_rate_rad_s": self.config.max_yaw_rate_rad_s,
                "counters": dict(self.counters),
                "sources": {s.name: s.stats() for s in self.sources},
                "events": list(self.events)}

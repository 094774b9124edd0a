"""The operator's vocabulary and the interface every command source implements."""

from __future__ import annotations

import abc
import enum
import math
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["MODES", "Action", "OperatorCommand", "OperatorEvent", "OperatorSource", "OperatorHost",
           "OperatorContext"]

MODES = ("parkour", "walk")
"""Mode names a command may carry (the policy's terrain modes)."""


class Action(str, enum.Enum):
    """What an operator asks of the safety layer."""

    START = "start"  # stand up if needed, then hand over to the policy
    STOP = "stop"  # back to stand, stop asking for the policy
    ESTOP = "estop"  # latch the e-stop
    RESET = "reset"  # clear a latched e-stop


@dataclass(frozen=True, slots=True)
class OperatorCommand:
    """The motion command in force: forward speed (m/s), yaw rate (rad/s, left positive), mode."""

    forward_speed_m_s: float = 0.0
    yaw_rate_rad_s: float = 0.0
    mode: str = "parkour"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"operator mode {self.mode!r} is not one of {MODES}")
        for name in ("forward_speed_m_s", "yaw_rate_rad_s"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"operator {name} must be finite, got {getattr(self, name)}")


@dataclass(frozen=True, slots=True)
class OperatorEvent:
    """One thing a source observed. Every field is optional; the hub applies what is set.

    Attributes:
        source: the source's name (``keyboard``, ``gamepad``, ``go2-remote``, ``network``).
        action: start / stop / e-stop / reset.
        forward_speed_m_s, yaw_rate_rad_s, mode: absolute set-points (sticks, network).
        speed_step_m_s, yaw_step_rad_s: increments to the command in force (keys).
        toggle_mode: switch parkour <-> walk.
        reason: free text for the log (e.g. "dead-man released").
    """

    source: str
    action: Action | None = None
    forward_speed_m_s: float | None = None
    yaw_rate_rad_s: float | None = None
    mode: str | None = None
    speed_step_m_s: float = 0.0
    yaw_step_rad_s: float = 0.0
    toggle_mode: bool = False
    reason: str = ""


class OperatorSource(abc.ABC):
    """A command source. :meth:`poll` runs on the control loop's thread once per tick: it must
    return at once (no blocking read, a bounded amount of work) and never raise for bad input
    (count it, log it at a limited rate, drop it)."""

    name: str = "operator"

    @abc.abstractmethod
    def connect(self) -> None:
        """Open the device or socket (raises with a message naming what to fix)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release it; safe to call twice."""

    @abc.abstractmethod
    def poll(self, now_ns: int) -> list[OperatorEvent]:
        """The events since the last poll (oldest first)."""

    def stats(self) -> dict[str, int]:
        """Counters for the run report."""
        return {}

    def __enter__(self) -> OperatorSource:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class OperatorHost(Protocol):
    """What an operator source's factory may use of the running server
    (:class:`hal.server.base.HalServer` is one)."""

    robot: Any
    devices: Any  # the connected devices (the Go2's remote rides on its motor session)
    context: Any  # the server's zmq.Context
    keys: Any  # the server's keys (hal.auth.ServerKeys), or None

    def secure_socket(self, socket: Any, role: str) -> None:
        """Make ``socket`` a CURVE server admitting ``role``'s keys."""


@dataclass(frozen=True)
class OperatorContext:
    """What a registered operator source's factory gets besides its own config
    (``factory(context, config, *used) -> OperatorSource | None``, :mod:`hal.devices.registry`).

    Attributes:
        server: The started server (its devices connected).
        speed_range_m_s: The policy's trained forward speed range (the sticks' full scale).
        max_yaw_rate_rad_s: The yaw rate limit of the operator's command (``--max-yaw-rate``).
    """

    server: OperatorHost
    speed_range_m_s: tuple[float, float]
    max_yaw_rate_rad_s: float

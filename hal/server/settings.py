"""The appliance's run configuration: its own sections and :class:`ApplianceConfig` composing them.

``krabby-hal-server-sim`` and ``krabby-hal-server-jetson`` extend :class:`ApplianceConfig` with
their devices' sections; their parsers are built from it (:func:`hal.config.build_parser`), so a
flag is declared once, with one default and one check (the section's ``__post_init__``), and a
``--config run.toml`` may hold any of them. The run report's ``config`` is
:func:`hal.config.config_to_dict` of the run's configuration.

Flags keep the seed README's spellings: dashed, with the underscore forms (``--control_rate``,
``--observation_bind``, ...) as aliases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from hal.config import part, setting
from hal.config.sections import (
    CommandSection,
    DurationSection,
    KeysSection,
    OutputSection,
    PolicyFilesSection,
    RobotSection,
)
from hal.safety.config import SafetyConfig
from hal.server.base import check_loop_timing

__all__ = ["LoopSection", "OperatorSection", "RecorderSection", "LiveSection", "ApplianceConfig",
           "MAX_CONTROL_RATE_HZ", "MAX_LIVE_DEPTH_HZ"]

MAX_CONTROL_RATE_HZ = 1000.0
"""Above this the loop cannot hold its rate in Python (a tick's work is ~0.3–1 ms)."""

MAX_LIVE_DEPTH_HZ = 30.0
"""The depth camera's own rate: a faster live image would repeat frames."""


@dataclass(frozen=True)
class LoopSection:
    """The control loop and its endpoints."""

    section: ClassVar[str] = "loop"
    title: ClassVar[str] = "control loop"

    control_rate_hz: float = setting(100.0, flag="--control-rate", aliases=("--control_rate",),
                                     metavar="HZ", help="control loop rate, Hz")
    latency_budget_ms: float | None = setting(
        None, aliases=("--latency_budget_ms",), metavar="MS",
        help="command deadline after each observation (default: half the period)")
    observation_bind: str = setting("inproc://hal_observation", aliases=("--observation_bind",),
                                    metavar="ENDPOINT",
                                    help="where the server publishes observations")
    command_bind: str = setting("inproc://hal_commands", aliases=("--command_bind",),
                                metavar="ENDPOINT", help="where the server receives commands")
    no_client: bool = setting(False, help="do not start the in-process inference client (use "
                                          "krabby-inference-client on the tcp endpoints)")
    estop_bind: str = setting("tcp://127.0.0.1:5560", aliases=("--estop_bind",),
                              metavar="ENDPOINT",
                              help="network e-stop endpoint ('none' to disable; default loopback, "
                                   "on the robot only); see hal.safety.estop")
    gc_control: bool = setting(True, negate="--no-gc-control",
                               help="leave Python's garbage collector alone (for comparison runs)")

    def __post_init__(self) -> None:
        check_loop_timing(self.control_rate_hz, self.latency_budget_ms,
                          rate_name="--control-rate", budget_name="--latency-budget-ms",
                          max_rate_hz=MAX_CONTROL_RATE_HZ)

    @property
    def budget_ms(self) -> float:
        """The command deadline: ``--latency-budget-ms``, or half the control period."""
        if self.latency_budget_ms is not None:
            return self.latency_budget_ms
        return 500.0 / self.control_rate_hz

    @property
    def estop_endpoint(self) -> str | None:
        """The e-stop endpoint to bind (None: ``--estop-bind none``)."""
        return None if self.estop_bind == "none" else self.estop_bind


@dataclass(frozen=True)
class OperatorSection:
    """The operator hub's own settings (README: how to drive). Who drives is the registered
    operator sources' business, each with its own section (``--no-keyboard``, ``--gamepad``,
    ``--teleop-bind``, ``--no-go2-remote``: :mod:`hal.backends.builtin`)."""

    section: ClassVar[str] = "operator"
    title: ClassVar[str] = "operator (see README: how to drive)"

    max_yaw_rate_rad_s: float = setting(1.0, flag="--max-yaw-rate", metavar="RAD_S",
                                        help="yaw rate limit of the operator's command, rad/s")
    status: bool = setting(True, negate="--no-status",
                           help="no live status line (it is shown only when stdout is a "
                                "terminal)")

    def __post_init__(self) -> None:
        from hal.operator import OperatorConfig

        try:  # the hub's own check, before any device connects
            OperatorConfig(max_yaw_rate_rad_s=self.max_yaw_rate_rad_s)
        except ValueError as exc:
            raise ValueError(f"--max-yaw-rate: {exc}") from None


@dataclass(frozen=True)
class RecorderSection:
    """The run's log (``--record``) and the flight recorder (hal.recorder)."""

    section: ClassVar[str] = "recorder"
    title: ClassVar[str] = "recording"

    record: str | None = setting(None, metavar="PATH",
                                 help="log every tick, policy step and depth step to this MCAP "
                                      "file (open it in Foxglove; check it with krabby-replay)")
    record_frames: bool = setting(False, help="with --record, also log every raw depth frame "
                                              "(big)")
    flight_recorder_s: float = setting(10.0, metavar="N",
                                       help="keep the last N seconds in memory and dump them on "
                                            "a fault (damping/e-stop) or SIGUSR1; 0 disables")
    flight_recorder_dir: str = setting("flight", metavar="DIR",
                                       help="where flight recorder dumps go")

    def __post_init__(self) -> None:
        if not (math.isfinite(self.flight_recorder_s) and self.flight_recorder_s >= 0):
            raise ValueError(f"--flight-recorder-s {self.flight_recorder_s}: use 0 (off) or a "
                             "positive window")

    @property
    def enabled(self) -> bool:
        """A log or a flight recorder is asked for."""
        return self.record is not None or self.flight_recorder_s > 0


@dataclass(frozen=True)
class LiveSection:
    """The live view: foxglove-sdk's WebSocket server (hal.live)."""

    section: ClassVar[str] = "live"
    title: ClassVar[str] = "live view (Foxglove)"

    live: str | None = setting(None, metavar="[HOST:]PORT",
                               help="stream the run to Foxglove over foxglove-sdk's WebSocket "
                                    "server (read-only; loopback unless HOST is named — it is NOT "
                                    "authenticated: reach a robot through ssh -L "
                                    "8765:127.0.0.1:8765). Open ws://127.0.0.1:PORT in Foxglove "
                                    "with docs/foxglove-layout.json")
    live_depth_hz: float = setting(10.0, metavar="HZ",
                                   help="live rate of the policy's depth image and the camera's "
                                        "(the camera's is half of it)")

    def __post_init__(self) -> None:
        if not (math.isfinite(self.live_depth_hz) and 0 < self.live_depth_hz <= MAX_LIVE_DEPTH_HZ):
            raise ValueError(f"--live-depth-hz {self.live_depth_hz}: use a rate in "
                             f"(0, {MAX_LIVE_DEPTH_HZ:g}] Hz")
        if self.live is not None:
            from hal.live.sdk import parse_live_address

            parse_live_address(self.live)  # names the bad address and the valid forms

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) to serve on, or None when the live view is off."""
        if self.live is None:
            return None
        from hal.live.sdk import parse_live_address

        return parse_live_address(self.live)


@dataclass(frozen=True)
class ApplianceConfig:
    """What ``krabby-hal-server-sim`` and ``-jetson`` share; each extends it with its devices."""

    robot: RobotSection = part(RobotSection)
    policy: PolicyFilesSection = part(PolicyFilesSection)
    command: CommandSection = part(CommandSection)
    loop: LoopSection = part(LoopSection)
    duration: DurationSection = part(DurationSection)
    keys: KeysSection = part(KeysSection)
    safety: SafetyConfig = part(SafetyConfig, only=("policy_targets_past_limits",))
    output: OutputSection = part(OutputSection)
    recorder: RecorderSection = part(RecorderSection)
    live: LiveSection = part(LiveSection)
    operator: OperatorSection = part(OperatorSection)

    def __post_init__(self) -> None:
        loop = self.loop
        if not loop.no_client and self.keys.keys and not (
                loop.observation_bind.startswith("inproc://")
                and loop.command_bind.startswith("inproc://")):
            raise ValueError("the in-process inference client has no key of its own: with --keys, "
                             "network --observation-bind/--command-bind need --no-client and a "
                             "krabby-inference-client --keys CLIENT_KEYS")

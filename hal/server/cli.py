"""What ``krabby-hal-server-jetson`` and ``krabby-hal-server-sim`` share: the run and its report.

Their settings are declared in :mod:`hal.server.settings` (:class:`ApplianceConfig`, which each
command extends); :func:`run_command` parses them, :func:`run_appliance` runs a plan with them.

Both servers are the same appliance (docs/architecture.md#the-data-flow) over different devices:
the HAL server on the main thread and, unless ``--no-client``, the parkour inference client on its
own threads in the same process. The policy is opened and checked against the robot and the flags
*before* any device is connected, so a mismatch never reaches a motor. SIGINT/SIGTERM end the
loop; the motors are damped, threads joined and the report written on every way out.
"""

from __future__ import annotations

import logging
import signal
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence, TypeVar

from hal.config import ConfigError, parse_config
from hal.report.schema import dumps
from hal.robot import RobotConfig, RobotDefinitionError, load_robot
from hal.safety.events import Mode
from hal.server.base import HalDevices, HalServer, HalServerConfig
from hal.server.run_report import RunReport, format_report  # format_report: a public path
from hal.server.settings import ApplianceConfig

if TYPE_CHECKING:  # annotations only: the run imports them where it uses them
    from compute.parkour.inference_client import ParkourInferenceClient
    from hal.operator.base import OperatorSource
    from hal.recorder.appliance import RecordingSession
    from hal.sim.foxglove_scene import SimScene

    #: Makes an operator source once the devices are connected: (server, speed range in m/s, max
    #: yaw rate in rad/s) -> the source, or None where these devices have none.
    OperatorSourceFactory = Callable[[HalServer, tuple[float, float], float], OperatorSource | None]

__all__ = ["AppliancePlan", "run_appliance", "format_report", "fail", "server_config_for",
           "load_robot_or_fail", "main_guard", "run_command"]

Config = TypeVar("Config")

log = logging.getLogger(__name__)


class CliError(Exception):
    """A user error: printed as one line, exit code 2."""


def fail(message: str) -> CliError:
    return CliError(message)


@dataclass
class AppliancePlan:
    """A run configuration turned into what to run.

    ``make_devices`` gets the robot configuration the run uses: the robot definition with the
    policy's training contract applied (joint order, defaults, gains, camera pose, policy rate).
    ``on_started`` hooks get ``(server, client)`` once both run (client None with --no-client);
    ``on_finished`` hooks get the same on every way out, after the loop ended and before the
    client is stopped and the motors damped. Listeners add their report sections with
    :meth:`add_report_section`.
    """

    robot: RobotConfig
    server_config: HalServerConfig
    make_devices: Callable[[RobotConfig], HalDevices]
    engine: str | None
    checkpoint: str | None
    duration_s: float | None
    report_path: Path | None
    run_client: bool = True
    client_options: dict[str, Any] = field(default_factory=dict)
    on_started: list[Callable[[HalServer, ParkourInferenceClient | None], None]] = field(
        default_factory=list)
    on_finished: list[Callable[[HalServer, ParkourInferenceClient | None], None]] = field(
        default_factory=list)
    # section name -> its producer, called once the run ended (see add_report_section)
    report_sections: dict[str, Callable[[], Any]] = field(default_factory=dict)
    # a run's own sources beside the registered ones (a test's recorded gamepad)
    operator_sources: list[OperatorSource | OperatorSourceFactory] = field(default_factory=list)
    # Called with (server, RecordingSession) right after the recorders attached (when recording).
    on_recording: list[Callable[[HalServer, RecordingSession], None]] = field(default_factory=list)
    # --live: makes the simulator's scene source from the started server (None on hardware).
    live_scene: Callable[[HalServer], SimScene] | None = None

    def add_report_section(self, name: str, producer: Callable[[], Any]) -> None:
        """Add the report section ``name`` (a :class:`~hal.server.run_report.RunReport` field,
        one of ``SECTION_NAMES``): ``producer`` is called after the run (after the
        ``on_finished`` hooks and the shutdown) and returns the section's typed value, or None
        to leave it out.

        Raises:
            ValueError: a name that is not a listener's section (the valid ones named), or one
                added twice.
        """
        from hal.server.run_report import SECTION_NAMES

        if name not in SECTION_NAMES:
            raise ValueError(f"report section {name!r}: not a listener's section; valid: "
                             f"{list(SECTION_NAMES)}")
        if name in self.report_sections:
            raise ValueError(f"report section {name!r} added twice")
        self.report_sections[name] = producer


def load_robot_or_fail(name: str) -> RobotConfig:
    try:
        return load_robot(name)
    except RobotDefinitionError as exc:
        raise fail(str(exc)) from None


def server_config_for(config: ApplianceConfig, realtime: bool = True) -> HalServerConfig:
    """The server's configuration; loads the keys and checks every endpoint's security, before
    any device connects (the values themselves were checked when ``config`` was built).

    Raises:
        CliError: unreadable keys, or a network endpoint without keys and without ``--insecure``.
    """
    from hal.auth import check_bind_security
    from hal.server.endpoints import check_server_endpoints

    loop = config.loop
    try:
        server_config = HalServerConfig(
            control_rate_hz=loop.control_rate_hz, latency_budget_ms=loop.budget_ms,
            observation_endpoint=loop.observation_bind, command_endpoint=loop.command_bind,
            realtime=realtime, gc_control=loop.gc_control, estop_endpoint=loop.estop_endpoint,
            keys_dir=config.keys.keys, insecure=config.keys.insecure, safety=config.safety)
        keys = check_server_endpoints(server_config)
        from hal.operator.network import TeleopSection
        from hal.server.backend_parts import config_of

        teleop = config_of(config, TeleopSection).endpoint
        if teleop is not None:
            check_bind_security(teleop, keys, config.keys.insecure, "--teleop-bind")
    except ValueError as exc:
        raise fail(str(exc)) from None
    return server_config


def run_appliance(plan: AppliancePlan, config: ApplianceConfig) -> RunReport:
    """Open the policy, build the server, run, shut down cleanly; returns the typed report
    (written to ``plan.report_path`` as JSON when set; its ``config`` is the run's effective
    configuration, which ``--config`` reads back)."""
    from compute.parkour.contract import ContractError, command_interval_ticks
    from compute.parkour.inference_client import InferenceClientConfig, ParkourInferenceClient
    from compute.parkour.policy_engines import (
        PolicyConfigError,
        contract_for_engine,
        open_policy_engines,
    )
    from engines import EngineError
    from engines.manifest import ManifestError
    from hal.live.session import LiveSession
    from hal.recorder.appliance import RecordingSession

    try:
        recording = RecordingSession.from_section(config.recorder)
        live = LiveSession.from_section(config.live)
    except ValueError as exc:
        raise fail(str(exc)) from None
    policy = None
    policy_files, command = config.policy, config.command
    if plan.run_client:
        try:
            policy = open_policy_engines(plan.robot, engine=plan.engine, checkpoint=plan.checkpoint,
                                         device=policy_files.device,
                                         action_dim=policy_files.action_dim,
                                         obs_dim=policy_files.obs_dim,
                                         allow_no_manifest=policy_files.no_manifest)
        except (PolicyConfigError, EngineError, ManifestError) as exc:
            raise fail(str(exc)) from None
        log.info("policy: %s via %s (%s)", policy.path, policy.backend, policy.source)
        if recording is not None:
            recording.extra_info["policy"] = {"path": str(policy.path), "backend": policy.backend,
                                              "source": policy.source}
        contract = policy.contract
    else:
        try:
            contract = contract_for_engine(plan.robot, plan.engine)
        except (PolicyConfigError, ManifestError) as exc:
            raise fail(str(exc)) from None
    try:
        robot = contract.apply(plan.robot)
        interval = command_interval_ticks(plan.server_config.control_rate_hz,
                                          contract.policy_rate_hz)
    except ContractError as exc:
        raise fail(str(exc)) from None
    server_config = replace(plan.server_config, command_interval_ticks=interval)
    speed = contract.clamp_forward_speed(command.speed_m_s)
    if speed != command.speed_m_s:
        log.warning("--speed %g m/s is outside the policy's trained range %s m/s: using %g m/s",
                    command.speed_m_s, list(contract.forward_speed_range_m_s), speed)
    log.info("training contract (%s): policy at %g Hz, HAL at %g Hz (%d ticks per policy step), "
             "joint order %s", contract.source, contract.policy_rate_hz,
             server_config.control_rate_hz, interval, contract.joint_order_convention)

    server = HalServer(robot, plan.make_devices(robot), server_config)
    client = None
    hub = status = None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def on_signal(signum, _frame) -> None:
        log.warning("%s: stopping (motors will be damped)", signal.Signals(signum).name)
        server.request_stop()

    for sig in previous:
        signal.signal(sig, on_signal)
    try:
        server.start()
        if policy is not None:
            client = ParkourInferenceClient(
                robot, policy.actor, policy.depth,
                InferenceClientConfig(observation_endpoint=server_config.observation_endpoint,
                                      command_endpoint=server_config.command_endpoint,
                                      forward_speed_m_s=speed, mode=command.mode,
                                      **plan.client_options))
            client.start()
        if recording is not None:  # first, so it sees everything the other hooks cause
            try:
                recording.attach(server, client)
            except ValueError as exc:
                raise fail(str(exc)) from None
            for hook in plan.on_recording:
                hook(server, recording)
        if live is not None:
            try:
                live.attach(server, client,
                            plan.live_scene(server) if plan.live_scene is not None else None)
            except OSError as exc:
                raise fail(str(exc)) from None
        for hook in plan.on_started:
            hook(server, client)
        if client is not None:
            # Launching the appliance with its policy is the operator's explicit start. With
            # --no-client the policy runs elsewhere, and only an operator starts it: START from
            # an operator key (krabby-estop) or Enter in this terminal.
            server.tick_listeners.append(_StartRequester(server,
                                                         server_config.control_rate_hz))
        else:
            log.warning("--no-client: the robot stays idle until an operator starts it "
                        "(krabby-estop %s START --keys OPERATOR_KEYS, the operator endpoint, or "
                        "Enter in this terminal)",
                        plan.server_config.estop_endpoint or "<--estop-bind>")
        hub, status = _start_operator(plan, config, server, client,
                                      contract.forward_speed_range_m_s, recording)
        if live is not None:
            live.attach_operator(hub)
        server.run(duration_s=plan.duration_s)
    finally:
        if status is not None:
            status.stop()
        if hub is not None:
            hub.close()
        for hook in plan.on_finished:
            try:
                hook(server, client)
            except Exception:  # noqa: BLE001 - the shutdown below matters more
                log.exception("on_finished hook failed")
        if client is not None:
            try:
                client.stop()
            except RuntimeError as exc:
                log.error("%s", exc)
        server.close()  # damps the motors
        if recording is not None:
            recording.close()  # after the client's threads and the loop ended: nothing writes
        if live is not None:
            live.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if policy is not None:
            policy.close()
    report = _build_report(plan, config, server, contract, client, policy, recording, hub, live)
    if plan.report_path is not None:
        plan.report_path.parent.mkdir(parents=True, exist_ok=True)
        plan.report_path.write_text(dumps(report))
    return report


def _build_report(plan: AppliancePlan, config: ApplianceConfig, server: HalServer, contract: Any,
                  client: Any, policy: Any, recording: Any, hub: Any, live: Any) -> RunReport:
    """The run report, built in this one place: the server's part (after ``close()``: the final
    mode is the damped one the motors were left in), the policy's, then the listeners'."""
    from hal.config import config_to_dict
    from hal.report.schema import check_field
    from hal.report.sections import LiveReport, OperatorReport, RecorderReport
    from hal.server.run_report import CommandReport, InferenceReport, PolicyReport

    report = RunReport(**server.report().server_fields(), config=config_to_dict(config),
                       training_contract=contract.to_dict())
    if client is not None:
        report.inference = InferenceReport.from_dict(client.stats(), "inference")
        report.command = CommandReport(forward_speed_m_s=client.command.forward_speed_m_s,
                                       mode=client.command.mode,
                                       yaw_rate_rad_s=client.command.yaw_rate_rad_s)
    if policy is not None:
        report.policy = PolicyReport(path=str(policy.path), backend=policy.backend,
                                     source=policy.source)
    if recording is not None:
        report.recorder = RecorderReport.from_dict(recording.report(), "recorder")
    if hub is not None:
        report.operator = OperatorReport.from_dict(hub.report(), "operator")
    if live is not None:
        report.live = LiveReport.from_dict(live.report(), "live")
    for name, producer in plan.report_sections.items():
        value = producer()
        if value is not None:
            check_field(RunReport, name, value)
            setattr(report, name, value)
    return report


def _start_operator(plan: AppliancePlan, config: ApplianceConfig, server: HalServer, client: Any,
                    speed_range_m_s: tuple[float, float], recording: Any) -> tuple[Any, Any]:
    """The operator hub (the registered sources the configuration enables, then the plan's
    own) on the loop, every change also in the ``--record`` log (/operator/event), and
    the live status line where stdout is a terminal."""
    from hal.operator.keyboard import KEY_HELP, KeyboardSource
    from hal.server.operator_setup import build_operator_hub
    from hal.server.status_line import StatusLine

    try:
        hub = build_operator_hub(server, client, config, speed_range_m_s, plan.operator_sources)
        hub.connect()
    except (ValueError, OSError) as exc:
        raise fail(str(exc)) from None
    server.tick_listeners.append(hub)
    file_recorder = getattr(recording, "file", None)
    if file_recorder is not None:
        from hal.operator.hub import OPERATOR_EVENT_SCHEMA

        file_recorder.add_json_channel("operator", "/operator/event", "krabby.OperatorEvent",
                                       OPERATOR_EVENT_SCHEMA)
        hub.change_listeners.append(lambda entry: file_recorder.accept_message(
            "operator", hub.last_tick_ns, int(entry["seq"]),
            lambda _t, e=dict(entry): e))
    if any(isinstance(s, KeyboardSource) and s.active for s in hub.sources):
        print(KEY_HELP, flush=True)
    status = None
    if config.operator.status:
        status = StatusLine(server, lambda: hub.command)
        if not status.start():
            status = None
    return hub, status


class _StartRequester:
    """Asks the safety layer to start until it accepts, for the first ``timeout_s`` only.

    Right after connecting, a backend's first readings can be older than the staleness limit
    (a serial bus still syncing), and the layer refuses the start. Retrying is confined to the
    opening window so that an e-stop reset later never restarts the robot by itself.
    """

    def __init__(self, server: HalServer, rate_hz: float, timeout_s: float = 5.0) -> None:
        self.server = server
        self.ticks_left = int(timeout_s * rate_hz)

    def __call__(self, record) -> None:
        if self.ticks_left <= 0:
            return
        self.ticks_left -= 1
        safety = self.server.safety
        if safety.mode is not Mode.IDLE:
            self.ticks_left = 0  # started
        elif not safety.run_requested:
            safety.request_start()


def main_guard(run: Callable[[], int]) -> int:
    """Run a CLI body: user errors are one line on stderr (exit 2), never a traceback."""
    from hal.devices.base import DeviceError
    from hal.optional import MissingDependencyError
    from hal.server.base import HalServerError

    try:
        return run()
    except (CliError, ConfigError, DeviceError, MissingDependencyError, HalServerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def run_command(root: type[Config], argv: Sequence[str] | None, parser: Any,
                body: Callable[[Config], int]) -> int:
    """An appliance command: parse the run configuration (flags over ``--config``), set up
    logging, run ``body(config)``; a bad value anywhere is one line on stderr, exit 2."""

    def run() -> int:
        config = parse_config(root, argv, parser)
        config.output.configure_logging()
        return body(config)

    return main_guard(run)

"""What ``krabby-hal-server-jetson`` and ``krabby-hal-server-sim`` share: flags, the run, the report.

Both servers are the same appliance (DESIGN §1) over different devices: the HAL server on the main
thread and, unless ``--no-client``, the parkour inference client on its own threads in the same
process. The policy is opened and checked against the robot and the flags *before* any device is
connected, so a mismatch never reaches a motor. SIGINT/SIGTERM end the loop; the motors are damped,
threads joined and the report written on every way out.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from hal.report.schema import dumps
from hal.robot import RobotConfig, RobotDefinitionError, load_robot
from hal.safety.config import PAST_LIMIT_MODES, SafetyConfig
from hal.safety.events import Mode
from hal.server.base import HalDevices, HalServer, HalServerConfig
from hal.server.run_report import RunReport, format_report  # format_report: a public path

__all__ = ["add_common_arguments", "AppliancePlan", "run_appliance", "format_report", "fail"]

log = logging.getLogger(__name__)


class CliError(Exception):
    """A user error: printed as one line, exit code 2."""


def fail(message: str) -> CliError:
    return CliError(message)


def add_common_arguments(parser: argparse.ArgumentParser, default_device: str) -> None:
    """The seed README's flags plus the appliance's own.

    Flags are spelled with dashes; the underscore spellings (the seed README's ``--control_rate``,
    ``--action_dim``, ...) stay accepted as aliases.
    """
    policy = parser.add_argument_group("policy")
    policy.add_argument("--engine", help="model.plan (TensorRT) or model.onnx (ONNX Runtime), with "
                                         "model.json beside it (from krabby-export)")
    policy.add_argument("--checkpoint", help="upstream checkpoint; without --engine it runs the torch "
                                             "reference (bring-up only)")
    policy.add_argument("--action-dim", "--action_dim", type=int,
                        help="action dimension (checked against the robot and the manifest; "
                             "typically 12)")
    policy.add_argument("--obs-dim", "--obs_dim", type=int,
                        help="observation dimension (checked; typically 753)")
    policy.add_argument("--device", choices=("cuda", "cpu"), default=default_device,
                        help=f"inference device (default {default_device})")
    policy.add_argument("--robot", default="go2", help="robot definition: go2, a1 or a TOML path")
    policy.add_argument("--speed", type=float, default=0.5, help="forward speed command, m/s "
                                                                  "(trained on 0-1.5)")
    policy.add_argument("--mode", choices=("parkour", "walk"), default="parkour")
    policy.add_argument("--no-manifest", dest="no_manifest", action="store_true",
                        help="run an --engine that has no manifest beside it: only tensor shapes "
                             "are checked, NOT the robot, joint order, digest or training contract")
    loop = parser.add_argument_group("control loop")
    loop.add_argument("--control-rate", "--control_rate", type=float, default=100.0,
                      help="control loop rate, Hz")
    loop.add_argument("--latency-budget-ms", "--latency_budget_ms", type=float, default=None,
                      help="command deadline after each observation (default: half the period)")
    loop.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    loop.add_argument("--observation-bind", "--observation_bind", default="inproc://hal_observation")
    loop.add_argument("--command-bind", "--command_bind", default="inproc://hal_commands")
    loop.add_argument("--no-client", dest="no_client", action="store_true",
                      help="do not start the in-process inference client (use "
                           "krabby-inference-client on the tcp endpoints)")
    loop.add_argument("--estop-bind", "--estop_bind", default="tcp://127.0.0.1:5560",
                      help="network e-stop endpoint ('none' to disable; default loopback, on the "
                           "robot only); see hal.safety.estop")
    loop.add_argument("--keys", default=os.environ.get("KRABBY_KEYS"),
                      help="the robot's key directory (krabby-keys init): every network endpoint "
                           "then uses CURVE and admits only the keys allowed there (default "
                           "$KRABBY_KEYS)")
    loop.add_argument("--insecure", action="store_true",
                      help="bind network endpoints WITHOUT authentication: anyone who reaches "
                           "them can drive the robot. Only on an isolated, trusted network")
    loop.add_argument("--policy-targets-past-limits", choices=PAST_LIMIT_MODES, default="pass",
                      help="a policy target inside the training contract's action range but past "
                           "a joint limit: pass it on as training did (default) or clamp it to "
                           "the limit (README, Safety)")
    loop.add_argument("--no-gc-control", dest="gc_control", action="store_false",
                      help="leave Python's garbage collector alone (for comparison runs)")
    out = parser.add_argument_group("output")
    out.add_argument("--report", help="write the run report (JSON) here")
    out.add_argument("--log-level", default="INFO")
    from hal.live.session import add_live_arguments
    from hal.recorder.appliance import add_recorder_arguments
    from hal.server.operator_setup import add_operator_arguments

    add_recorder_arguments(parser)  # --record, --record-frames, --flight-recorder-s/-dir
    add_live_arguments(parser)  # --live [HOST:]PORT, --live-depth-hz
    add_operator_arguments(parser)  # --gamepad, --teleop_bind, --max-yaw-rate, --no-keyboard


@dataclass
class AppliancePlan:
    """A parsed command line turned into what to run.

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
    on_started: list[Callable[[HalServer, Any], None]] = field(default_factory=list)
    on_finished: list[Callable[[HalServer, Any], None]] = field(default_factory=list)
    # section name -> its producer, called once the run ended (see add_report_section)
    report_sections: dict[str, Callable[[], Any]] = field(default_factory=dict)
    operator_sources: list[Any] = field(default_factory=list)  # e.g. the Go2's remote
    # Called with (server, RecordingSession) right after the recorders attached (when recording).
    on_recording: list[Callable[[HalServer, Any], None]] = field(default_factory=list)
    # --live: makes the simulator's scene source from the started server (None on hardware).
    live_scene: Callable[[HalServer], Any] | None = None

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


def server_config_from_args(args: argparse.Namespace, realtime: bool = True) -> HalServerConfig:
    """Validate the loop flags and the endpoints' security, before any device connects."""
    from hal.auth import check_bind_security
    from hal.server.endpoints import check_server_endpoints

    check_run_arguments(args)
    budget = args.latency_budget_ms
    if budget is None:
        budget = 500.0 / args.control_rate
    try:
        config = HalServerConfig(
            control_rate_hz=args.control_rate, latency_budget_ms=budget,
            observation_endpoint=args.observation_bind, command_endpoint=args.command_bind,
            realtime=realtime, gc_control=args.gc_control,
            estop_endpoint=None if args.estop_bind == "none" else args.estop_bind,
            keys_dir=args.keys, insecure=args.insecure,
            safety=SafetyConfig(policy_targets_past_limits=args.policy_targets_past_limits))
        keys = check_server_endpoints(config)
        teleop = getattr(args, "teleop_bind", "none")
        if teleop and teleop != "none":
            check_bind_security(teleop, keys, args.insecure, "--teleop-bind")
    except ValueError as exc:
        raise fail(str(exc)) from None
    return config


MAX_CONTROL_RATE_HZ = 1000.0
"""Above this the loop cannot hold its rate in Python (a tick's work is ~0.3–1 ms)."""


def check_run_arguments(args: argparse.Namespace) -> None:
    """One clear line for a nonsensical number (NaN, infinite, negative, out of range)."""
    rate = args.control_rate
    if not (math.isfinite(rate) and 0 < rate <= MAX_CONTROL_RATE_HZ):
        raise fail(f"--control-rate {rate}: must be a number in (0, {MAX_CONTROL_RATE_HZ:g}] Hz "
                   "(the loop cannot hold more)")
    budget = args.latency_budget_ms
    if budget is not None and not (math.isfinite(budget) and 0 < budget < 1e3 / rate):
        raise fail(f"--latency-budget-ms {budget}: must be positive and below the control period "
                   f"({1e3 / rate:.2f} ms at {rate:g} Hz)")
    duration = args.duration
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise fail(f"--duration {duration}: must be a positive number of seconds")
    speed = getattr(args, "speed", None)
    if speed is not None and not math.isfinite(speed):
        # A finite speed outside the policy's trained range is clamped to it once the training
        # contract is known (run_appliance), with a warning.
        raise fail(f"--speed {speed}: must be a finite number of m/s")


def run_appliance(plan: AppliancePlan, args: argparse.Namespace) -> RunReport:
    """Open the policy, build the server, run, shut down cleanly; returns the typed report
    (written to ``plan.report_path`` as JSON when set)."""
    from compute.parkour.contract import ContractError, command_interval_ticks
    from compute.parkour.inference_client import InferenceClientConfig, ParkourInferenceClient
    from compute.parkour.observation import PolicyCommand
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
        recording = RecordingSession.from_args(args)
        live = LiveSession.from_args(args)
    except ValueError as exc:
        raise fail(str(exc)) from None
    policy = None
    config = plan.server_config
    if plan.run_client and config.keys_dir and not (
            config.observation_endpoint.startswith("inproc://")
            and config.command_endpoint.startswith("inproc://")):
        raise fail("the in-process inference client has no key of its own: with --keys, network "
                   "--observation-bind/--command-bind need --no-client and a "
                   "krabby-inference-client --keys CLIENT_KEYS")
    if plan.run_client:
        try:
            policy = open_policy_engines(plan.robot, engine=plan.engine, checkpoint=plan.checkpoint,
                                         device=args.device, action_dim=args.action_dim,
                                         obs_dim=args.obs_dim,
                                         allow_no_manifest=args.no_manifest)
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
    speed = contract.clamp_forward_speed(args.speed)
    if speed != args.speed:
        log.warning("--speed %g m/s is outside the policy's trained range %s m/s: using %g m/s",
                    args.speed, list(contract.forward_speed_range_m_s), speed)
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
                                      forward_speed_m_s=speed, mode=args.mode,
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
        hub, status = _start_operator(plan, args, server, client,
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
    report = _build_report(plan, args, server, contract, client, policy, recording, hub, live)
    if plan.report_path is not None:
        plan.report_path.parent.mkdir(parents=True, exist_ok=True)
        plan.report_path.write_text(dumps(report))
    return report


def _build_report(plan: AppliancePlan, args: Any, server: HalServer, contract: Any, client: Any,
                  policy: Any, recording: Any, hub: Any, live: Any) -> RunReport:
    """The run report, built in this one place: the server's part (after ``close()``: the final
    mode is the damped one the motors were left in), the policy's, then the listeners'."""
    from hal.report.schema import check_field
    from hal.report.sections import LiveReport, OperatorReport, RecorderReport
    from hal.server.run_report import CommandReport, InferenceReport, PolicyReport

    report = RunReport(**server.report().server_fields(), config=_effective_config(args),
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


def _effective_config(args: Any) -> dict[str, Any]:
    """The run's effective configuration, JSON-ready (the report's ``config``): a typed run
    configuration through ``hal.config.config_to_dict``; parsed flags as they are."""
    import dataclasses

    from hal.config import config_to_dict

    if dataclasses.is_dataclass(args) and not isinstance(args, type):
        return config_to_dict(args)
    return json.loads(json.dumps(vars(args), default=str))


def _start_operator(plan: AppliancePlan, args: argparse.Namespace, server: HalServer, client: Any,
                    speed_range_m_s: tuple[float, float], recording: Any) -> tuple[Any, Any]:
    """The operator hub (terminal keys where stdin is a terminal, gamepad, network, the plan's
    own sources) on the loop, every change also in the ``--record`` log (/operator/event), and
    the live status line where stdout is a terminal."""
    from hal.operator.keyboard import KEY_HELP, KeyboardSource
    from hal.server.operator_setup import build_operator_hub
    from hal.server.status_line import StatusLine

    try:
        hub = build_operator_hub(server, client, args, speed_range_m_s, plan.operator_sources)
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
    if getattr(args, "status", True):
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
    except (CliError, DeviceError, MissingDependencyError, HalServerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

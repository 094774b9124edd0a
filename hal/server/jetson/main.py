"""``krabby-hal-server-jetson``: the HAL server and the parkour inference client in one process.

The seed's command lines keep working::

    krabby-hal-server-jetson --checkpoint /path/to/model.pt --action_dim 12 --obs_dim 753 \\
        --control_rate 100.0 --device cuda
    python -m hal.server.jetson.main --checkpoint /path/to/model.pt --action_dim 12 --obs_dim 753

and the deployed form runs an exported engine::

    krabby-hal-server-jetson --engine model.plan --robot go2 --report run.json

``--checkpoint`` without ``--engine`` runs the torch reference (bring-up only) and says so. On any
machine, ``--camera recorded --recording rec.npz --motors serial --serial-port PTY`` runs the whole
Jetson pipeline on recorded depth and IMU against the microcontroller emulator
(``python -m hal.tools.mcu_emulator``).

Bring-up on the real robot, motors untouched (every sensor, the policy and the safety layer run;
the commands are recorded, not sent; ``--dry-run-damp`` sends damping only)::

    krabby-hal-server-jetson --engine model.plan --dry-run --dry-run-record dry.npz --duration 30
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from hal.report.sections import DryRunReport
from hal.server.cli import (
    AppliancePlan,
    add_common_arguments,
    fail,
    format_report,
    load_robot_or_fail,
    main_guard,
    run_appliance,
    server_config_from_args,
)
from hal.server.jetson.hal_server import CAMERAS, MOTORS, JetsonDevicesConfig, build_jetson_devices
from hal.unitree_dds import NETWORK_HELP

__all__ = ["main", "build_parser", "motor_report", "camera_report"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="krabby-hal-server-jetson",
                                     description="HAL server + parkour inference client on a Jetson.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, default_device="cuda")
    hw = parser.add_argument_group("hardware")
    hw.add_argument("--camera", choices=CAMERAS, default="zed")
    hw.add_argument("--recording", help="with --camera recorded: a .npz made by hal.playback.recording")
    hw.add_argument("--camera-connect", dest="camera_connect", metavar="tcp://127.0.0.1:PORT",
                    help="with --camera go2-sim: krabby-go2-sim's --camera-bind (the ZED's stand-in)")
    hw.add_argument("--loop-recording", dest="loop_recording", action="store_true")
    hw.add_argument("--motors", choices=MOTORS, default="go2")
    hw.add_argument("--serial-port", dest="serial_port", help="with --motors serial")
    hw.add_argument("--network", help="with --motors go2, required: " + NETWORK_HELP)
    hw.add_argument("--domain-id", dest="domain_id", type=int, default=0,
                    help="with --motors go2: the DDS domain id (0 on the robot)")
    hw.add_argument("--no-go2-remote", dest="go2_remote", action="store_false",
                    help="with --motors go2: ignore the Go2's wireless remote (by default it "
                         "drives: see README, how to drive)")
    hw.add_argument("--zed-resolution", dest="zed_resolution", default="HD720")
    hw.add_argument("--zed-fps", dest="zed_fps", type=int, default=60)
    hw.add_argument("--zed-depth-mode", dest="zed_depth_mode", default="NEURAL")
    dry = parser.add_argument_group("bring-up")
    dry.add_argument("--dry-run", dest="dry_run", action="store_const", const="silent",
                     help="run everything but send the motors nothing; record the commands")
    dry.add_argument("--dry-run-damp", dest="dry_run", action="store_const", const="damp",
                     help="like --dry-run, but send damping (kp 0) to the motors")
    dry.add_argument("--dry-run-record", dest="dry_run_record", metavar="PATH",
                     help="with --dry-run: write the commands it would have sent (.npz)")
    return parser


def plan_from_args(args: argparse.Namespace) -> AppliancePlan:
    robot = load_robot_or_fail(args.robot)
    try:
        zed = None
        if args.camera == "zed":
            from hal.jetson.zed_camera import ZedConfig

            zed = ZedConfig(resolution=args.zed_resolution, fps=args.zed_fps,
                            depth_mode=args.zed_depth_mode)
        go2 = None
        if args.motors == "go2" and args.network:
            from hal.jetson.unitree_go2 import UnitreeGo2Config

            go2 = UnitreeGo2Config.from_robot(robot, network_interface=args.network,
                                              domain_id=args.domain_id)
        devices = JetsonDevicesConfig(camera=args.camera, motors=args.motors, go2=go2,
                                      recording=Path(args.recording) if args.recording else None,
                                      recording_loop=args.loop_recording,
                                      serial_port=args.serial_port, zed=zed, dry_run=args.dry_run,
                                      camera_endpoint=args.camera_connect,
                                      dry_run_record=Path(args.dry_run_record) if args.dry_run_record else None)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if args.dry_run_record and not args.dry_run:
        raise fail("--dry-run-record needs --dry-run or --dry-run-damp")
    if args.dry_run:
        print(f"DRY RUN ({args.dry_run}): the motors receive "
              f"{'nothing' if args.dry_run == 'silent' else 'damping only'}; commands are recorded", flush=True)
    if args.checkpoint and not args.engine:
        print(f"bring-up: running the torch reference from {args.checkpoint} (export it with "
              "krabby-export for the real-time engine)", flush=True)

    def make_devices(contract_robot):
        # After the policy and its contract are checked (a wrong --obs-dim is the first error),
        # before any device is opened.
        if args.motors == "go2" and not args.network:
            raise fail(f"--motors go2 needs --network: {NETWORK_HELP}")
        return build_jetson_devices(contract_robot, devices)

    plan = AppliancePlan(robot=robot, server_config=server_config_from_args(args),
                         make_devices=make_devices,
                         engine=args.engine, checkpoint=args.checkpoint, duration_s=args.duration,
                         run_client=not args.no_client,
                         report_path=Path(args.report) if args.report else None)
    # Read while the devices are still open (on_finished), handed to the report after the run.
    finished: dict = {}
    plan.on_finished.append(lambda server, _client: finished.update(
        motor_report(server.devices.joints), **camera_report(server.devices.camera)))
    plan.add_report_section("dry_run", lambda: (
        DryRunReport.from_dict(finished["dry_run"], "dry_run") if "dry_run" in finished
        else None))
    plan.add_report_section("motor_health", lambda: finished.get("motor_health"))
    plan.add_report_section("camera", lambda: finished.get("camera"))
    if args.motors == "go2" and args.go2_remote:
        plan.operator_sources.append(_go2_remote_source)
    return plan


def motor_report(joints) -> dict:
    """The run report's view of the motors: the dry run's summary, and the driver's health
    (Go2: temperatures and packets lost since connect; serial bus: frame counters)."""
    from dataclasses import asdict, is_dataclass

    from hal.jetson.dry_run import DryRunJointDriver

    out: dict = {}
    if isinstance(joints, DryRunJointDriver):
        out["dry_run"] = joints.summary()
        joints = joints.inner
    health = getattr(joints, "health", None)
    if callable(health) and joints.is_connected:
        try:
            value = health()
        except Exception as exc:  # noqa: BLE001 - a report line, never a failure of the run
            out["motor_health"] = {"error": str(exc)}
        else:
            out["motor_health"] = value.to_dict() if hasattr(value, "to_dict") else (
                asdict(value) if is_dataclass(value) else str(value))
    return out


def camera_report(camera) -> dict:
    """The run report's camera section: the backend's own ``report()`` (ZED: grab health, the
    warning ``open`` returned, warning codes by name and ``corrupted_frames`` dropped)."""
    report = getattr(camera, "report", None)
    if camera is None or not callable(report):
        return {}
    try:
        return {"camera": report()}
    except Exception as exc:  # noqa: BLE001 - a report line, never a failure of the run
        return {"camera": {"error": str(exc)}}


def _go2_remote_source(server: Any, speed_range_m_s: tuple[float, float],
                       max_yaw_rate_rad_s: float) -> Any:
    """The Go2's wireless remote as an operator source (its session is the joint driver's)."""
    from hal.operator.go2_remote import Go2RemoteDecoder, Go2RemoteSource

    joints = server.devices.joints
    session = getattr(getattr(joints, "inner", joints), "session", None)  # a dry run wraps it
    if session is None:
        return None
    return Go2RemoteSource(session.wireless_remote,
                           Go2RemoteDecoder(speed_range_m_s[1], max_yaw_rate_rad_s))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def body() -> int:
        report = run_appliance(plan_from_args(args), args)
        print(format_report(report), flush=True)
        return 0

    return main_guard(body)


if __name__ == "__main__":
    sys.exit(main())

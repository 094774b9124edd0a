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
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from hal.config import build_parser as build_config_parser
from hal.config import part
from hal.config.sections import PolicyFilesSection
from hal.report.sections import DryRunReport
from hal.server.cli import (
    AppliancePlan,
    fail,
    format_report,
    load_robot_or_fail,
    run_appliance,
    run_command,
    server_config_for,
)
from hal.server.jetson.hal_server import build_jetson_devices
from hal.server.jetson.hardware import (
    camera_report,
    devices_config_of,
    jetson_config_type,
    motor_report,
)
from hal.server.settings import ApplianceConfig

__all__ = ["main", "build_parser", "plan_from_config", "JetsonApplianceConfig"]


@dataclass(frozen=True)
class JetsonApplianceConfig(ApplianceConfig):
    """``krabby-hal-server-jetson``: the appliance on the robot; it infers on the GPU.

    :func:`build_parser` extends it with the hardware parts (:mod:`hal.server.jetson.hardware`).
    """

    policy: PolicyFilesSection = part(PolicyFilesSection, defaults={"device": "cuda"})


def build_parser() -> argparse.ArgumentParser:
    """The command line: :class:`JetsonApplianceConfig`'s settings, the backend choice, every
    registered camera and motor backend's settings and every operator source's
    (:func:`hal.server.jetson.hardware.jetson_config_type`: ``--camera``/``--motors`` choices and
    the backends' flags are read from the registry now)."""
    return build_config_parser(jetson_config_type(JetsonApplianceConfig),
                               prog="krabby-hal-server-jetson",
                               description="HAL server + parkour inference client on a Jetson.")


def plan_from_config(config: JetsonApplianceConfig) -> AppliancePlan:
    """What a Jetson run does (``config`` built by :func:`build_parser`'s run configuration)."""
    robot = load_robot_or_fail(config.robot.robot)
    try:
        devices = devices_config_of(config)
        devices.check()
    except ValueError as exc:
        raise fail(str(exc)) from None
    dry_run = devices.dry_run.mode
    if dry_run is not None:
        print(f"DRY RUN ({dry_run}): the motors receive "
              f"{'nothing' if dry_run == 'silent' else 'damping only'}; commands are recorded",
              flush=True)
    policy = config.policy
    if policy.checkpoint and not policy.engine:
        print(f"bring-up: running the torch reference from {policy.checkpoint} (export it with "
              "krabby-export for the real-time engine)", flush=True)

    def make_devices(contract_robot):
        # After the policy and its contract are checked (a wrong --obs-dim is the first error),
        # before any device is opened.
        try:
            return build_jetson_devices(contract_robot, devices)
        except ValueError as exc:
            raise fail(str(exc)) from None

    report = config.output.report
    plan = AppliancePlan(robot=robot, server_config=server_config_for(config),
                         make_devices=make_devices, engine=policy.engine,
                         checkpoint=policy.checkpoint, duration_s=config.duration.duration_s,
                         run_client=not config.loop.no_client,
                         report_path=Path(report) if report else None)
    # Read while the devices are still open (on_finished), handed to the report after the run.
    finished: dict = {}
    plan.on_finished.append(lambda server, _client: finished.update(
        motor_report(server.devices.joints), **camera_report(server.devices.camera)))
    plan.add_report_section("dry_run", lambda: (
        DryRunReport.from_dict(finished["dry_run"], "dry_run") if "dry_run" in finished
        else None))
    plan.add_report_section("motor_health", lambda: finished.get("motor_health"))
    plan.add_report_section("camera", lambda: finished.get("camera"))
    return plan


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()

    def body(config: JetsonApplianceConfig) -> int:
        report = run_appliance(plan_from_config(config), config)
        print(format_report(report), flush=True)
        return 0

    return run_command(parser.config_root, argv, parser, body)


if __name__ == "__main__":
    sys.exit(main())

"""The servers' operator: flags, the sources they name, and the hub wired to the policy client.

Composition only (an entry-point module): the sources and the hub live in :mod:`hal.operator`
and know no policy; here the hub's command becomes the inference client's
:class:`~compute.parkour.observation.PolicyCommand`, the trained speed range comes from the
policy's manifest, and the hub and the status line are hung on the server.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from hal.operator import OperatorCommand, OperatorConfig, OperatorHub, OperatorSource

__all__ = ["add_operator_arguments", "trained_speed_range", "build_operator_hub",
           "DEFAULT_SPEED_RANGE_M_S"]

log = logging.getLogger(__name__)

DEFAULT_SPEED_RANGE_M_S = (0.0, 1.5)
"""DESIGN §4: the forward speed command was trained on 0–1.5 m/s (when a manifest says nothing)."""


def add_operator_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("operator (see README: how to drive)")
    group.add_argument("--gamepad", metavar="DEVICE",
                       help="drive with a Linux gamepad: its evdev device, e.g. "
                            "/dev/input/by-id/usb-...-event-joystick (hold LB: dead-man)")
    group.add_argument("--teleop_bind", default="none", metavar="ENDPOINT",
                       help="network operator endpoint for krabby-teleop, e.g. tcp://*:5561 "
                            "(default none)")
    group.add_argument("--max-yaw-rate", dest="max_yaw_rate", type=float, default=1.0,
                       help="yaw rate limit of the operator's command, rad/s (default 1.0)")
    group.add_argument("--no-keyboard", dest="keyboard", action="store_false",
                       help="do not read the terminal's keys (space still e-stops otherwise)")
    group.add_argument("--no-status", dest="status", action="store_false",
                       help="no live status line (it is shown only when stdout is a terminal)")


def trained_speed_range(engine_path: str | Path | None) -> tuple[float, float]:
    """The forward speed range the policy was trained on, from its manifest's training contract
    (``training_contract.command_ranges.forward_speed_m_s``), else DESIGN's 0–1.5 m/s."""
    if engine_path is None:
        return DEFAULT_SPEED_RANGE_M_S
    try:
        from engines.manifest import load_manifest, manifest_path_for

        path = manifest_path_for(engine_path)
        if not path.is_file():
            return DEFAULT_SPEED_RANGE_M_S
        manifest = load_manifest(path)
    except Exception as exc:  # noqa: BLE001 - the engine loader reports a bad manifest itself
        log.debug("no manifest speed range (%s)", exc)
        return DEFAULT_SPEED_RANGE_M_S
    contract = getattr(manifest, "training_contract", None)
    if contract is None:
        contract = (manifest.extra or {}).get("training_contract")
    ranges = (contract or {}).get("command_ranges", {}) if isinstance(contract, dict) else {}
    value = ranges.get("forward_speed_m_s")
    if value is None:
        return DEFAULT_SPEED_RANGE_M_S
    lo, hi = (float(v) for v in value)
    return lo, hi


def build_operator_hub(server: Any, client: Any, args: argparse.Namespace,
                       speed_range_m_s: tuple[float, float],
                       extra_sources: list[OperatorSource] | None = None) -> OperatorHub:
    """The hub with the sources the flags name (not yet connected).

    Raises:
        ValueError: a flag value that cannot work (the message names it).
    """
    from hal.operator.keyboard import KeyboardSource

    config = OperatorConfig(speed_range_m_s=speed_range_m_s,
                            max_yaw_rate_rad_s=getattr(args, "max_yaw_rate", 1.0))
    sources: list[OperatorSource] = []
    if getattr(args, "keyboard", True) and KeyboardSource.usable():
        sources.append(KeyboardSource())
    if getattr(args, "gamepad", None):
        from hal.operator.gamepad import GamepadDecoder, GamepadSource

        sources.append(GamepadSource(args.gamepad, GamepadDecoder(
            speed_range_m_s[1], config.max_yaw_rate_rad_s)))
    teleop = getattr(args, "teleop_bind", "none")
    if teleop and teleop != "none":
        from hal.operator.network import NetworkOperatorSource

        sources.append(NetworkOperatorSource(teleop, server.context))
    sources.extend(extra_sources or [])
    on_command = None
    initial = OperatorCommand(float(getattr(args, "speed", 0.0)), 0.0,
                              getattr(args, "mode", "parkour"))
    if client is not None:
        from compute.parkour.observation import PolicyCommand

        def on_command(command: OperatorCommand) -> None:
            client.set_command(PolicyCommand(command.forward_speed_m_s, command.mode,
                                             yaw_rate_rad_s=command.yaw_rate_rad_s))

    hub = OperatorHub(server.safety, sources, initial, on_command, config,
                      clock_ns=server.clock_ns)
    if on_command is not None and hub.command != initial:
        on_command(hub.command)  # --speed outside the trained range: the clamped one runs
    return hub

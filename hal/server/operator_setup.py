"""The servers' operator: flags, the sources they name, and the hub wired to the policy client.

Composition only (an entry-point module): the sources and the hub live in :mod:`hal.operator`
and know no policy; here the hub's command becomes the inference client's
:class:`~compute.parkour.observation.PolicyCommand`, the trained speed range comes from the
policy's training contract, and the hub and the status line are hung on the server.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from hal.operator import OperatorCommand, OperatorConfig, OperatorHub, OperatorSource

__all__ = ["add_operator_arguments", "build_operator_hub"]

log = logging.getLogger(__name__)


def add_operator_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("operator (see README: how to drive)")
    group.add_argument("--gamepad", metavar="DEVICE",
                       help="drive with a Linux gamepad: its evdev device, e.g. "
                            "/dev/input/by-id/usb-...-event-joystick (hold LB: dead-man)")
    group.add_argument("--teleop-bind", "--teleop_bind", default="none", metavar="ENDPOINT",
                       help="network operator endpoint for krabby-teleop, e.g. tcp://*:5561 "
                            "(default none)")
    group.add_argument("--max-yaw-rate", dest="max_yaw_rate", type=float, default=1.0,
                       help="yaw rate limit of the operator's command, rad/s (default 1.0)")
    group.add_argument("--no-keyboard", dest="keyboard", action="store_false",
                       help="do not read the terminal's keys (by default they drive, space e-stops)")
    group.add_argument("--no-status", dest="status", action="store_false",
                       help="no live status line (it is shown only when stdout is a terminal)")


def build_operator_hub(server: Any, client: Any, args: argparse.Namespace,
                       speed_range_m_s: tuple[float, float],
                       extra_sources: list[Any] | None = None) -> OperatorHub:
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

        from hal.auth import is_network

        secure = None
        if is_network(teleop):
            # Operator keys only (hal.auth); the server checked at start-up that a network
            # endpoint has keys or --insecure.
            secure = lambda socket: server.secure_socket(socket, "operator")  # noqa: E731
        sources.append(NetworkOperatorSource(teleop, server.context, secure=secure))
        if secure is None:
            pass
        elif server.keys is not None:
            log.info("  %-12s %s (CURVE: operator keys, %d allowed)", "operator", teleop,
                     len(server.keys.authorized))
        else:
            log.warning("  %-12s %s UNAUTHENTICATED (--insecure): ANYONE WHO REACHES IT CAN "
                        "DRIVE, START AND RESET THE ROBOT", "operator", teleop)
    for extra in extra_sources or []:
        # A source, or a factory (server, speed range, yaw rate limit) -> source or None for
        # sources that need the connected devices (the Go2's remote rides on its motor session).
        if not isinstance(extra, OperatorSource):
            extra = extra(server, speed_range_m_s, config.max_yaw_rate_rad_s)
        if extra is not None:
            sources.append(extra)
    on_command = None
    initial = OperatorCommand(float(getattr(args, "speed", 0.0)), 0.0,
                              getattr(args, "mode", "parkour"))
    if client is not None:  # what the policy runs with (--speed already clamped by the contract)
        initial = OperatorCommand(client.command.forward_speed_m_s,
                                  client.command.yaw_rate_rad_s, client.command.mode)
        from compute.parkour.observation import PolicyCommand

        def on_command(command: OperatorCommand) -> None:
            client.set_command(PolicyCommand(command.forward_speed_m_s, command.mode,
                                             yaw_rate_rad_s=command.yaw_rate_rad_s))

    hub = OperatorHub(server.safety, sources, initial, on_command, config,
                      clock_ns=server.clock_ns)
    if on_command is not None and hub.command != initial:
        on_command(hub.command)  # --speed outside the trained range: the clamped one runs
    return hub

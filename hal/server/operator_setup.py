"""The servers' operator: the sources its settings name, and the hub wired to the policy client.

Composition only (an entry-point module): the sources and the hub live in :mod:`hal.operator`
and know no policy; here the hub's command becomes the inference client's
:class:`~compute.parkour.observation.PolicyCommand`, the trained speed range comes from the
policy's training contract, and the hub and the status line are hung on the server.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from hal.operator import OperatorCommand, OperatorConfig, OperatorHub, OperatorSource

if TYPE_CHECKING:
    from hal.config.sections import CommandSection
    from hal.server.settings import OperatorSection

__all__ = ["build_operator_hub"]

log = logging.getLogger(__name__)


def build_operator_hub(server: Any, client: Any, operator: OperatorSection,
                       command: CommandSection, speed_range_m_s: tuple[float, float],
                       extra_sources: list[Any] | None = None) -> OperatorHub:
    """The hub with the sources the settings name (not yet connected).

    Args:
        server: The started server (its safety layer, context and clock).
        client: The in-process inference client, or None (``--no-client``).
        operator: Which sources drive (``--gamepad``, ``--teleop-bind``, ``--no-keyboard``).
        command: The first command (``--speed``, ``--mode``) when no client runs.
        speed_range_m_s: The policy's trained forward speed range.
        extra_sources: The plan's own sources, or factories of them.

    Raises:
        ValueError: a flag value that cannot work (the message names it).
    """
    from hal.operator.keyboard import KeyboardSource

    config = OperatorConfig(speed_range_m_s=speed_range_m_s,
                            max_yaw_rate_rad_s=operator.max_yaw_rate_rad_s)
    sources: list[OperatorSource] = []
    if operator.keyboard and KeyboardSource.usable():
        sources.append(KeyboardSource())
    if operator.gamepad:
        from hal.operator.gamepad import GamepadDecoder, GamepadSource

        sources.append(GamepadSource(operator.gamepad, GamepadDecoder(
            speed_range_m_s[1], config.max_yaw_rate_rad_s)))
    teleop = operator.teleop_endpoint
    if teleop is not None:
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
    initial = OperatorCommand(command.speed_m_s, 0.0, command.mode)
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

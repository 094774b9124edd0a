"""The servers' operator: the registered sources their settings enable, and the hub wired to the
policy client.

Composition only (an entry-point module): the sources and the hub live in :mod:`hal.operator`
and know no policy; the sources are registered backends (kind ``operator``,
:mod:`hal.backends.builtin`), each offered by a server through its config section
(:func:`hal.server.backend_parts.operator_parts`). Here every offered source whose config enables
it joins the hub, the hub's command becomes the inference client's
:class:`~compute.parkour.observation.PolicyCommand`, and the trained speed range comes from the
policy's training contract.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

from hal.devices.registry import backends
from hal.operator import OperatorCommand, OperatorConfig, OperatorHub, OperatorSource
from hal.operator.base import OperatorContext
from hal.server.backend_parts import config_of, has_part

if TYPE_CHECKING:
    from hal.server.settings import ApplianceConfig

__all__ = ["build_operator_hub", "registered_sources"]

log = logging.getLogger(__name__)


def registered_sources(context: OperatorContext, config: Any) -> list[OperatorSource]:
    """The registered operator sources the run configuration ``config`` offers (its part holds
    the source's config) and enables (the factory gives a source, not None), in registration
    order.

    Raises:
        TypeError: a factory that returned something other than an operator source.
    """
    sources: list[OperatorSource] = []
    for backend in backends("operator"):
        if not has_part(config, backend.config):
            continue  # this command does not offer it (or it was registered after the parser)
        used = [config_of(config, section) for section in backend.uses]
        source = backend.factory(context, config_of(config, backend.config), *used)
        if source is None:
            continue
        if not isinstance(source, OperatorSource):
            raise TypeError(f"operator backend {backend.name!r} ({backend.factory.__module__}) "
                            f"returned {type(source).__name__}, not an OperatorSource")
        log.debug("operator source %r joins the hub", backend.name)
        sources.append(source)
    return sources


def build_operator_hub(server: Any, client: Any, config: ApplianceConfig,
                       speed_range_m_s: tuple[float, float],
                       extra_sources: list[Any] | None = None) -> OperatorHub:
    """The hub with the sources the settings enable (not yet connected).

    Args:
        server: The started server (its safety layer, context and clock).
        client: The in-process inference client, or None (``--no-client``).
        config: The run configuration: the hub's settings (``config.operator``), the first
            command (``config.command``: ``--speed``, ``--mode``) when no client runs, and the
            operator sources' sections.
        speed_range_m_s: The policy's trained forward speed range.
        extra_sources: The plan's own sources, or factories of them
            ``(server, speed range, yaw rate limit) -> source or None``.

    Raises:
        ValueError: a flag value that cannot work (the message names it).
    """
    operator, command = config.operator, config.command
    hub_config = OperatorConfig(speed_range_m_s=speed_range_m_s,
                                max_yaw_rate_rad_s=operator.max_yaw_rate_rad_s)
    context = OperatorContext(server=server, speed_range_m_s=speed_range_m_s,
                              max_yaw_rate_rad_s=hub_config.max_yaw_rate_rad_s)
    sources = registered_sources(context, config)
    for extra in extra_sources or []:
        if not isinstance(extra, OperatorSource):
            extra = extra(server, speed_range_m_s, hub_config.max_yaw_rate_rad_s)
        if extra is not None:
            sources.append(extra)
    on_command: Callable[[OperatorCommand], None] | None = None
    # Keywords: OperatorCommand and PolicyCommand order their fields differently.
    initial = OperatorCommand(forward_speed_m_s=command.speed_m_s, yaw_rate_rad_s=0.0,
                              mode=command.mode)
    if client is not None:  # what the policy runs with (--speed already clamped by the contract)
        initial = OperatorCommand(forward_speed_m_s=client.command.forward_speed_m_s,
                                  yaw_rate_rad_s=client.command.yaw_rate_rad_s,
                                  mode=client.command.mode)
        from compute.parkour.observation import PolicyCommand

        def to_policy(operator: OperatorCommand) -> None:
            client.set_command(PolicyCommand(forward_speed_m_s=operator.forward_speed_m_s,
                                             mode=operator.mode,
                                             yaw_rate_rad_s=operator.yaw_rate_rad_s))

        on_command = to_policy

    hub = OperatorHub(server.safety, sources, initial=initial, on_command=on_command,
                      config=hub_config, clock_ns=server.clock_ns)
    if on_command is not None and hub.command != initial:
        on_command(hub.command)  # --speed outside the trained range: the clamped one runs
    return hub

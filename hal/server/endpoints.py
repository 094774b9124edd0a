"""The HAL server's endpoint policy: which may be bound, with which keys, and the start-up log.

Rules (:mod:`hal.auth`): every network endpoint uses CURVE with the robot's keys
(``--keys DIR``). Without keys the server refuses to bind one unless the operator said
``--insecure``, and then it says so loudly. The one exception is an e-stop endpoint on the
loopback interface (the default): only processes on the robot reach it, and without an operator
key it only latches (``RESET`` and ``START`` are refused there).
"""

from __future__ import annotations

import logging
from typing import Any

from hal.auth import AuthError, ServerKeys, check_bind_security, is_network

__all__ = ["check_server_endpoints", "log_bound_endpoints"]

log = logging.getLogger(__name__)


def check_server_endpoints(config: Any) -> ServerKeys | None:
    """Load the keys a :class:`~hal.server.base.HalServerConfig` names and check its endpoints.

    Returns:
        The robot's keys, or None without ``keys_dir``.

    Raises:
        AuthError: unreadable keys, or a network endpoint without keys and without ``insecure``
            (the message names the flag).
    """
    keys = ServerKeys.load(config.keys_dir) if config.keys_dir else None
    if keys is not None and config.insecure:
        raise AuthError("--keys and --insecure contradict each other: drop one")
    endpoints = [(config.observation_endpoint, "--observation-bind", False),
                 (config.command_endpoint, "--command-bind", False)]
    if config.estop_endpoint:
        endpoints.append((config.estop_endpoint, "--estop-bind", True))
    for endpoint, flag, loopback_ok in endpoints:
        check_bind_security(endpoint, keys, config.insecure, flag, loopback_ok)
    if keys is not None and not keys.authorized:
        log.warning("keys %s allow no client yet: nobody can connect (krabby-keys add %s NAME --role ...)",
                    keys.directory, keys.directory)
    return keys


def log_bound_endpoints(log: logging.Logger, keys: ServerKeys | None, insecure: bool,
                        parts: list[tuple[str, Any]]) -> None:
    """One line per bound endpoint, saying who can reach it; a loud warning for each open one."""
    for name, part in parts:
        if part is None:
            log.info("  %-12s off", name)
            continue
        endpoint = getattr(part, "last_endpoint", None) or part.endpoint
        if not is_network(part.endpoint):
            log.info("  %-12s %s (in-process only)", name, endpoint)
        elif getattr(part, "authenticated", False):
            allowed = {"observations": "policy and operator keys", "commands": "policy keys",
                       "e-stop": "policy and operator keys; RESET/START operator keys"}[name]
            log.info("  %-12s %s (CURVE: %s, %d allowed in %s)", name, endpoint, allowed,
                     len(keys.authorized) if keys else 0, keys.directory if keys else "-")
        elif insecure:
            log.warning("  %-12s %s UNAUTHENTICATED (--insecure): ANYONE WHO REACHES IT CAN %s",
                        name, endpoint, {"observations": "WATCH THE ROBOT",
                                         "commands": "DRIVE THE ROBOT",
                                         "e-stop": "STOP THE ROBOT"}[name])
        else:
            log.warning("  %-12s %s (loopback, no keys: latches only; RESET/START from the "
                        "terminal)", name, endpoint)

"""``krabby-inference-client``: the parkour inference client in its own process (or machine).

Connects to a HAL server's tcp endpoints (``krabby-hal-server-jetson``/``-sim`` started with
``--observation-bind tcp://*:5555 --command-bind tcp://*:5556 --no-client``) and runs the policy.
Only the engines are opened here; the robot definition must be the server's.

Example::

    krabby-inference-client --engine model.onnx --robot go2 \\
        --observation-endpoint tcp://robot:5555 --command-endpoint tcp://robot:5556
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import ClassVar, Sequence

from hal.config import ConfigError, build_parser as build_config_parser
from hal.config import parse_config, part, setting
from hal.config.sections import (
    CommandSection,
    DurationSection,
    KeysSection,
    OutputSection,
    PolicyFilesSection,
    RobotSection,
)

__all__ = ["main", "build_parser", "ClientSection", "ClientRunConfig"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClientSection:
    """Where the HAL server is, and what the client writes."""

    section: ClassVar[str] = "client"
    title: ClassVar[str] = "HAL server"

    observation_endpoint: str | None = setting(None, aliases=("--observation_endpoint",),
                                               metavar="ENDPOINT",
                                               help="the server's observations (required), e.g. "
                                                    "tcp://robot:5555")
    command_endpoint: str | None = setting(None, aliases=("--command_endpoint",),
                                           metavar="ENDPOINT",
                                           help="the server's commands (required), e.g. "
                                                "tcp://robot:5556")
    server_timeout_s: float = setting(10.0, flag="--server-timeout", metavar="S",
                                      help="give up (exit 1) when no observation arrives for this "
                                           "long, at the start or later")
    stats: str | None = setting(None, metavar="PATH",
                                help="write the client's timing statistics (JSON) here")

    def __post_init__(self) -> None:
        missing = [flag for flag, value in (("--observation-endpoint", self.observation_endpoint),
                                            ("--command-endpoint", self.command_endpoint))
                   if not value]
        if missing:
            raise ValueError(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                             "required: the HAL server's endpoints (its --observation-bind/"
                             "--command-bind)")
        if not (math.isfinite(self.server_timeout_s) and self.server_timeout_s > 0):
            raise ValueError(f"--server-timeout {self.server_timeout_s}: must be a positive "
                             "number of seconds")


@dataclass(frozen=True)
class ClientRunConfig:
    """``krabby-inference-client``: the shared policy settings and the server's endpoints."""

    robot: RobotSection = part(RobotSection)
    policy: PolicyFilesSection = part(PolicyFilesSection,
                                      only=("engine", "checkpoint", "device", "no_manifest"))
    command: CommandSection = part(CommandSection)
    duration: DurationSection = part(DurationSection)
    keys: KeysSection = part(KeysSection)
    client: ClientSection = part(ClientSection)
    output: OutputSection = part(OutputSection, only=("log_level",))


def build_parser() -> argparse.ArgumentParser:
    """The command line, built from :class:`ClientRunConfig` (``--config FILE.toml`` too)."""
    return build_config_parser(ClientRunConfig, prog="krabby-inference-client",
                               description="Run the parkour policy against a HAL server.")


def main(argv: Sequence[str] | None = None) -> int:
    from compute.parkour.inference_client import InferenceClientConfig, ParkourInferenceClient
    from compute.parkour.policy_engines import PolicyConfigError, open_policy_engines
    from engines import EngineError
    from engines.manifest import ManifestError
    from hal.auth import AuthError, ClientKeys, is_network
    from hal.robot import RobotDefinitionError, load_robot

    try:
        run = parse_config(ClientRunConfig, argv, build_parser())
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    run.output.configure_logging()
    server, keys, command = run.client, run.keys, run.command
    try:
        network = [e for e in (server.observation_endpoint, server.command_endpoint)
                   if is_network(e)]
        if keys.keys:
            ClientKeys.load(keys.keys)
        elif network and not keys.insecure:
            raise AuthError(f"{network[0]}: a network endpoint needs this client's keys (--keys "
                            "DIR from krabby-keys add), or --insecure for a server run with "
                            "--insecure")
        robot = load_robot(run.robot.robot)
        policy = open_policy_engines(robot, engine=run.policy.engine,
                                     checkpoint=run.policy.checkpoint, device=run.policy.device,
                                     allow_no_manifest=run.policy.no_manifest)
    except (ValueError, RobotDefinitionError, PolicyConfigError, EngineError,
            ManifestError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    # In its own process the client owns garbage collection.
    speed = policy.contract.clamp_forward_speed(command.speed_m_s)
    if speed != command.speed_m_s:
        log.warning("--speed %g m/s is outside the policy's trained range %s m/s: using %g m/s",
                    command.speed_m_s, list(policy.contract.forward_speed_range_m_s), speed)
    config = InferenceClientConfig(observation_endpoint=server.observation_endpoint,
                                   command_endpoint=server.command_endpoint,
                                   forward_speed_m_s=speed, mode=command.mode, gc_control=True,
                                   keys_dir=keys.keys)
    # The policy's robot: the definition with the manifest's training contract applied.
    client = ParkourInferenceClient(policy.robot, policy.actor, policy.depth, config)
    client.start()
    duration_s = run.duration.duration_s
    end_ns = None if duration_s is None else time.monotonic_ns() + int(duration_s * 1e9)
    silence_ns = int(server.server_timeout_s * 1e9)
    last_count, last_change_ns = 0, time.monotonic_ns()
    no_server = None
    try:
        while not stop.wait(0.2):
            if not client.running:
                log.error("inference threads ended: %s", client.errors)
                break
            now = time.monotonic_ns()
            if end_ns is not None and now >= end_ns:
                break
            count = client.counters["observations"]
            if count != last_count:
                last_count, last_change_ns = count, now
            elif now - last_change_ns > silence_ns:
                no_server = (f"no observation from {server.observation_endpoint} for "
                             f"{server.server_timeout_s:g} s" + (
                                 " since the start: is the HAL server running there, and does "
                                 "it allow this key?" if count == 0 else ": the server went away"))
                break
    finally:
        client.stop()
        policy.close()
    stats = client.stats()
    if server.stats:
        with open(server.stats, "w") as f:
            json.dump(stats, f, indent=2)
    log.info("inference client done: %s", stats["counters"])
    if no_server is not None:
        print(f"error: {no_server}", file=sys.stderr)
        return 1
    return 0 if not client.errors else 1


if __name__ == "__main__":
    sys.exit(main())

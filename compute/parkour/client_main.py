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
import os
import signal
import sys
import threading
import time

__all__ = ["main"]

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="krabby-inference-client",
                                     description="Run the parkour policy against a HAL server.")
    parser.add_argument("--engine", help="model.plan or model.onnx with model.json beside it")
    parser.add_argument("--checkpoint", help="torch reference from a checkpoint (bring-up only)")
    parser.add_argument("--robot", default="go2")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cpu")
    parser.add_argument("--observation-endpoint", "--observation_endpoint", required=True, help="e.g. tcp://robot:5555")
    parser.add_argument("--command-endpoint", "--command_endpoint", required=True, help="e.g. tcp://robot:5556")
    parser.add_argument("--speed", type=float, default=0.5, help="forward speed command, m/s")
    parser.add_argument("--mode", choices=("parkour", "walk"), default="parkour")
    parser.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    parser.add_argument("--keys", default=os.environ.get("KRABBY_KEYS"),
                        help="this client's key directory (krabby-keys add ... --role policy); "
                             "default $KRABBY_KEYS")
    parser.add_argument("--insecure", action="store_true",
                        help="connect to tcp endpoints without keys (a server run with --insecure)")
    parser.add_argument("--no-manifest", dest="no_manifest", action="store_true",
                        help="run an --engine without its manifest (shape checks only)")
    parser.add_argument("--server-timeout", dest="server_timeout_s", type=float, default=10.0,
                        help="give up (exit 1) when no observation arrives for this long, at the "
                             "start or later (default 10 s)")
    parser.add_argument("--stats", help="write the client's timing statistics (JSON) here")
    parser.add_argument("--log-level", default="INFO")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from compute.parkour.inference_client import InferenceClientConfig, ParkourInferenceClient
    from compute.parkour.policy_engines import PolicyConfigError, open_policy_engines
    from engines import EngineError
    from engines.manifest import ManifestError
    from hal.auth import AuthError, ClientKeys, is_network
    from hal.robot import RobotDefinitionError, load_robot

    try:
        problems = [f"--{name} {value}: must be a positive number of seconds"
                    for name, value in (("duration", args.duration),
                                        ("server-timeout", args.server_timeout_s))
                    if value is not None and not (math.isfinite(value) and value > 0)]
        if not math.isfinite(args.speed):  # a finite one is clamped to the trained range
            problems.append(f"--speed {args.speed}: must be a finite number of m/s")
        if problems:
            raise ValueError("; ".join(problems))
        network = [e for e in (args.observation_endpoint, args.command_endpoint) if is_network(e)]
        if args.keys:
            ClientKeys.load(args.keys)
        elif network and not args.insecure:
            raise AuthError(f"{network[0]}: a network endpoint needs this client's keys (--keys "
                            "DIR from krabby-keys add), or --insecure for a server run with "
                            "--insecure")
        robot = load_robot(args.robot)
        policy = open_policy_engines(robot, engine=args.engine, checkpoint=args.checkpoint,
                                     device=args.device, allow_no_manifest=args.no_manifest)
    except (ValueError, RobotDefinitionError, PolicyConfigError, EngineError,
            ManifestError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    # In its own process the client owns garbage collection.
    speed = policy.contract.clamp_forward_speed(args.speed)
    if speed != args.speed:
        log.warning("--speed %g m/s is outside the policy's trained range %s m/s: using %g m/s",
                    args.speed, list(policy.contract.forward_speed_range_m_s), speed)
    config = InferenceClientConfig(observation_endpoint=args.observation_endpoint,
                                   command_endpoint=args.command_endpoint,
                                   forward_speed_m_s=speed, mode=args.mode, gc_control=True,
                                   keys_dir=args.keys)
    # The policy's robot: the definition with the manifest's training contract applied.
    client = ParkourInferenceClient(policy.robot, policy.actor, policy.depth, config)
    client.start()
    end_ns = None if args.duration is None else time.monotonic_ns() + int(args.duration * 1e9)
    silence_ns = int(args.server_timeout_s * 1e9)
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
                no_server = (f"no observation from {args.observation_endpoint} for "
                             f"{args.server_timeout_s:g} s" + (
                                 " since the start: is the HAL server running there, and does "
                                 "it allow this key?" if count == 0 else ": the server went away"))
                break
    finally:
        client.stop()
        policy.close()
    stats = client.stats()
    if args.stats:
        with open(args.stats, "w") as f:
            json.dump(stats, f, indent=2)
    log.info("inference client done: %s", stats["counters"])
    if no_server is not None:
        print(f"error: {no_server}", file=sys.stderr)
        return 1
    return 0 if not client.errors else 1


if __name__ == "__main__":
    sys.exit(main())

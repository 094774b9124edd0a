"""Hostile traffic against a HAL server's ports, from a process of its own (localhost only).

The attacker side of the flood test (``tests/appliance/test_flood.py``) and of
``python -m benchmarks.flood``, which measures the loop under it. Kinds:

- ``commands``: a PUSH with a (hostile but allowed) policy key blasting well-formed commands for
  wrong seqs and garbage frames, and a churn of unauthenticated connections (CURVE handshakes the
  ZAP handler must refuse);
- ``observations``: an XSUB sending random subscribe/unsubscribe messages as fast as it can, and
  subscriptions larger than the limit;
- ``estop``: a PUSH with a policy key blasting garbage, ``RESET`` and ``START`` (all refused);
- ``oversize``: a PUSH sending 32 MiB frames to the command port (4 a second);
- ``none`` (measurement only): the same run without an attacker, the baseline.

Every run is bounded by ``--duration`` and by ``--max-messages``; endpoints must be loopback.

    python -m benchmarks.flood --seconds 10 --out bench-results/flood.json   # measure
"""

from __future__ import annotations

import argparse
from typing import ClassVar
from dataclasses import dataclass
import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import zmq

from hal.config import build_parser as build_config_parser
from hal.config import parse_cli, part, setting
from hal.config.sections import FilesSection, KeysSection, MeasureSection

__all__ = ["attack", "start_attacker", "run_case", "run_all", "PolicyResponder", "main",
           "build_parser", "FloodConfig"]

KINDS = ("commands", "observations", "estop", "oversize")


def _loopback_only(endpoint: str) -> None:
    if not endpoint.startswith(("tcp://127.", "tcp://localhost:")):
        raise SystemExit(f"flood: {endpoint} is not a loopback endpoint; refusing")


def _socket(context: zmq.Context, kind: int, keys_dir: str | None, endpoint: str) -> zmq.Socket:
    from hal.auth import ClientKeys, secure_client_socket

    sock = context.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 1000)
    if keys_dir:
        secure_client_socket(sock, ClientKeys.load(keys_dir))
    sock.connect(endpoint)
    return sock


def _churn(context: zmq.Context, endpoint: str, stranger_dir: str | None, end: float,
           counts: dict) -> None:
    """Connect, send, close, again: each connection costs the server a refused handshake."""
    while time.monotonic() < end:
        sock = _socket(context, zmq.PUSH, stranger_dir, endpoint)
        try:
            sock.send(b"x", flags=zmq.NOBLOCK)
        except zmq.Again:
            pass
        time.sleep(0.002)
        sock.close(linger=0)
        counts["connections"] += 1


def attack(kind: str, endpoint: str, keys_dir: str | None, duration_s: float,
           max_messages: int, stranger_dir: str | None = None, frame_mib: int = 32) -> dict:
    """Flood ``endpoint`` for ``duration_s`` (at most ``max_messages``); returns what was sent."""
    from hal.protocol import CommandMessage, encode_command

    _loopback_only(endpoint)
    context = zmq.Context()
    counts = {"messages": 0, "again": 0, "connections": 0}
    end = time.monotonic() + duration_s
    rng = np.random.default_rng(0)
    churn = None
    try:
        if kind == "observations":
            sock = _socket(context, zmq.XSUB, keys_dir, endpoint)
            big = b"\x01" + b"t" * 4096
            while time.monotonic() < end and counts["messages"] < max_messages:
                topic = rng.bytes(16)
                frames = (b"\x01" + topic, b"\x00" + topic) if counts["messages"] % 64 else (big,)
                for frame in frames:
                    try:
                        sock.send(frame, flags=zmq.NOBLOCK)
                        counts["messages"] += 1
                    except zmq.Again:
                        counts["again"] += 1
                        time.sleep(0.0005)
        else:
            sock = _socket(context, zmq.PUSH, keys_dir, endpoint)
            if kind == "commands" and stranger_dir is not None:
                churn = threading.Thread(target=_churn, args=(context, endpoint, stranger_dir,
                                                              end, counts), daemon=True)
                churn.start()
            n = 12
            valid = encode_command(CommandMessage(
                obs_seq=1, target_rad=np.zeros(n, np.float32), kp=np.full(n, 40, np.float32),
                kd=np.ones(n, np.float32), raw_action=np.zeros(n, np.float32)))
            messages = {
                "commands": [valid, [b"KRBC garbage"], [valid[0][:20], b"\x00" * 7],
                             [b"x" * 60, b"y" * 192]],
                "estop": [[b"RESET"], [b"START"], [b"garbage \x01"], [b"x" * 200]],
                "oversize": [[b"\x00" * (frame_mib << 20)]],
            }[kind]
            i = 0
            while time.monotonic() < end and counts["messages"] < max_messages:
                frames = messages[i % len(messages)]
                i += 1
                try:
                    sock.send_multipart(frames, flags=zmq.NOBLOCK)
                    counts["messages"] += 1
                except zmq.Again:
                    counts["again"] += 1
                    time.sleep(0.0005)
                if kind == "oversize":
                    time.sleep(0.25)
        sock.close(linger=0)
        if churn is not None:
            churn.join()
    finally:
        context.destroy(linger=0)
    return counts


def start_attacker(kind: str, endpoint: str, keys_dir: str | None, duration_s: float,
                   max_messages: int = 2_000_000, stranger_dir: str | None = None
                   ) -> subprocess.Popen:
    """The attacker in a child process (its CPU and GIL are not the loop's)."""
    args = [sys.executable, "-m", "benchmarks.flood", "--attack", kind, "--endpoint", endpoint,
            "--seconds", str(duration_s), "--max-messages", str(max_messages)]
    if keys_dir:
        args += ["--keys", str(keys_dir)]
    if stranger_dir:
        args += ["--stranger-keys", str(stranger_dir)]
    # --keys falls back to $KRABBY_KEYS (hal.config.sections.KeysSection): an attacker started
    # without keys must stay a stranger whatever this shell holds.
    env = {k: v for k, v in os.environ.items() if k != "KRABBY_KEYS"}
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(env, PYTHONPATH=str(Path(__file__).resolve().parents[1])))


class PolicyResponder(threading.Thread):
    """A legitimate policy client: answers every observation with the default pose."""

    def __init__(self, robot, observation_endpoint: str, command_endpoint: str, keys) -> None:
        super().__init__(daemon=True, name="policy-responder")
        from hal.client import HalClient

        self._make = lambda: HalClient(observation_endpoint, command_endpoint, robot.n_joints,
                                       robot.n_feet, keys=keys, n_scan=None)
        n = robot.n_joints
        self.target = np.asarray(robot.to_hardware(robot.default_angles), np.float32)
        self.kp, self.kd = np.full(n, 40, np.float32), np.ones(n, np.float32)
        self.raw = np.zeros(n, np.float32)
        self.stop = threading.Event()
        self.sent = 0

    def run(self) -> None:
        from hal.protocol import CommandMessage

        with self._make() as client:
            while not self.stop.is_set():
                obs = client.poll(50)
                if obs is None:
                    continue
                client.send_command(CommandMessage(obs.seq, self.target, self.kp, self.kd,
                                                   self.raw))
                self.sent += 1


def free_endpoint() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def _percentiles_ms(values_ns: list[int]) -> dict:
    arr = np.asarray(values_ns, dtype=np.float64) / 1e6
    return {"p50": float(np.percentile(arr, 50)), "p99": float(np.percentile(arr, 99)),
            "max": float(arr.max())}


def run_case(kind: str, flood_s: float, keys: dict, rate_hz: float = 100.0) -> dict:
    """The sim HAL at ``rate_hz`` with CURVE on every port and a legitimate policy client, while
    ``kind`` floods its port from another process; an operator e-stop is sent half-way.

    ``keys``: the directories ``robot_dir`` (server), ``pilot_dir`` (the legitimate policy
    client), ``copilot_dir`` (an allowed but hostile policy key), ``alice_dir`` (operator),
    ``mallory_dir`` (a stranger's key). Returns the loop's figures.
    """
    from benchmarks.soak import rss_kib
    from hal.auth import ClientKeys
    from hal.robot import load_robot
    from hal.safety import EstopSender
    from hal.server.base import HalServer, HalServerConfig
    from hal.sim import MujocoWorldConfig, make_sim_devices

    robot = load_robot("go2")
    obs_ep, cmd_ep, estop_ep = free_endpoint(), free_endpoint(), free_endpoint()
    sim = make_sim_devices(robot, MujocoWorldConfig(scene="flat", settle_s=0.5, camera_fps=0))
    server = HalServer(robot, dataclasses.replace(sim, camera=None),
                       HalServerConfig(control_rate_hz=rate_hz, latency_budget_ms=500.0 / rate_hz,
                                       observation_endpoint=obs_ep, command_endpoint=cmd_ep,
                                       estop_endpoint=estop_ep, keys_dir=str(keys["robot_dir"])))
    responder = PolicyResponder(robot, obs_ep, cmd_ep, ClientKeys.load(keys["pilot_dir"]))
    target = {"commands": cmd_ep, "observations": obs_ep, "estop": estop_ep,
              "oversize": cmd_ep, "none": None}[kind]
    ticks: list[tuple[int, int, int, str, bool]] = []
    attacker = None
    try:
        server.start()
        responder.start()
        operator = EstopSender(estop_ep, keys=ClientKeys.load(keys["alice_dir"]),
                               send_timeout_ms=2000)
        server.safety.request_start()
        server.run(duration_s=2.5)  # connect, stand up, hand over
        if target is not None:  # "none": the same run without an attacker (the baseline)
            attacker = start_attacker(kind, target, keys["copilot_dir"], flood_s + 1.0,
                                      stranger_dir=keys["mallory_dir"])
        server.run(duration_s=0.7)  # the attacker's interpreter starts and connects
        rss_before = rss_kib(os.getpid())
        server.tick_listeners.append(lambda r: ticks.append(
            (r.seq, r.tick_ns, time.monotonic_ns(), r.safety_mode, r.command is not None)))
        sent = {}

        def send_estop() -> None:
            sent["seq"] = server._seq
            operator.estop("flood test")

        timer = threading.Timer(flood_s / 2, send_estop)
        before = dict(server.counters)
        wall = time.monotonic()
        timer.start()
        server.run(duration_s=flood_s)
        wall = time.monotonic() - wall
        timer.join()
        rss_after = rss_kib(os.getpid())
        attacked = (json.loads(attacker.communicate(timeout=30)[0].decode() or "{}")
                    if attacker is not None else {"messages": 0})
        operator.close()
        network = server.network_report()
    finally:
        responder.stop.set()
        responder.join(5)
        if attacker is not None and attacker.poll() is None:
            attacker.kill()
            attacker.wait()
        server.close()
    first_estop = next((seq for seq, _, _, mode, _ in ticks if mode == "estop"), None)
    before_estop = [t for t in ticks if t[0] <= sent.get("seq", 0)]
    return {
        "kind": kind, "flood_s": flood_s, "rate_hz": rate_hz, "ticks": len(ticks),
        # The loop's own rate (tick start to tick start); wall_s also counts run()'s start-up
        # (a full garbage collection and heap freeze).
        "wall_s": wall, "rate_held_hz": (len(ticks) - 1) / ((ticks[-1][1] - ticks[0][1]) / 1e9),
        "tick_interval_ms": _percentiles_ms([b[1] - a[1] for a, b in zip(ticks, ticks[1:])]),
        "tick_work_ms": _percentiles_ms([done - start for _, start, done, _, _ in ticks]),
        "estop_sent_at_seq": sent.get("seq"), "estop_seq": first_estop,
        "estop_latency_ticks": None if first_estop is None else first_estop - sent["seq"],
        "commands_applied_before_estop": (sum(t[4] for t in before_estop) / len(before_estop)
                                          if before_estop else None),
        "deadline_misses": server.counters["deadline_misses"] - before["deadline_misses"],
        "malformed_dropped": server.counters["malformed_dropped"] - before["malformed_dropped"],
        "foreign_commands": network["clients"]["foreign_commands"],
        "clients_refused": len(network["clients"]["refused"]),
        "estop_counts": network["estop"], "attacker": attacked,
        "rss_growth_mb": (rss_after - rss_before) / 1024,
    }


def run_all(flood_s: float, kinds: tuple[str, ...] = ("none", *KINDS)) -> list[dict]:
    """Every kind (and ``none``, the baseline without an attacker), with a fresh key set;
    prints one line per kind."""
    import tempfile

    from hal.keys_cli import add_client, init_keys

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        init_keys(root / "robot")
        for name, role in (("pilot", "policy"), ("copilot", "policy"), ("alice", "operator")):
            add_client(root / "robot", name, role, root / name)
        init_keys(root / "other")
        add_client(root / "other", "mallory", "policy", root / "mallory")
        (root / "mallory" / "server.key").write_bytes((root / "robot" / "server.key").read_bytes())
        keys = {f"{n}_dir": root / n for n in ("robot", "pilot", "copilot", "alice", "mallory")}
        results = []
        for kind in kinds:
            r = run_case(kind, flood_s, keys)
            results.append(r)
            print(f"{kind:<13} {r['attacker'].get('messages', 0):>9} msgs in {flood_s:g} s: loop "
                  f"{r['rate_held_hz']:.1f} Hz, tick interval p99 {r['tick_interval_ms']['p99']:.2f}"
                  f" max {r['tick_interval_ms']['max']:.2f} ms, tick work p99 "
                  f"{r['tick_work_ms']['p99']:.2f} ms, e-stop in {r['estop_latency_ticks']} ticks, "
                  f"commands applied {r['commands_applied_before_estop']:.2f}, RSS "
                  f"{r['rss_growth_mb']:+.1f} MB", flush=True)
        return results



@dataclass(frozen=True)
class FloodSection:
    """The attacker child process's settings (given by the benchmark itself)."""

    section: ClassVar[str] = "flood"

    attack: str | None = setting(None, choices=KINDS, help="be the attacker (child process)")
    endpoint: str | None = setting(None, help="the endpoint attacked")
    stranger_keys: str | None = setting(None, metavar="DIR",
                                        help="a key directory the robot does not allow")
    max_messages: int = setting(5_000_000, metavar="N", help="stop after N messages")


@dataclass(frozen=True)
class FloodConfig:
    """``python -m benchmarks.flood``'s run configuration."""

    flood: FloodSection = part(FloodSection)
    keys: KeysSection = part(KeysSection, only=("keys",))
    measure: MeasureSection = part(MeasureSection, only=("seconds",))
    files: FilesSection = part(FilesSection, only=("out",))


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(FloodConfig, prog="python -m benchmarks.flood",
                               description=__doc__)


def main(argv: list[str] | None = None) -> int:
    config = parse_cli(FloodConfig, argv, build_parser())
    if config.flood.attack:
        flood = config.flood
        counts = attack(flood.attack, flood.endpoint, config.keys.keys, config.measure.seconds,
                        flood.max_messages, flood.stranger_keys)
        print(json.dumps(counts), flush=True)
        return 0
    results = run_all(config.measure.seconds)
    if config.files.out:
        Path(config.files.out).parent.mkdir(parents=True, exist_ok=True)
        Path(config.files.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

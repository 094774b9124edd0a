"""What the live view (``--live``) costs the control loop: tick work with live off, live on with no
client, and live on with a client subscribed to every channel, in one run.

A MuJoCo HAL server (Go2, ticked every 10 ms of wall time, timed without the wait, the appliance's 0.5 ms GIL switch
interval, the simulator's scene source as ``krabby-hal-server-sim --live`` has it) answered by a
thread that replies to every observation with a fixed command over the real inproc path. A
Foxglove WebSocket client runs in a child process (loopback) and subscribes to everything or to
nothing on request. Blocks of ticks cycle through the three conditions so each sees the same
machine state. Reported (µs):

- ``tick_off`` / ``tick_on_no_client`` / ``tick_on_client``: duration of ``HalServer.tick()``
  (sensors, publish, wait for the answer, safety layer, actuators, world step, listeners — and,
  with live on, the publisher's worker thread encoding and sending beside it);
- ``listener_*``: the publisher's tick listener alone, per condition;
- ratios of p50 and p99 against ``tick_off``; messages the client received; drops.

Run: ``python -m benchmarks.live_cost`` (``--full`` for 10x more ticks). Prints JSON.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import json
import subprocess
import sys
import time
from typing import Any

from benchmarks.common import machine_description, stats_us
from benchmarks.recorder_cost import sim_server_with_responder

from hal.config import build_parser as build_config_parser
from hal.config import parse_cli, part
from hal.config.sections import MeasureSection

__all__ = ["run", "build_parser", "LiveCostConfig"]

_CLIENT = r"""
import json, sys, threading
from websockets.sync.client import connect
ws = connect("ws://127.0.0.1:%d", subprotocols=["foxglove.sdk.v1"], max_size=1 << 24).__enter__()
channels, count = {}, [0]
def reader():
    while True:
        try:
            frame = ws.recv()
        except Exception:
            return
        if isinstance(frame, str):
            msg = json.loads(frame)
            if msg.get("op") == "advertise":
                channels.update({c["id"]: c for c in msg["channels"]})
        else:
            count[0] += 1
threading.Thread(target=reader, daemon=True).start()
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "sub":
        ws.send(json.dumps({"op": "subscribe", "subscriptions": [
            {"id": cid, "channelId": cid} for cid in channels]}))
    elif cmd == "unsub":
        ws.send(json.dumps({"op": "unsubscribe", "subscriptionIds": list(channels)}))
    elif cmd == "count":
        print(count[0], flush=True)
    elif cmd == "quit":
        break
ws.close()
"""


def run(quick: bool = True) -> dict[str, Any]:
    from hal.live.session import LiveSession
    from hal.robot import load_robot
    from hal.sim.foxglove_scene import SimScene

    rounds, block = (3, 200) if quick else (30, 200)
    robot = load_robot("go2")
    server, responder, stop = sim_server_with_responder(robot, "parkour", "live")
    live = LiveSession("127.0.0.1", 0)
    conditions = ("off", "on_no_client", "on_client")
    times: dict[str, list[int]] = {c: [] for c in conditions}
    listener: dict[str, list[int]] = {c: [] for c in conditions[1:]}
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    client = None
    try:
        server.start()
        responder.start()
        live.attach(server, None, SimScene(server.devices.world))
        publisher = live.publisher
        on_tick = publisher.on_tick
        server.tick_listeners.remove(on_tick)

        def timed(record: Any, sink: list[int]) -> None:
            start = time.perf_counter_ns()
            on_tick(record)
            sink.append(time.perf_counter_ns() - start)

        client = subprocess.Popen([sys.executable, "-c", _CLIENT % live.port],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)  # connected, channels advertised
        server.safety.request_start(run_policy=False)
        server.pacer.start()
        for _ in range(100):  # warm-up: connect, stand up
            server.tick()
        for _ in range(rounds):
            for condition in conditions:
                if condition == "on_client":
                    client.stdin.write("sub\n")
                    client.stdin.flush()
                    time.sleep(0.3)  # the subscription reached the server
                hook = None
                if condition != "off":
                    sink = listener[condition]
                    hook = lambda record, sink=sink: timed(record, sink)  # noqa: E731
                    server.tick_listeners.append(hook)
                samples = times[condition]
                next_ns = time.perf_counter_ns()
                for _ in range(block):
                    # The loop's own 100 Hz rhythm (the server is free-running: its tick() does not
                    # sleep), so the rate gates pass as in a run and the worker runs between ticks.
                    next_ns += 10_000_000
                    start = time.perf_counter_ns()
                    server.tick()
                    end = time.perf_counter_ns()
                    samples.append(end - start)
                    if next_ns > end:
                        time.sleep((next_ns - end) / 1e9)
                if hook is not None:
                    server.tick_listeners.remove(hook)
                if condition == "on_client":
                    client.stdin.write("unsub\n")
                    client.stdin.flush()
                    time.sleep(0.3)
        client.stdin.write("count\n")
        client.stdin.flush()
        received = int(client.stdout.readline().strip() or 0)
        report = live.report()
    finally:
        sys.setswitchinterval(switch_interval)
        if client is not None:
            try:
                client.stdin.write("quit\n")
                client.stdin.flush()
                client.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                client.kill()
        live.close()
        stop.set()
        responder.join(5.0)
        server.close()
    stats = {c: stats_us(times[c]) for c in conditions}
    off = stats["off"]
    return {
        "robot": robot.name, "control_rate_hz": 100.0, "ticks_per_condition": rounds * block,
        "cases": {
            **{f"tick_{c}": stats[c] for c in conditions},
            **{f"listener_{c}": stats_us(listener[c]) for c in conditions[1:]},
            "ratio_p50": {c: round(stats[c]["p50"] / off["p50"], 3) for c in conditions[1:]},
            "ratio_p99": {c: round(stats[c]["p99"] / off["p99"], 3) for c in conditions[1:]},
        },
        "client_messages_received": received,
        "live": report,
        "machine": machine_description(),
    }




@dataclass(frozen=True)
class LiveCostConfig:
    """``python -m benchmarks.live_cost``'s run configuration."""

    measure: MeasureSection = part(MeasureSection, only=("full",))


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(LiveCostConfig, prog="python -m benchmarks.live_cost",
                               description=__doc__.split("\n\n")[0])


def main(argv: list[str] | None = None) -> int:
    config = parse_cli(LiveCostConfig, argv, build_parser())
    print(json.dumps(run(quick=not config.measure.full), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

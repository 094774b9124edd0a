"""What recording costs the control loop: tick work with the recorder on vs off, in one run.

A MuJoCo HAL server (Go2, 100 Hz schedule, free-running, the appliance's 0.5 ms GIL switch
interval) answered by a thread that replies to every observation with a fixed command over the
real inproc path (so each tick carries a command, as in a run, without an engine's noise). Blocks of ticks alternate between recorder on (tap → flight
recorder ring + file recorder writing MCAP on its own thread) and off, so both conditions see the
same machine state. Reported:

- ``tick_off`` / ``tick_on``: duration of ``HalServer.tick()`` (sensors, publish, wait for the
  answer, safety layer, actuators, world step, listeners) — the difference is what recording adds;
- ``listener``: the tap's tick listener alone (wall and thread CPU time);
- ``actor_listener`` / ``depth_listener``: the client-side listeners on realistic records;
- ``encode``: the writer thread's encoding per record kind (JSON rows, images through
  foxglove-sdk; off the loop).

Run: ``python -m benchmarks.recorder_cost`` (``--full`` for 10x more ticks). Prints JSON (µs).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import machine_description, stats_us

from hal.config import build_parser as build_config_parser
from hal.config import parse_cli, part
from hal.config.sections import MeasureSection

__all__ = ["run", "build_parser", "RecorderCostConfig"]


def _responder(robot: Any, obs_ep: str, cmd_ep: str, stop: threading.Event) -> None:
    from hal.client import HalClient
    from hal.protocol import CommandMessage

    target = np.asarray(robot.to_hardware(robot.default_angles), np.float32)
    kp = np.asarray(robot.to_hardware(robot.kp), np.float32)
    kd = np.asarray(robot.to_hardware(robot.kd), np.float32)
    raw = np.zeros(robot.n_joints, np.float32)
    with HalClient(obs_ep, cmd_ep, robot.n_joints, robot.n_feet) as client:
        while not stop.is_set():
            obs = client.poll(20.0)
            if obs is None:
                continue
            seq = obs.seq
            client.release_current()
            client.send_command(CommandMessage(obs_seq=seq, target_rad=target, kp=kp, kd=kd,
                                               raw_action=raw))


def sim_server_with_responder(robot: Any, scene: str,
                              name: str) -> tuple[Any, threading.Thread, threading.Event]:
    """A 100 Hz simulated HAL server off real time and a (not yet started) client thread that
    answers every observation with the stand pose; set the event to stop the thread."""
    from hal.server.base import HalServer, HalServerConfig
    from hal.sim import MujocoWorldConfig, make_sim_devices

    sim = make_sim_devices(robot, MujocoWorldConfig(scene=scene, settle_s=0.2))
    tag = f"{os.getpid()}_{time.monotonic_ns()}"
    obs_ep, cmd_ep = f"inproc://bench_{name}_obs_{tag}", f"inproc://bench_{name}_cmd_{tag}"
    server = HalServer(robot, sim,
                       HalServerConfig(control_rate_hz=100.0, latency_budget_ms=4.0,
                                       observation_endpoint=obs_ep, command_endpoint=cmd_ep,
                                       realtime=False, gc_control=False))
    stop = threading.Event()
    responder = threading.Thread(target=_responder, args=(robot, obs_ep, cmd_ep, stop),
                                 daemon=True)
    return server, responder, stop


def _client_records(robot: Any) -> tuple[Any, Any]:
    from compute.parkour.inference_client import ActorStepRecord, DepthStepRecord
    from compute.parkour.layout import ObservationLayout

    rng = np.random.default_rng(0)
    cam = robot.depth_camera
    lay = ObservationLayout.from_robot(robot)
    actor = ActorStepRecord(7, rng.normal(size=lay.obs_dim).astype(np.float32),
                            rng.normal(size=lay.latent_yaw_dim).astype(np.float32),
                            rng.normal(size=robot.n_joints).astype(np.float32), 3,
                            (1000, 2000, 300, 400), True, 1)
    depth = DepthStepRecord(3, 123, rng.normal(size=(cam.policy_height, cam.policy_width))
                            .astype(np.float32), rng.normal(size=lay.proprio_dim)
                            .astype(np.float32),
                            rng.normal(size=lay.latent_yaw_dim).astype(np.float32),
                            5000)
    return actor, depth


def run(quick: bool = True) -> dict[str, Any]:
    from hal.recorder import (
        FileRecorder, FileRecorderConfig, FlightRecorder, RecorderTap, layouts_for,
    )
    from hal.recorder.appliance import run_info
    from hal.robot import load_robot

    blocks, block = (10, 100) if quick else (100, 100)
    n_client = 2000 if quick else 5000
    robot = load_robot("go2")
    server, responder, stop = sim_server_with_responder(robot, "flat", "rec")
    tmp = Path(tempfile.mkdtemp(prefix="krabby_recorder_bench_"))
    # The appliance runs with the inference client's 0.5 ms GIL switch interval.
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    times: dict[str, list[int]] = {"off": [], "on": []}
    try:
        server.start()
        responder.start()
        layouts = layouts_for(robot, frame_shape=server.devices.camera.frame_shape)
        info = run_info(server, None, "client_start", "record")
        # Pools big enough that the client-side loop below (far faster than 50 Hz) measures the
        # accepting path, not the cheaper dropping one.
        config = FileRecorderConfig(queue_size=3 * n_client, actor_rows=n_client + 16,
                                    depth_rows=n_client // 5 + 16)
        recorder = FileRecorder(tmp / "bench.mcap", layouts, info, config, server.safety)
        flight = FlightRecorder(layouts, info, 100.0, 10.0)
        tap = RecorderTap(layouts, [recorder, flight])
        recorder.start()
        server.safety.request_start(run_policy=False)
        server.pacer.start()
        for _ in range(100):  # warm-up: connect, stand up
            server.tick()
        for b in range(2 * blocks):
            on = b % 2 == 1
            if on:
                tap.attach(server)
            samples = times["on" if on else "off"]
            for _ in range(block):
                start = time.perf_counter_ns()
                server.tick()
                samples.append(time.perf_counter_ns() - start)
            if on:
                tap.detach()
        actor_record, depth_record = _client_records(robot)
        client_tap = RecorderTap(layouts, [recorder, flight])
        for _ in range(n_client):
            client_tap.on_actor(actor_record)
        for _ in range(n_client // 5):
            client_tap.on_depth(depth_record)
        recorder.close()
        flight.close()
        encode = _encode_costs(tmp / "bench.mcap", layouts)
        dropped = recorder.stats()["dropped_total"]
    finally:
        sys.setswitchinterval(switch_interval)
        stop.set()
        responder.join(5.0)
        server.close()
        for path in tmp.iterdir():
            path.unlink()
        tmp.rmdir()
    off, on = stats_us(times["off"]), stats_us(times["on"])
    return {
        "robot": robot.name, "control_rate_hz": 100.0, "ticks_per_condition": blocks * block,
        "cases": {
            "tick_off": off, "tick_on": on,
            "added_p50_us": round(on["p50"] - off["p50"], 2),
            "added_p99_us": round(on["p99"] - off["p99"], 2),
            "listener": stats_us(tap.costs["tick"].values_ns()),
            "listener_cpu": stats_us(tap.cpu_costs["tick"].values_ns()),
            "actor_listener": stats_us(client_tap.costs["actor"].values_ns()),
            "depth_listener": stats_us(client_tap.costs["depth"].values_ns()),
            "encode": encode,
        },
        "dropped": dropped,
        "machine": machine_description(),
    }


def _encode_costs(path: Path, layouts: Any) -> dict[str, dict[str, float]]:
    from hal.recorder import read_log
    from hal.live.messages import raw_image_32f

    log = read_log(path)
    out = {}
    for kind, table in (("tick", log.ticks), ("actor", log.actor), ("depth", log.depth)):
        samples = []
        for row in range(min(len(table), 500)):
            start = time.perf_counter_ns()
            table.layout.encode(table.floats[row], table.ints[row])
            for name in table.layout.images:
                raw_image_32f(0, name, table.field(name)[row]).encode()
            samples.append(time.perf_counter_ns() - start)
        out[kind] = stats_us(samples)
    return out




@dataclass(frozen=True)
class RecorderCostConfig:
    """``python -m benchmarks.recorder_cost``'s run configuration."""

    measure: MeasureSection = part(MeasureSection, only=("full",))


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(RecorderCostConfig, prog="python -m benchmarks.recorder_cost",
                               description=__doc__.split("\n\n")[0])


def main(argv: list[str] | None = None) -> int:
    config = parse_cli(RecorderCostConfig, argv, build_parser())
    print(json.dumps(run(quick=not config.measure.full), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

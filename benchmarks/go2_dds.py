"""The Go2's wire in the loop: DDS round trip and deadline misses, against the sim backend, one run.

``python -m benchmarks.go2_dds --out bench-results [--seconds 20]`` measures, on ``lo`` with a
DDS domain of its own (90..93):

- ``round_trip`` — LowState → LowCmd over DDS: a robot side in this process publishes
  ``LowState_`` at 500 Hz (raw SDK, its tick stamped at the write) and reads ``rt/lowcmd``; a
  client process runs krabby's Go2 backend (``UnitreeGo2``: CRC check and unpacking, LowCmd
  packing and CRC) and answers every new state with a command carrying the state's tick. Time:
  LowState written → its LowCmd taken by the robot side. Baseline, same run: the sim backend's
  state → command (``SimJointDriver.read`` → ``write`` on a stepped ``MujocoWorld``).
- ``loop`` — the appliance at 100 and 500 Hz (synthetic teacher, ONNX Runtime): deadline misses,
  cycles, obs_to_command and loop jitter, through ``krabby-hal-server-jetson --motors go2`` against
  ``krabby-go2-sim`` (two processes over DDS), and through ``krabby-hal-server-sim`` (one process).

Writes ``go2_dds.json`` into ``--out`` and prints a table. Needs Unitree's SDK (README, the Go2
backend), cyclonedds, MuJoCo, torch and onnx (to export the synthetic teacher).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import machine_description, ratio, stats_us, write_json

from hal.config import build_parser as build_config_parser
from hal.config import parse_cli, part
from hal.config.sections import FilesSection, MeasureSection

__all__ = ["run", "main", "build_parser", "Go2DdsBenchConfig"]

ROOT = Path(__file__).resolve().parents[1]
_ECHO_CLIENT = """
import sys, time
import numpy as np
from hal.devices.base import JointCommand
from hal.backends.unitree_go2 import UnitreeGo2Config, make_go2_devices
from hal.robot import load_robot
domain, seconds = int(sys.argv[1]), float(sys.argv[2])
joints, _, _ = make_go2_devices(UnitreeGo2Config.from_robot(
    load_robot("go2"), network_interface="lo", domain_id=domain, release_sport_mode=False))
joints.connect()
session, zeros, last = joints.session, np.zeros(12), -1
end = time.monotonic() + seconds
while time.monotonic() < end:
    state, _ = session.latest()
    if state.tick != last:
        last = state.tick
        target = np.full(12, float(state.tick))  # the tick rides back in q (exact in float32)
        joints.write(JointCommand(target, zeros, zeros))
    else:
        time.sleep(0.0001)
joints.close()
print("ECHO done", session.stats(), flush=True)
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def round_trip_dds(domain_id: int, seconds: float) -> dict[str, Any]:
    """LowState → LowCmd through krabby's backend in another process (see the module doc)."""
    from unitree_sdk2py.core.channel import ChannelPublisher, ChannelSubscriber
    from unitree_sdk2py.idl.default import unitree_go_msg_dds__LowState_
    from unitree_sdk2py.idl.unitree_go.msg.dds_ import LowCmd_, LowState_
    from unitree_sdk2py.utils.crc import CRC

    from hal.unitree_dds import initialize_dds

    initialize_dds(domain_id, "lo")
    crc, lock = CRC(), threading.Lock()
    sent_ns: dict[int, int] = {}
    samples: list[int] = []

    def on_cmd(msg: Any) -> None:
        taken = time.monotonic_ns()
        tick = int(round(msg.motor_cmd[0].q))
        with lock:
            start = sent_ns.pop(tick, None)
        if start is not None:
            samples.append(taken - start)

    publisher = ChannelPublisher("rt/lowstate", LowState_)
    publisher.Init()
    subscriber = ChannelSubscriber("rt/lowcmd", LowCmd_)
    subscriber.Init(on_cmd, 0)
    client = subprocess.Popen([sys.executable, "-c", _ECHO_CLIENT, str(domain_id), str(seconds + 3.0)],
                              env=_env(), cwd=str(ROOT), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    msg = unitree_go_msg_dds__LowState_()
    msg.imu_state.quaternion = [1.0, 0.0, 0.0, 0.0]
    period_ns, tick = 2_000_000, 0
    next_ns = time.monotonic_ns()
    warmup_end = next_ns + 3_000_000_000  # the client connects (entry check) meanwhile
    end_ns = warmup_end + int(seconds * 1e9)
    while time.monotonic_ns() < end_ns:
        tick += 1
        msg.tick = tick
        msg.crc = crc.Crc(msg)
        with lock:
            if time.monotonic_ns() >= warmup_end:
                sent_ns[tick] = time.monotonic_ns()
        publisher.Write(msg)
        next_ns += period_ns
        time.sleep(max(0.0, (next_ns - time.monotonic_ns()) / 1e9))
    time.sleep(0.2)
    try:
        client.wait(timeout=30)
    except subprocess.TimeoutExpired:
        client.kill()
    answered = len(samples)
    asked = answered + len(sent_ns)
    return {**stats_us(samples), "states_timed": asked, "answered": answered,
            "client_output": (client.stdout.read() if client.stdout else "")[-400:]}


def round_trip_sim(seconds: float) -> dict[str, Any]:
    """The sim backend's state → command: read the joints, write a command, step the world."""
    from hal.devices.base import JointCommand
    from hal.robot import load_robot
    from hal.sim import MujocoWorldConfig, make_sim_devices

    robot = load_robot("go2")
    sim = make_sim_devices(robot, MujocoWorldConfig(camera_fps=0.0, settle_s=0.2))
    kp, kd = np.asarray(robot.to_hardware(robot.kp)), np.asarray(robot.to_hardware(robot.kd))
    samples = []
    with sim:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            sim.world.advance(0.002)
            start = time.monotonic_ns()
            state = sim.joints.read()
            sim.joints.write(JointCommand(state.position_rad, kp, kd))
            samples.append(time.monotonic_ns() - start)
    return stats_us(samples)


def _teacher(directory: Path) -> Path:
    from compute.parkour.synthetic import main as make_checkpoint
    from export.cli import main as export_main

    directory.mkdir(parents=True, exist_ok=True)
    checkpoint = directory / "teacher.pt"
    if make_checkpoint(["--output", str(checkpoint), "--robot", "go2", "--seed", "3", "--teacher"]) != 0:
        raise RuntimeError("could not write the synthetic teacher")
    if export_main(["--checkpoint", str(checkpoint), "--robot", "go2", "--parity-samples", "4"]) != 0:
        raise RuntimeError("krabby-export failed on the synthetic teacher")
    return directory / "teacher.onnx"


def _loop_figures(path: Path) -> dict[str, Any]:
    """The loop's figures from a run report file (read through the typed report)."""
    from hal.server.run_report import load_run_report

    report = load_run_report(path)
    return {"cycles": report.cycles, "deadline_misses": report.deadline_misses,
            "miss_fraction": round(report.deadline_misses / max(1, report.cycles), 4),
            "commands_applied": report.commands_applied,
            "obs_to_command": report.latency_us["obs_to_command"].to_dict(),
            "loop_jitter": report.loop_jitter_us.to_dict()}


def loop_dds(engine: Path, rate_hz: float, seconds: float, domain_id: int, out: Path) -> dict[str, Any]:
    """``krabby-hal-server-jetson --motors go2`` against ``krabby-go2-sim``, both on ``lo``."""
    sim_report, report = out / f"go2sim-{int(rate_hz)}.json", out / f"jetson-{int(rate_hz)}.json"
    sim = subprocess.Popen([sys.executable, "-m", "hal.sim.go2_dds", "--network", "lo", "--domain-id",
                            str(domain_id), "--duration", str(seconds + 40), "--report", str(sim_report)],
                           env=_env(), cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(4.0)
        subprocess.run([sys.executable, "-m", "hal.server.jetson.main", "--engine", str(engine),
                        "--motors", "go2", "--network", "lo", "--domain-id", str(domain_id),
                        "--camera", "none", "--device", "cpu", "--control-rate", str(rate_hz),
                        "--duration", str(seconds), "--report", str(report), "--insecure",
                        "--estop-bind", f"tcp://127.0.0.1:{16000 + domain_id}"],
                       env=_env(), cwd=str(out), capture_output=True, timeout=seconds + 120, check=True)
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    figures = _loop_figures(report)
    wire = json.loads(sim_report.read_text())["wire"]["counters"]
    figures["go2_sim"] = {k: wire.get(k, 0) for k in ("lowstate_published", "lowcmd_accepted",
                                                      "physics_overruns")}
    return figures


def loop_sim(engine: Path, rate_hz: float, seconds: float, out: Path) -> dict[str, Any]:
    """``krabby-hal-server-sim`` with the same policy (no camera, no height scan) in real time."""
    report = out / f"sim-{int(rate_hz)}.json"
    subprocess.run([sys.executable, "-m", "hal.server.sim.main", "--engine", str(engine),
                    "--no-height-scan", "--camera-fps", "0", "--control-rate", str(rate_hz),
                    "--duration", str(seconds), "--report", str(report), "--insecure",
                    "--estop-bind", f"tcp://127.0.0.1:{16100 + int(rate_hz) % 1000}"],
                   env=_env(), cwd=str(out), capture_output=True, timeout=seconds + 120, check=True)
    return _loop_figures(report)


def run(out: Path, seconds: float = 20.0) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    engine = _teacher(out / "policy")
    results: dict[str, Any] = {"machine": machine_description(), "seconds": seconds}
    dds = round_trip_dds(90, seconds)
    sim = round_trip_sim(seconds)
    results["round_trip"] = {"dds": dds, "sim_backend": sim, "dds_over_sim_p50": ratio(dds, sim)}
    results["loop"] = {}
    for rate, domain in ((100.0, 91), (500.0, 92)):
        results["loop"][f"{int(rate)}hz"] = {"dds": loop_dds(engine, rate, seconds, domain, out),
                                             "sim_backend": loop_sim(engine, rate, seconds, out)}
    write_json(out / "go2_dds.json", results)
    return results


def table(results: dict[str, Any]) -> str:
    rt = results["round_trip"]
    lines = ["round trip LowState -> LowCmd (µs)      p50       p99",
             f"  over DDS (krabby's Go2 backend)  {rt['dds']['p50']:>9.1f} {rt['dds']['p99']:>9.1f}"
             f"   ({rt['dds']['answered']}/{rt['dds']['states_timed']} answered)",
             f"  sim backend (read -> write)      {rt['sim_backend']['p50']:>9.1f} "
             f"{rt['sim_backend']['p99']:>9.1f}",
             "loop                      cycles  misses  obs_to_command p50/p99 µs  jitter p99 µs"]
    for rate, block in results["loop"].items():
        for side, f in block.items():
            lines.append(f"  {rate:>6} {side:<12} {f['cycles']:>8} {f['deadline_misses']:>7}  "
                         f"{f['obs_to_command']['p50']:>10.1f} / {f['obs_to_command']['p99']:<10.1f}"
                         f"  {f['loop_jitter']['p99']:>10.1f}")
    return "\n".join(lines)




@dataclass(frozen=True)
class Go2DdsBenchConfig:
    """``python -m benchmarks.go2_dds``'s run configuration."""

    files: FilesSection = part(FilesSection, only=("out",), defaults={"out": "bench-results"})
    measure: MeasureSection = part(MeasureSection, only=("seconds",), defaults={"seconds": 20.0})


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(Go2DdsBenchConfig, prog="python -m benchmarks.go2_dds",
                               description=__doc__.split("\n\n")[0])


def main(argv: list[str] | None = None) -> int:
    config = parse_cli(Go2DdsBenchConfig, argv, build_parser())
    results = run(Path(config.files.out), config.measure.seconds)
    print(table(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The live view against the whole appliance: deadline misses and observation→command latency of
``krabby-hal-server-sim`` in real time with ``--live`` and a client subscribed to every channel,
against the same run without ``--live``, alternating, in one session.

Each round runs the appliance (demo policy exported by ``--demo``, 50 Hz, the given command
deadline) twice, as a child process: once plain, once with ``--live 127.0.0.1:0`` and a
Foxglove-protocol client (:class:`~hal.live.client.FoxgloveClient`, in this process) subscribed to
everything for the whole run. Reported per condition: deadline misses per run, cycles, and the
runs' obs_to_command p50/p99 (µs).

Run: ``python -m benchmarks.live_appliance [--rounds 4] [--seconds 8] [--budget-ms 10]``.
Prints JSON.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, ClassVar

from benchmarks.common import machine_description

from hal.config import build_parser as build_config_parser
from hal.config import parse_cli, part, setting
from hal.config.sections import MeasureSection

__all__ = ["run", "build_parser", "LiveApplianceConfig"]

_ROOT = Path(__file__).resolve().parents[1]
_PORT = re.compile(r"live view: ws://127\.0\.0\.1:(\d+)")


def _listen(port: int, seconds: float, out: dict) -> None:
    from hal.live.client import FoxgloveClient

    with FoxgloveClient(port) as client:
        client.subscribe(sorted(client.channels))
        client.pump(seconds)
        out["messages"] = sum(len(v) for v in client.received.values())


def _one(engine: Path, workdir: Path, live: bool, seconds: float, budget_ms: float) -> dict:
    report = workdir / f"report_{'live' if live else 'off'}.json"
    command = [sys.executable, "-m", "hal.server.sim.main", "--engine", str(engine),
               "--duration", str(seconds), "--control-rate", "50",
               "--latency-budget-ms", str(budget_ms), "--estop-bind", "none",
               "--flight-recorder-s", "0", "--no-keyboard", "--report", str(report)]
    if live:
        command += ["--live", "127.0.0.1:0"]
    env = dict(os.environ, PYTHONPATH=str(_ROOT))
    out: dict[str, Any] = {}
    listener = None
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=env, cwd=str(workdir)) as child:
        for line in child.stdout:
            match = _PORT.search(line)
            if match and listener is None:
                listener = threading.Thread(target=_listen, daemon=True,
                                            args=(int(match.group(1)), seconds + 5, out))
                listener.start()
        child.wait(120)
    if listener is not None:
        listener.join(30)
    from hal.server.run_report import load_run_report

    data = load_run_report(report)
    latency = data.latency_us["obs_to_command"]
    return {"deadline_misses": data.deadline_misses, "cycles": data.cycles,
            "obs_to_command_p50": latency.p50, "obs_to_command_p99": latency.p99,
            "client_messages": out.get("messages", 0)}


def run(rounds: int = 4, seconds: float = 8.0, budget_ms: float = 10.0) -> dict[str, Any]:
    from hal.server.sim.main import prepare_demo

    with tempfile.TemporaryDirectory(prefix="krabby_live_bench_") as tmp:
        workdir = Path(tmp)
        with contextlib.redirect_stdout(sys.stderr):  # the export's report: not the JSON
            engine = prepare_demo(workdir / "demo", "go2")
        runs: dict[str, list[dict]] = {"off": [], "live_client": []}
        for i in range(rounds):
            order = (False, True) if i % 2 == 0 else (True, False)
            for live in order:
                runs["live_client" if live else "off"].append(
                    _one(engine, workdir, live, seconds, budget_ms))
    summary = {name: {"deadline_misses": [r["deadline_misses"] for r in rs],
                      "cycles": [r["cycles"] for r in rs],
                      "obs_to_command_p50_us": [r["obs_to_command_p50"] for r in rs],
                      "obs_to_command_p99_us": [r["obs_to_command_p99"] for r in rs],
                      "client_messages": [r["client_messages"] for r in rs]}
               for name, rs in runs.items()}
    return {"control_rate_hz": 50.0, "seconds_per_run": seconds, "latency_budget_ms": budget_ms,
            "rounds": rounds, "cases": summary, "machine": machine_description()}



@dataclass(frozen=True)
class LiveApplianceSection:
    """The tick's budget."""

    section: ClassVar[str] = "live"

    budget_ms: float = setting(10.0, metavar="MS", help="the control tick's budget, ms")


@dataclass(frozen=True)
class LiveApplianceConfig:
    """``python -m benchmarks.live_appliance``'s run configuration."""

    measure: MeasureSection = part(MeasureSection, only=("rounds", "seconds"),
                                   defaults={"seconds": 8.0})
    live: LiveApplianceSection = part(LiveApplianceSection)


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(LiveApplianceConfig, prog="python -m benchmarks.live_appliance",
                               description=__doc__.split("\n\n")[0])


def main(argv: list[str] | None = None) -> int:
    config = parse_cli(LiveApplianceConfig, argv, build_parser())
    print(json.dumps(run(config.measure.rounds, config.measure.seconds, config.live.budget_ms), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Run ``krabby-hal-server-sim --live 0`` as a child process and find the port it bound."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

from tests.child_process import ChildProcess

__all__ = ["start_live_sim", "live_port", "read_report", "ROOT"]

ROOT = Path(__file__).resolve().parents[2]
_PORT = re.compile(r"live view: ws://127\.0\.0\.1:(\d+)")


def start_live_sim(policy: Path, report: Path, duration_s: float, *extra: str,
                   rate_hz: float = 50.0, budget_ms: float = 16.0) -> ChildProcess:
    """The simulator appliance in real time with ``--live 127.0.0.1:0`` (loopback, any port).

    The command deadline is ``budget_ms`` after each observation (16 ms of the 20 ms period at
    50 Hz): headroom for the two cores this suite shares with other work, still a deadline that
    a tick lengthened by the live view would miss."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "hal.server.sim.main", "--engine", str(policy),
               "--duration", str(duration_s), "--control-rate", str(rate_hz),
               "--latency-budget-ms", str(budget_ms),
               "--live", "127.0.0.1:0", "--estop-bind", "none", "--flight-recorder-s", "0",
               "--no-keyboard", "--report", str(report), *extra]
    return ChildProcess(command, timeout_s=120.0, env=env, cwd=str(report.parent),
                        preexec_fn=_robot_priority)


def _robot_priority() -> None:
    """The appliance ahead of the machine's other work, as on the robot (where it runs alone):
    the deadline checks then measure the live view, not whoever else shares the two cores.
    Without the permission to raise it (not root), the default priority."""
    try:
        os.nice(-10)
    except OSError:
        pass


def live_port(child: ChildProcess, timeout_s: float = 60.0) -> int:
    """The port from the child's ``live view: ws://...`` log line."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        match = _PORT.search(child.output)
        if match:
            return int(match.group(1))
        if not child.running():
            break
        time.sleep(0.05)
    raise AssertionError(f"no live view port in the output:\n{child.output[-3000:]}")


def read_report(path: Path) -> dict:
    return json.loads(path.read_text())

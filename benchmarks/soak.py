"""Soak: the sim appliance for many minutes, its resident memory sampled from outside.

Runs ``krabby-hal-server-sim`` (in-process client, the exported synthetic policy, real time) in a
child process and reads the child's ``VmRSS`` from ``/proc`` every ``--sample-s`` seconds. The
figure is the least-squares slope of RSS over time after a warm-up (MB per hour), with the RSS
range after warm-up; a leak of the kind the garbage-collector control used to have (only
generation-0 collections, ~12.6 MB/h) shows as a slope of that size.

    python -m benchmarks.soak --minutes 12 --out bench-results/soak.json
    python -m benchmarks.soak --minutes 12 --record /tmp/soak.mcap    # with the recorder on

Not part of ``python -m benchmarks`` (it takes as long as you ask).
"""

from __future__ import annotations

import argparse
from typing import ClassVar
from dataclasses import dataclass
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hal.config import build_parser as build_config_parser
from hal.config import parse_cli, part, setting
from hal.config.sections import FilesSection
from hal.server.settings import LoopSection, RecorderSection

__all__ = ["main", "rss_kib", "slope_mb_per_h", "build_parser", "SoakConfig"]


def rss_kib(pid: int) -> int | None:
    """Resident set size of a process (KiB), or None once it has gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def slope_mb_per_h(times_s: list[float], rss: list[int]) -> float:
    """Least-squares slope of RSS (KiB) against time (s), in MB (10^6 bytes) per hour."""
    n = len(times_s)
    if n < 2:
        return float("nan")
    mean_t, mean_r = sum(times_s) / n, sum(rss) / n
    var = sum((t - mean_t) ** 2 for t in times_s)
    cov = sum((t - mean_t) * (r - mean_r) for t, r in zip(times_s, rss))
    return cov / var * 1024 * 3600 / 1e6 if var else float("nan")



@dataclass(frozen=True)
class SoakSection:
    """How long the soak runs and how it samples."""

    section: ClassVar[str] = "soak"

    minutes: float = setting(12.0, metavar="MIN", help="minutes to run")
    warmup_s: float = setting(60.0, metavar="S", help="seconds left out of the RSS slope")
    sample_s: float = setting(5.0, metavar="S", help="seconds between RSS samples")


@dataclass(frozen=True)
class SoakConfig:
    """``python -m benchmarks.soak``'s run configuration."""

    soak: SoakSection = part(SoakSection)
    # krabby-hal-server-sim's own settings, passed on to it
    loop: LoopSection = part(LoopSection, only=("control_rate_hz", "gc_control"))
    recorder: RecorderSection = part(RecorderSection, only=("record",))
    files: FilesSection = part(FilesSection, only=("out",))


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(SoakConfig, prog="python -m benchmarks.soak",
                               description=__doc__)


def main(argv: list[str] | None = None) -> int:
    config = parse_cli(SoakConfig, argv, build_parser())
    duration_s = config.soak.minutes * 60
    with tempfile.TemporaryDirectory() as scratch:
        command = [sys.executable, "-m", "hal.server.sim.main", "--demo", "--demo-dir",
                   str(Path(scratch) / "demo"), "--duration", str(duration_s), "--control_rate",
                   str(config.loop.control_rate_hz), "--estop_bind", "none", "--flight-recorder-dir",
                   str(Path(scratch) / "flight"), "--log-level", "WARNING",
                   "--report", str(Path(scratch) / "report.json")]
        if config.recorder.record:
            command += ["--record", config.recorder.record]
        if not config.loop.gc_control:
            command.append("--no-gc-control")
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        samples: list[tuple[float, int]] = []
        start = None
        while child.poll() is None:
            kib = rss_kib(child.pid)
            now = time.monotonic()
            if kib is not None and start is None and Path(scratch, "demo", "model.onnx").is_file():
                start = now  # export done: the appliance is starting
            if kib is not None and start is not None:
                samples.append((now - start, kib))
            time.sleep(config.soak.sample_s)
        stderr = child.stderr.read().decode(errors="replace") if child.stderr else ""
        report = json.loads((Path(scratch) / "report.json").read_text()) if (
            Path(scratch) / "report.json").is_file() else {}
    if child.returncode != 0:
        print(f"error: the appliance exited {child.returncode}:\n{stderr[-2000:]}", file=sys.stderr)
        return 1
    steady = [(t, r) for t, r in samples if t >= config.soak.warmup_s]
    times, rss = [t for t, _ in steady], [r for _, r in steady]
    half = len(times) // 2
    # One-off growth (a flight dump's compressor, a ring's pages first touched) shows as a step;
    # a leak as a slope. Both are reported.
    steps = [(round(t1), round((r1 - r0) / 1024, 1)) for (t0, r0), (t1, r1)
             in zip(steady, steady[1:]) if r1 - r0 > 1024]
    result = {
        "minutes": config.soak.minutes, "control_rate_hz": config.loop.control_rate_hz,
        "record": bool(config.recorder.record),
        "gc_control": config.loop.gc_control, "warmup_s": config.soak.warmup_s,
        "rss_slope_mb_per_h": slope_mb_per_h(times, rss),
        "rss_slope_second_half_mb_per_h": slope_mb_per_h(times[half:], rss[half:]),
        "rss_steps_over_1mb": steps,
        "safety_transitions": [f"{e.get('from')}->{e.get('to')} ({e.get('reason')})"
                               for e in report.get("safety", {}).get("events", [])],
        "flight_dumps": len(report.get("recorder", {}).get("flight", {}).get("dumps", [])),
        "rss_after_warmup_mb": {"first": rss[0] / 1024 if rss else None,
                                "last": rss[-1] / 1024 if rss else None,
                                "min": min(rss) / 1024 if rss else None,
                                "max": max(rss) / 1024 if rss else None},
        "cycles": report.get("cycles"), "deadline_misses": report.get("deadline_misses"),
        "samples": samples,
    }
    print(f"soak {config.soak.minutes:g} min at {config.loop.control_rate_hz:g} Hz"
          f"{' recording' if config.recorder.record else ''}: RSS slope after {config.soak.warmup_s:g} s warm-up "
          f"{result['rss_slope_mb_per_h']:+.2f} MB/h (second half "
          f"{result['rss_slope_second_half_mb_per_h']:+.2f} MB/h; steps > 1 MB at (s, MB) "
          f"{steps}; {result['flight_dumps']} flight dumps); RSS {result['rss_after_warmup_mb']['first']:.1f}"
          f" -> {result['rss_after_warmup_mb']['last']:.1f} MB (min "
          f"{result['rss_after_warmup_mb']['min']:.1f}, max {result['rss_after_warmup_mb']['max']:.1f});"
          f" {result['cycles']} cycles, {result['deadline_misses']} deadline misses")
    if config.files.out:
        Path(config.files.out).parent.mkdir(parents=True, exist_ok=True)
        Path(config.files.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main", "rss_kib", "slope_mb_per_h"]


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=12.0)
    parser.add_argument("--warmup-s", dest="warmup_s", type=float, default=60.0)
    parser.add_argument("--sample-s", dest="sample_s", type=float, default=5.0)
    parser.add_argument("--control_rate", type=float, default=100.0)
    parser.add_argument("--record", help="also record every tick to this .mcap")
    parser.add_argument("--no-gc-control", dest="gc_control", action="store_false")
    parser.add_argument("--out", help="write samples and figures (JSON) here")
    args = parser.parse_args(argv)
    duration_s = args.minutes * 60
    with tempfile.TemporaryDirectory() as scratch:
        command = [sys.executable, "-m", "hal.server.sim.main", "--demo", "--demo-dir",
                   str(Path(scratch) / "demo"), "--duration", str(duration_s), "--control_rate",
                   str(args.control_rate), "--estop_bind", "none", "--flight-recorder-dir",
                   str(Path(scratch) / "flight"), "--log-level", "WARNING",
                   "--report", str(Path(scratch) / "report.json")]
        if args.record:
            command += ["--record", args.record]
        if not args.gc_control:
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
            time.sleep(args.sample_s)
        stderr = child.stderr.read().decode(errors="replace") if child.stderr else ""
        report = json.loads((Path(scratch) / "report.json").read_text()) if (
            Path(scratch) / "report.json").is_file() else {}
    if child.returncode != 0:
        print(f"error: the appliance exited {child.returncode}:\n{stderr[-2000:]}", file=sys.stderr)
        return 1
    steady = [(t, r) for t, r in samples if t >= args.warmup_s]
    times, rss = [t for t, _ in steady], [r for _, r in steady]
    half = len(times) // 2
    # One-off growth (a flight dump's compressor, a ring's pages first touched) shows as a step;
    # a leak as a slope. Both are reported.
    steps = [(round(t1), round((r1 - r0) / 1024, 1)) for (t0, r0), (t1, r1)
             in zip(steady, steady[1:]) if r1 - r0 > 1024]
    result = {
        "minutes": args.minutes, "control_rate_hz": args.control_rate, "record": bool(args.record),
        "gc_control": args.gc_control, "warmup_s": args.warmup_s,
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
    print(f"soak {args.minutes:g} min at {args.control_rate:g} Hz"
          f"{' recording' if args.record else ''}: RSS slope after {args.warmup_s:g} s warm-up "
          f"{result['rss_slope_mb_per_h']:+.2f} MB/h (second half "
          f"{result['rss_slope_second_half_mb_per_h']:+.2f} MB/h; steps > 1 MB at (s, MB) "
          f"{steps}; {result['flight_dumps']} flight dumps); RSS {result['rss_after_warmup_mb']['first']:.1f}"
          f" -> {result['rss_after_warmup_mb']['last']:.1f} MB (min "
          f"{result['rss_after_warmup_mb']['min']:.1f}, max {result['rss_after_warmup_mb']['max']:.1f});"
          f" {result['cycles']} cycles, {result['deadline_misses']} deadline misses")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

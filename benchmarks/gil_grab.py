"""What a camera grab that holds the GIL does to the control loop (ZED SDK < 5.1's pyzed).

pyzed releases the GIL in ``grab``/``retrieve_measure`` from ZED SDK 5.0 and in
``get_sensors_data`` from 5.1; before, each call holds the interpreter for its whole duration.
Without a camera, a grab is stood in for by a native call of the same duration that either
releases the GIL (``ctypes.CDLL``: like pyzed >= 5.1) or holds it (``ctypes.PyDLL``: like pyzed
4.x), on its own thread at the camera rate, while a 100 Hz loop paced by absolute deadlines
measures how late each tick wakes. All three cases run in the same process, one after another.

    python -m benchmarks.gil_grab [--grab-ms 15] [--camera-hz 30] [--seconds 5] [--out results.json]
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import sys
from pathlib import Path
import threading
import time
from typing import Any

from benchmarks.common import machine_description, ratio, stats_us, write_json

__all__ = ["measure", "main"]


def _loop_lateness(rate_hz: float, seconds: float) -> list[int]:
    period = int(1e9 / rate_hz)
    deadline = time.perf_counter_ns() + period
    end = deadline + int(seconds * 1e9)
    late = []
    while deadline < end:
        remaining = deadline - time.perf_counter_ns()
        if remaining > 1_000_000:
            time.sleep((remaining - 1_000_000) / 1e9)
        while time.perf_counter_ns() < deadline:
            pass
        late.append(time.perf_counter_ns() - deadline)
        deadline += period
    return late


def measure(grab: str, grab_ms: float, camera_hz: float, rate_hz: float, seconds: float) -> dict[str, Any]:
    """Tick lateness of a ``rate_hz`` loop while a grab thread runs (``grab``: none/release/hold)."""
    libc_name = ctypes.util.find_library("c")
    lib = {"release": ctypes.CDLL, "hold": ctypes.PyDLL}.get(grab)
    usleep = lib(libc_name).usleep if lib is not None else None
    stop = threading.Event()

    def camera() -> None:
        period_s = 1.0 / camera_hz
        while not stop.is_set():
            start = time.perf_counter()
            usleep(int(grab_ms * 1000))
            stop.wait(max(0.0, period_s - (time.perf_counter() - start)))

    thread = threading.Thread(target=camera, daemon=True) if usleep is not None else None
    if thread is not None:
        thread.start()
    try:
        late = _loop_lateness(rate_hz, seconds)
    finally:
        stop.set()
        if thread is not None:
            thread.join()
    return stats_us(late)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gil_grab", description=__doc__.split("\n\n")[0])
    parser.add_argument("--grab-ms", type=float, default=15.0, help="duration of one grab (default 15 ms)")
    parser.add_argument("--camera-hz", type=float, default=30.0)
    parser.add_argument("--rate-hz", type=float, default=100.0, help="control loop rate")
    parser.add_argument("--seconds", type=float, default=5.0, help="per case")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    results = {case: measure(case, args.grab_ms, args.camera_hz, args.rate_hz, args.seconds)
               for case in ("none", "release", "hold")}
    report = {"machine": machine_description(), "settings": vars(args), "tick_lateness_us": results,
              "p99_ratio_hold_vs_release": ratio(results["hold"], results["release"], "p99")}
    for case, s in results.items():
        print(f"grab {case:8s} tick lateness p50 {s['p50']:9.1f} us  p99 {s['p99']:9.1f} us  max {s['max']:9.1f} us")
    print(f"p99 hold / release: {report['p99_ratio_hold_vs_release']}")
    if args.out:
        write_json(Path(args.out), report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

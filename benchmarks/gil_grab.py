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
from dataclasses import dataclass
import ctypes
import ctypes.util
import sys
from pathlib import Path
import threading
import time
from typing import Any, ClassVar

from benchmarks.common import machine_description, ratio, stats_us, write_json

from hal.config import build_parser as build_config_parser
from hal.config import config_to_dict, parse_cli, part, setting
from hal.config.sections import FilesSection, MeasureSection

__all__ = ["measure", "main", "build_parser", "GilGrabConfig"]


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



@dataclass(frozen=True)
class GilGrabSection:
    """The simulated camera grab that holds (or releases) the GIL."""

    section: ClassVar[str] = "gil"

    grab_ms: float = setting(15.0, metavar="MS", help="duration of one grab, ms")
    camera_hz: float = setting(30.0, metavar="HZ", help="grabs per second")


@dataclass(frozen=True)
class GilGrabConfig:
    """``python -m benchmarks.gil_grab``'s run configuration."""

    gil: GilGrabSection = part(GilGrabSection)
    measure: MeasureSection = part(MeasureSection, only=("rate_hz", "seconds"),
                                   defaults={"seconds": 5.0})
    files: FilesSection = part(FilesSection, only=("out",))


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(GilGrabConfig, prog="python -m benchmarks.gil_grab",
                               description=__doc__.split("\n\n")[0])


def main(argv: list[str] | None = None) -> int:
    config = parse_cli(GilGrabConfig, argv, build_parser())
    gil, timing = config.gil, config.measure
    results = {case: measure(case, gil.grab_ms, gil.camera_hz, timing.rate_hz, timing.seconds)
               for case in ("none", "release", "hold")}
    report = {"machine": machine_description(), "settings": config_to_dict(config), "tick_lateness_us": results,
              "p99_ratio_hold_vs_release": ratio(results["hold"], results["release"], "p99")}
    for case, s in results.items():
        print(f"grab {case:8s} tick lateness p50 {s['p50']:9.1f} us  p99 {s['p99']:9.1f} us  max {s['max']:9.1f} us")
    print(f"p99 hold / release: {report['p99_ratio_hold_vs_release']}")
    if config.files.out:
        write_json(Path(config.files.out), report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

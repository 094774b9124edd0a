"""Time depth preprocessing (real frame → 58×87 policy input) on one CPU core.

Run as its own process so the BLAS thread limit below takes effect before numpy loads::

    python -m benchmarks.bench_depth_preprocess [--repeats 300]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import ClassVar  # noqa: E402

import numpy as np  # noqa: E402

from compute.parkour.depth import INVALID_MODES, DepthPreprocessor, DepthPreprocessorConfig  # noqa: E402
from hal.config import build_parser as build_config_parser  # noqa: E402
from hal.config import parse_cli, part, setting  # noqa: E402
from hal.devices.base import CameraIntrinsics  # noqa: E402
from hal.robot import load_robot  # noqa: E402

__all__ = ["main", "build_parser", "DepthPreprocessBenchConfig"]


def _zed_like(width: int, height: int, hfov_deg: float = 110.0) -> CameraIntrinsics:
    fx = width / (2.0 * math.tan(math.radians(hfov_deg) / 2.0))
    return CameraIntrinsics(width, height, fx, fx, (width - 1) / 2.0, (height - 1) / 2.0)



@dataclass(frozen=True)
class DepthPreprocessBenchSection:
    """How many frames."""

    section: ClassVar[str] = "bench"

    repeats: int = setting(300, metavar="N", help="frames preprocessed per case")


@dataclass(frozen=True)
class DepthPreprocessBenchConfig:
    """``python -m benchmarks.bench_depth_preprocess``'s run configuration."""

    bench: DepthPreprocessBenchSection = part(DepthPreprocessBenchSection)


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(DepthPreprocessBenchConfig, prog="python -m benchmarks.bench_depth_preprocess",
                               description=__doc__.splitlines()[0])


def main(argv: list[str] | None = None) -> int:
    config = parse_cli(DepthPreprocessBenchConfig, argv, build_parser())
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    camera = load_robot("go2").depth_camera
    rng = np.random.default_rng(0)
    print(f"{'frame':>10} {'mode':>13} {'median ms':>10} {'p99 ms':>8}")
    for width, height in ((640, 360), (1280, 720)):
        frame = rng.uniform(0.3, 3.0, (height, width)).astype(np.float32)
        frame[rng.random((height, width)) < 0.05] = np.nan
        for mode in INVALID_MODES:
            pre = DepthPreprocessor(_zed_like(width, height), camera,
                                    DepthPreprocessorConfig(invalid_mode=mode))
            out = np.empty((1, 58, 87), dtype=np.float32)
            for _ in range(10):
                pre.process_into(frame, out)
            samples = []
            for _ in range(config.bench.repeats):
                start = time.perf_counter_ns()
                pre.process_into(frame, out)
                samples.append((time.perf_counter_ns() - start) / 1e6)
            samples.sort()
            p99 = samples[min(len(samples) - 1, int(0.99 * len(samples)))]
            print(f"{width}x{height:<5} {mode:>13} {statistics.median(samples):10.3f} {p99:8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

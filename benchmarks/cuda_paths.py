"""The CUDA memory layer for real: pinned vs pageable copies, CUDA graph replay vs plain enqueue.

Needs a CUDA GPU and cuda-python (or pycuda; graphs need cuda-python). One short run (about a
minute), everything in the same process so the ratios compare like with like:

- ``copy``: host-to-device then device-to-host of one buffer, synchronised, from pinned memory
  (:meth:`CudaDevice.pinned`) and from ordinary (pageable) numpy memory, for the observation
  (753 floats), the policy's depth frame (58x87) and a ZED HD720 depth frame (1280x720);
- ``graph``: the four copies of one inference step (obs, latent in; actions, hidden out) queued
  one by one vs replayed as one captured CUDA graph, synchronised each time.

    python -m benchmarks.cuda_paths [--reps 2000] [--out cuda_paths.json]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import sys
from pathlib import Path
import time
from typing import Any, ClassVar

import numpy as np

from benchmarks.common import machine_description, ratio, stats_us, write_json

from hal.config import build_parser as build_config_parser
from hal.config import parse_cli, part, setting
from hal.config.sections import FilesSection

__all__ = ["measure_copies", "measure_graph", "main", "build_parser", "CudaPathsConfig"]

SIZES = {"obs_753": (753,), "depth_58x87": (58, 87), "zed_hd720": (720, 1280)}


def _time(fn, reps: int) -> list[int]:
    for _ in range(min(50, reps)):  # warm-up
        fn()
    samples = []
    for _ in range(reps):
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
    return samples


def measure_copies(device: Any, reps: int) -> dict[str, Any]:
    from engines.cuda_memory import HostSpan

    out: dict[str, Any] = {}
    with device.stream() as stream:
        for name, shape in SIZES.items():
            pinned = device.pinned(shape, np.float32)
            pageable = np.zeros(shape, np.float32)
            buf = device.device_buffer(pinned.nbytes)
            results = {}
            for kind, host in (("pinned", pinned), ("pageable", pageable)):
                span = HostSpan.of(host)

                def round_trip(span=span) -> None:
                    stream.copy_to_device(buf.ptr, span)
                    stream.copy_to_host(span, buf.ptr)
                    stream.synchronize()

                results[kind] = stats_us(_time(round_trip, reps))
            results["pageable_over_pinned_p50"] = ratio(results["pageable"], results["pinned"])
            out[name] = results
            buf.close()
    return out


def measure_graph(device: Any, reps: int) -> dict[str, Any]:
    from engines.cuda_memory import CudaGraph, HostSpan

    if not device.backend.supports_graphs:
        return {"skipped": f"the {device.backend.name} backend cannot capture graphs"}
    tensors = {"obs": (1, 753), "latent": (1, 32), "actions": (1, 12), "hidden": (1, 1, 512)}
    hosts = {n: device.pinned(s, np.float32) for n, s in tensors.items()}
    bufs = {n: device.device_buffer(h.nbytes) for n, h in hosts.items()}
    spans = {n: HostSpan.of(h) for n, h in hosts.items()}
    with device.stream() as stream:
        def enqueue() -> None:
            stream.copy_to_device(bufs["obs"].ptr, spans["obs"])
            stream.copy_to_device(bufs["latent"].ptr, spans["latent"])
            stream.copy_to_host(spans["actions"], bufs["actions"].ptr)
            stream.copy_to_host(spans["hidden"], bufs["hidden"].ptr)

        def plain() -> None:
            enqueue()
            stream.synchronize()

        graph = CudaGraph.capture(stream, enqueue)

        def replay() -> None:
            graph.launch()
            stream.synchronize()

        results = {"plain": stats_us(_time(plain, reps)), "graph": stats_us(_time(replay, reps))}
        graph.close()
    for b in bufs.values():
        b.close()
    results["plain_over_graph_p50"] = ratio(results["plain"], results["graph"])
    return results



@dataclass(frozen=True)
class CudaPathsSection:
    """Which CUDA binding, how many repetitions."""

    section: ClassVar[str] = "cuda"

    reps: int = setting(2000, metavar="N", help="repetitions per case")
    backend: str | None = setting(None, help="cuda-python or pycuda (default: the first that "
                                             "works)")


@dataclass(frozen=True)
class CudaPathsConfig:
    """``python -m benchmarks.cuda_paths``'s run configuration."""

    cuda: CudaPathsSection = part(CudaPathsSection)
    files: FilesSection = part(FilesSection, only=("out",))


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(CudaPathsConfig, prog="python -m benchmarks.cuda_paths",
                               description=__doc__.split("\n\n")[0])


def main(argv: list[str] | None = None) -> int:
    config = parse_cli(CudaPathsConfig, argv, build_parser())
    from engines.cuda_memory import CudaDevice, CudaUnavailableError

    try:
        device = CudaDevice(0, config.cuda.backend)
    except CudaUnavailableError as exc:
        print(f"no CUDA device: {exc}", file=sys.stderr)
        return 1
    report = {"machine": machine_description(), "device": device.info.name,
              "compute_capability": device.info.compute_capability_text, "sms": device.info.multiprocessor_count,
              "backend": device.backend.name, "reps": config.cuda.reps,
              "copy": measure_copies(device, config.cuda.reps), "graph": measure_graph(device, config.cuda.reps)}
    for name, r in report["copy"].items():
        print(f"copy {name:12s} pinned p50 {r['pinned']['p50']:8.1f} us p99 {r['pinned']['p99']:8.1f}  "
              f"pageable p50 {r['pageable']['p50']:8.1f} us p99 {r['pageable']['p99']:8.1f}  "
              f"ratio {r['pageable_over_pinned_p50']}")
    g = report["graph"]
    if "skipped" not in g:
        print(f"step copies: plain p50 {g['plain']['p50']:.1f} us p99 {g['plain']['p99']:.1f}  graph p50 "
              f"{g['graph']['p50']:.1f} us p99 {g['graph']['p99']:.1f}  ratio {g['plain_over_graph_p50']}")
    if config.files.out:
        write_json(Path(config.files.out), report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

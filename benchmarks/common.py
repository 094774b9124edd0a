"""Shared benchmark helpers: statistics, machine description, JSON output."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hal.config import setting

__all__ = ["stats_us", "ratio", "machine_description", "write_json", "PhysicsStepSection"]


def stats_us(samples_ns) -> dict[str, float]:
    """p50/p99/max/mean (µs) and the count of a sample of nanosecond durations."""
    us = np.asarray(samples_ns, dtype=np.float64) / 1e3
    if us.size == 0:
        return {"count": 0, "p50": float("nan"), "p99": float("nan"), "max": float("nan"),
                "mean": float("nan")}
    p50, p99 = np.percentile(us, [50, 99])
    return {"count": int(us.size), "p50": round(float(p50), 2), "p99": round(float(p99), 2),
            "max": round(float(us.max()), 2), "mean": round(float(us.mean()), 2)}


def ratio(numerator: dict, denominator: dict, key: str = "p50") -> float:
    """``numerator[key] / denominator[key]``, rounded (both measured in the same run)."""
    return round(float(numerator[key]) / float(denominator[key]), 3)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except Exception:  # noqa: BLE001 - an unimportable module just has no version here
        return None
    return getattr(mod, "__version__", "unknown")


def _gpu() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def machine_description() -> dict[str, Any]:
    """CPU, cores, OS, Python and library versions, GPU if any."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "libraries": {m: _version(m) for m in ("numpy", "zmq", "onnxruntime", "torch", "mujoco",
                                              "tensorrt")},
        "gpu": _gpu(),
    }


def write_json(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return path


@dataclass(frozen=True)
class PhysicsStepSection:
    """The simulator's physics step, for the benchmarks that sweep it."""

    section: ClassVar[str] = "physics"

    physics_dt_s: float = setting(0.005, flag="--physics-dt", metavar="S",
                                  help="MuJoCo physics step, s")

"""TensorRT engine builds (TensorRT 10 API); every decision that needs no TensorRT is separate.

Precision by TensorRT version (docs/architecture.md#platform-notes):

- TensorRT 10.0 – 10.11: a weakly typed network; fp16 is ``BuilderFlag.FP16`` on the fp32 graph.
- TensorRT >= 10.12 (weak typing deprecated; removed in 11, where ``BuilderFlag.FP16`` is gone):
  a strongly typed network, which takes its precisions from the graph. For fp16 the ONNX graph is
  first rewritten in float16 with float32 inputs/outputs
  (:func:`export.onnx_export.convert_to_fp16`).
- fp32 on request: TF32 is cleared so fp32 stays fp32 on Ampere (Orin) and newer.

Every build sets the builder optimisation level and the workspace limit and reuses a timing cache
kept beside the engines (it is specific to the TensorRT version and GPU; a stale one is replaced).
:func:`build_engine` never writes the cache: it returns the updated cache, and the caller writes it
with :func:`write_timing_cache` only once the engines passed their checks, so a failed build or
parity check leaves the cache as it was (all-or-nothing, like the engines).
Only :func:`build_engine` and :func:`tensorrt_environment` touch TensorRT or CUDA.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hal.optional import available, require

__all__ = [
    "PRECISIONS",
    "STRONGLY_TYPED_FROM",
    "MIN_TENSORRT",
    "TensorRTBuildError",
    "TensorRTBuildOptions",
    "BuildStrategy",
    "TensorRTEnvironment",
    "BuildResult",
    "parse_version",
    "choose_build_strategy",
    "tensorrt_environment",
    "jetson_build_hint",
    "build_engine",
    "write_timing_cache",
]

log = logging.getLogger(__name__)

PRECISIONS = ("fp16", "fp32")
STRONGLY_TYPED_FROM = (10, 12)
MIN_TENSORRT = (10, 0)
TIMING_CACHE_NAME = "krabby.timing.cache"


class TensorRTBuildError(RuntimeError):
    """TensorRT could not parse the ONNX graph or build the engine."""


@dataclass(frozen=True)
class TensorRTBuildOptions:
    """How engines are built.

    Attributes:
        precision: ``"fp16"`` (default, the Jetson's fast path) or ``"fp32"``.
        optimization_level: builder optimisation level 0–5 (TensorRT's default is 3; higher
            searches more tactics and builds longer).
        workspace_mib: workspace memory pool limit (MiB) for tactics.
        timing_cache: the timing cache file (read if present, updated after the build).
    """

    precision: str = "fp16"
    optimization_level: int = 3
    workspace_mib: int = 1024
    timing_cache: Path | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r} is not one of {PRECISIONS}")
        if not 0 <= self.optimization_level <= 5:
            raise ValueError(f"optimization_level {self.optimization_level} is not in 0..5")
        if self.workspace_mib < 16:
            raise ValueError(f"workspace_mib {self.workspace_mib} is too small (>= 16)")

    @property
    def workspace_bytes(self) -> int:
        return self.workspace_mib << 20


@dataclass(frozen=True)
class BuildStrategy:
    """What a build does for one TensorRT version and precision (no TensorRT needed to decide)."""

    strongly_typed: bool
    fp16_flag: bool
    fp16_onnx: bool
    clear_tf32: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"strongly_typed": self.strongly_typed, "fp16_flag": self.fp16_flag,
                "fp16_onnx": self.fp16_onnx, "clear_tf32": self.clear_tf32, "reason": self.reason}


def parse_version(version: str) -> tuple[int, int, int]:
    """``"10.3.0.26"`` → (10, 3, 0). Raises ValueError for text that is not a version."""
    match = re.match(r"^\s*(\d+)\.(\d+)(?:\.(\d+))?", str(version))
    if not match:
        raise ValueError(f"not a TensorRT version: {version!r}")
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def choose_build_strategy(tensorrt_version: str, precision: str) -> BuildStrategy:
    """Weak typing + ``BuilderFlag.FP16`` before 10.12, strong typing (fp16 graph) from 10.12.

    Raises:
        ValueError: unknown precision, or a TensorRT older than 10.0.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    version = parse_version(tensorrt_version)
    if version[:2] < MIN_TENSORRT:
        raise ValueError(f"TensorRT {tensorrt_version} is too old: krabby needs TensorRT >= "
                         f"{MIN_TENSORRT[0]}.{MIN_TENSORRT[1]} (JetPack 6)")
    fp16 = precision == "fp16"
    if version[:2] >= STRONGLY_TYPED_FROM:
        return BuildStrategy(strongly_typed=True, fp16_flag=False, fp16_onnx=fp16,
                             clear_tf32=not fp16,
                             reason=f"TensorRT {tensorrt_version} >= 10.12: strongly typed network"
                                    + (" from a float16 graph" if fp16 else ""))
    return BuildStrategy(strongly_typed=False, fp16_flag=fp16, fp16_onnx=False, clear_tf32=not fp16,
                         reason=f"TensorRT {tensorrt_version} < 10.12: weakly typed network"
                                + (" with BuilderFlag.FP16" if fp16 else ", fp32 (TF32 off)"))


@dataclass(frozen=True)
class TensorRTEnvironment:
    """Whether engines can be built here, and on what."""

    usable: bool
    reason: str
    version: str | None = None
    device_name: str | None = None
    device: Any = None  # engines.cuda.base.DeviceInfo when usable

    def platform_record(self) -> dict[str, Any]:
        """What the manifest records about the build platform (see engines.tensorrt_engine)."""
        from engines.tensorrt_engine import platform_record

        return platform_record(self.version, self.device)


def tensorrt_environment() -> TensorRTEnvironment:
    """Probe for TensorRT and a CUDA GPU (imports nothing when TensorRT is absent)."""
    if not available("tensorrt"):
        return TensorRTEnvironment(False, "the tensorrt Python module is not installed")
    trt = require("tensorrt", "engine builds")
    from engines.cuda_memory import CudaDevice, CudaUnavailableError

    try:
        device = CudaDevice(0)
    except CudaUnavailableError as exc:
        return TensorRTEnvironment(False, f"TensorRT {trt.__version__} is installed but no CUDA "
                                          f"device is usable: {exc}", version=trt.__version__)
    except Exception as exc:  # noqa: BLE001 - a broken CUDA install is "no GPU" here
        return TensorRTEnvironment(False, f"CUDA failed to initialise: {exc}",
                                   version=trt.__version__)
    return TensorRTEnvironment(True, "ok", version=trt.__version__, device_name=device.info.name,
                               device=device.info)


def jetson_build_hint(checkpoint: Path, robot: str, precision: str, reason: str) -> str:
    """What to run on the robot to build the engines this machine could not."""
    stem = (checkpoint.name[: -len(checkpoint.suffix)] if checkpoint.suffix else checkpoint.name).replace(".", "_")
    return (f"TensorRT engines were not built here ({reason}). The ONNX files and the manifest are "
            f"written and verified. To build the engines on the Jetson (TensorRT comes with "
            f"JetPack; no torch needed), copy {stem}.onnx, {stem}.json (and {stem}.depth.onnx) there "
            f"and run:\n"
            f"    krabby-build-engine {stem}.onnx --precision {precision}\n"
            f"or, with torch and the checkpoint there:\n"
            f"    krabby-export --checkpoint {checkpoint.name} --robot {robot} "
            f"--precision {precision} --require-engine\n"
            f"An engine runs only on the TensorRT build and GPU that made it.")


def _parse_errors(parser: Any) -> str:
    return "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors)) or "no details"


@dataclass(frozen=True)
class BuildResult:
    """One engine build: its manifest record and the timing cache after it (None: no cache)."""

    record: dict[str, Any]
    timing_cache: bytes | None


def build_engine(onnx_path: Path, plan_path: Path, options: TensorRTBuildOptions,
                 strategy: BuildStrategy, cache_data: bytes | None = None) -> BuildResult:
    """Parse ``onnx_path`` and write a serialized engine to ``plan_path``.

    ``onnx_path`` must already be the graph the strategy calls for (the float16 rewrite for a
    strongly typed fp16 build). The timing cache starts from ``cache_data`` (the previous build's
    :attr:`BuildResult.timing_cache`) or else the file ``options.timing_cache``; the updated cache
    is returned, not written (see :func:`write_timing_cache`).

    Returns:
        The build record for the manifest (settings, seconds, timing cache name) and the cache.

    Raises:
        TensorRTBuildError: the graph does not parse or the build fails.
    """
    trt = require("tensorrt", "engine builds")
    from engines.tensorrt_engine import tensorrt_logger

    trt_logger = tensorrt_logger(trt)
    builder = trt.Builder(trt_logger)
    flags = 0
    if strategy.strongly_typed:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, trt_logger)
    if not parser.parse_from_file(str(onnx_path)):
        raise TensorRTBuildError(f"TensorRT {trt.__version__} could not parse {onnx_path.name}: "
                                 f"{_parse_errors(parser)}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_bytes)
    config.builder_optimization_level = options.optimization_level
    if strategy.fp16_flag:
        config.set_flag(trt.BuilderFlag.FP16)
    if strategy.clear_tf32 and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)

    cache_path = options.timing_cache
    if cache_data is None:
        cache_data = cache_path.read_bytes() if cache_path is not None and cache_path.is_file() else b""
    try:
        cache = config.create_timing_cache(cache_data)
        attached = cache is not None and config.set_timing_cache(cache, False)
    except Exception:  # noqa: BLE001 - a corrupt cache file must not stop the build
        attached = False
    if not attached:
        if cache_data:
            log.warning("timing cache %s does not fit TensorRT %s on this GPU (or is corrupt); "
                        "starting a new one", cache_path, trt.__version__)
        config.set_timing_cache(config.create_timing_cache(b""), False)

    start_ns = time.monotonic_ns()
    serialized = builder.build_serialized_network(network, config)
    seconds = (time.monotonic_ns() - start_ns) / 1e9
    if serialized is None:
        raise TensorRTBuildError(f"TensorRT {trt.__version__} failed to build an engine from "
                                 f"{onnx_path.name} (see the TensorRT log above)")
    plan_path.write_bytes(memoryview(serialized))
    new_cache = None
    if cache_path is not None:
        new_cache = bytes(memoryview(config.get_timing_cache().serialize()))
    record = {"precision": options.precision, "optimization_level": options.optimization_level,
              "workspace_mib": options.workspace_mib, "build_seconds": round(seconds, 3),
              "timing_cache": cache_path.name if cache_path is not None else None,
              **strategy.to_dict()}
    return BuildResult(record, new_cache)


def write_timing_cache(path: Path, data: bytes) -> None:
    """Replace the timing cache file atomically (a failure is logged: the engines are fine)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("could not update the timing cache %s: %s", path, exc)
    finally:
        tmp.unlink(missing_ok=True)

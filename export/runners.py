"""Runners for the parity check: named float32 inputs in, named outputs out, per backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from engines.base import Engine
from hal.optional import require

__all__ = ["torch_runner", "engine_runner", "open_backend"]

Runner = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def torch_runner(module: Any, tensors: Any) -> Runner:
    """The torch reference: ``module(*inputs)`` in the graph's input order, without gradients."""
    torch = require("torch", "the parity reference")
    input_names, output_names = tensors.input_names, tensors.output_names

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        args = [torch.from_numpy(np.ascontiguousarray(feeds[name])) for name in input_names]
        with torch.no_grad():
            result = module(*args)
        result = result if isinstance(result, tuple) else (result,)
        return dict(zip(output_names, (r.numpy() for r in result)))

    return run


def engine_runner(engine: Engine) -> Runner:
    """A runtime engine (:class:`engines.base.Engine`): copies in, one step, copies out."""
    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return engine.infer(**feeds)

    return run


def open_backend(backend: str, path: Path) -> Any:
    """The runtime's own engine for a staged file: the same code path the robot will run.

    The TensorRT platform check is off here because the manifest does not exist yet; the plan
    was built a moment ago on this very GPU.
    """
    if backend == "onnxruntime":
        from engines.onnxruntime_engine import OnnxRuntimeEngine

        return OnnxRuntimeEngine(path)
    if backend == "tensorrt":
        from engines.tensorrt_engine import TensorRTConfig, TensorRTEngine

        return TensorRTEngine(path, TensorRTConfig(check_platform=False, use_cuda_graph=False))
    raise ValueError(f"backend {backend!r} is not one of ('onnxruntime', 'tensorrt')")

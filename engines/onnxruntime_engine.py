"""ONNX Runtime backend: a session with explicit threading and I/O bound to our own buffers.

Threads are set explicitly (one intra-op and one inter-op thread, sequential execution, no
spinning by default): on a Jetson the policy shares six cores with the control loop, the camera
and the depth thread, and ONNX Runtime's default (a pool the size of the machine, spinning) would
steal them. Inputs and outputs are bound once through an ``IOBinding`` onto the engine's
preallocated numpy buffers, so a step is one ``run_with_iobinding`` call that writes the outputs
into the same arrays every time and creates none.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import onnxruntime as ort

from engines.base import Engine, EngineError, TensorSpec, resolve_shape
from engines.cuda_memory import allocate_host

__all__ = ["OnnxRuntimeConfig", "OnnxRuntimeEngine", "onnx_type_to_numpy"]

log = logging.getLogger(__name__)

_GRAPH_OPTIMIZATION = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
_DEVICES = ("cpu", "cuda", "auto")

_ONNX_TYPES = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
    "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(int16)": "int16",
    "tensor(int32)": "int32", "tensor(int64)": "int64", "tensor(bool)": "bool",
}


def onnx_type_to_numpy(onnx_type: str) -> np.dtype:
    """numpy dtype of an ONNX Runtime type string such as ``"tensor(float)"``."""
    if onnx_type not in _ONNX_TYPES:
        raise EngineError(f"unsupported ONNX tensor type {onnx_type!r}; supported: "
                          f"{sorted(_ONNX_TYPES)}")
    return np.dtype(_ONNX_TYPES[onnx_type])


@dataclass(frozen=True)
class OnnxRuntimeConfig:
    """How an ONNX Runtime session is built.

    Attributes:
        device: ``"cpu"`` (default), ``"cuda"`` (needs onnxruntime-gpu; fails if absent) or
            ``"auto"`` (CUDA when its provider is present, else CPU).
        device_id: CUDA device ordinal for ``"cuda"``.
        intra_op_threads: Threads inside one operator (1: run in the calling thread).
        inter_op_threads: Threads across operators (only used by parallel execution; kept 1).
        graph_optimization: ``"disable"``, ``"basic"``, ``"extended"`` or ``"all"``.
        allow_spinning: Let pool threads spin between operators (burns cores; off by default).
    """

    device: str = "cpu"
    device_id: int = 0
    intra_op_threads: int = 1
    inter_op_threads: int = 1
    graph_optimization: str = "all"
    allow_spinning: bool = False

    def __post_init__(self) -> None:
        if self.device not in _DEVICES:
            raise ValueError(f"device {self.device!r} is not one of {_DEVICES}")
        if self.graph_optimization not in _GRAPH_OPTIMIZATION:
            raise ValueError(f"graph_optimization {self.graph_optimization!r} is not one of "
                             f"{sorted(_GRAPH_OPTIMIZATION)}")
        for key in ("intra_op_threads", "inter_op_threads"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")

    def providers(self) -> list[Any]:
        """The execution providers to ask for, in priority order."""
        have = ort.get_available_providers()
        cuda_present = "CUDAExecutionProvider" in have
        if self.device == "cuda" and not cuda_present:
            raise EngineError("device='cuda' but this onnxruntime has no CUDAExecutionProvider "
                              f"(available: {have}); install onnxruntime-gpu or use device='cpu'")
        if self.device == "cuda" or (self.device == "auto" and cuda_present):
            return [("CUDAExecutionProvider", {"device_id": self.device_id}),
                    "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]

    def session_options(self) -> ort.SessionOptions:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_threads
        options.inter_op_num_threads = self.inter_op_threads
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = _GRAPH_OPTIMIZATION[self.graph_optimization]
        options.add_session_config_entry("session.intra_op.allow_spinning",
                                         "1" if self.allow_spinning else "0")
        options.add_session_config_entry("session.inter_op.allow_spinning",
                                         "1" if self.allow_spinning else "0")
        return options


class OnnxRuntimeEngine(Engine):
    """An ONNX model run by ONNX Runtime on preallocated buffers.

    Args:
        path: The ``.onnx`` file.
        config: Session settings; default CPU, one thread, full graph optimisation.
        shapes: Concrete shapes for inputs/outputs whose model shape has dynamic dimensions
            (a dynamic dimension without one becomes 1).
        strict_shapes: Refuse a shape that disagrees with a static dimension (else the model's
            dimension is kept and the caller compares; see :func:`engines.base.resolve_shape`).

    Raises:
        EngineError: the file does not load, or asks for something this runtime lacks.
        EngineMismatchError: a requested shape does not fit the model.
    """

    backend = "onnxruntime"

    def __init__(self, path: str | Path, config: OnnxRuntimeConfig | None = None,
                 shapes: Mapping[str, Sequence[int]] | None = None,
                 strict_shapes: bool = True) -> None:
        path = Path(path)
        super().__init__(str(path))
        self.config = config or OnnxRuntimeConfig()
        shapes = dict(shapes or {})
        if not path.is_file():
            raise EngineError(f"ONNX model {path} does not exist")
        try:
            self._session = ort.InferenceSession(str(path), sess_options=self.config.session_options(),
                                                 providers=self.config.providers())
        except EngineError:
            raise
        except Exception as exc:  # noqa: BLE001 - ORT raises several unrelated types
            raise EngineError(f"ONNX Runtime could not load {path}: {exc}") from None
        self.model_input_specs = tuple(self._spec(a) for a in self._session.get_inputs())
        self.model_output_specs = tuple(self._spec(a) for a in self._session.get_outputs())
        known = {s.name for s in (*self.model_input_specs, *self.model_output_specs)}
        unknown = sorted(set(shapes) - known)
        if unknown and strict_shapes:
            raise EngineError(f"shapes given for unknown tensors {unknown}; the model has "
                              f"{sorted(known)}")

        def concrete(specs: Sequence[TensorSpec]) -> list[TensorSpec]:
            return [TensorSpec(s.name, resolve_shape(s, shapes.get(s.name), strict_shapes), s.dtype)
                    for s in specs]

        inputs = self._allocate(concrete(self.model_input_specs), allocate_host)
        outputs = self._allocate(concrete(self.model_output_specs), allocate_host)
        self._set_buffers(inputs, outputs)

        self._binding = self._session.io_binding()
        for name, array in inputs.items():
            # Backed directly by the numpy buffer: writes into engine.inputs[name] are seen.
            self._binding.bind_cpu_input(name, array)
        # OrtValues over our output arrays: ORT writes results into them, never a new array.
        self._output_values = {name: ort.OrtValue.ortvalue_from_numpy(array)
                               for name, array in outputs.items()}
        for name, value in self._output_values.items():
            self._binding.bind_ortvalue_output(name, value)
        self.providers = tuple(self._session.get_providers())
        log.info("opened %s with %s (intra_op=%d, inter_op=%d)", path.name, self.providers[0],
                 self.config.intra_op_threads, self.config.inter_op_threads)

    @staticmethod
    def _spec(arg: Any) -> TensorSpec:
        dims = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in arg.shape)
        return TensorSpec(arg.name, dims, onnx_type_to_numpy(arg.type))

    def _run(self) -> None:
        # No RunOptions: onnxruntime 1.32 looks up a graph-capture key in any RunOptions given and
        # raises and catches a RuntimeError when it is unset (~30 µs per step, holding the GIL);
        # with None it skips the lookup.
        self._session.run_with_iobinding(self._binding)

    def _details(self) -> dict[str, Any]:
        return {"providers": list(self.providers),
                "intra_op_threads": self.config.intra_op_threads,
                "inter_op_threads": self.config.inter_op_threads,
                "graph_optimization": self.config.graph_optimization}

    def _close(self) -> None:
        self._binding.clear_binding_inputs()
        self._binding.clear_binding_outputs()
        self._output_values.clear()
        del self._session

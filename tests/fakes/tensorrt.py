"""A fake ``tensorrt`` (TensorRT 10 Python API) whose engines really compute, with ONNX Runtime.

It stays a fake because TensorRT needs an NVIDIA GPU and its libraries, which CI does not have.

Signatures follow the TensorRT 10 Python bindings (pybind11; ``tensorrt/__init__.pyi`` and the
API reference): ``Logger(min_severity=Logger.WARNING)`` with ``min_severity`` and severities
``INTERNAL_ERROR=0 … VERBOSE=4``; ``Runtime(logger)`` with ``deserialize_cuda_engine(serialized_engine)
-> ICudaEngine | None``; ``ICudaEngine.num_io_tensors``, ``get_tensor_name(index)``,
``get_tensor_mode(name)``, ``get_tensor_shape(name)``, ``get_tensor_dtype(name)``,
``create_execution_context()``; ``IExecutionContext.set_input_shape(name, shape) -> bool``,
``get_tensor_shape(name)``, ``set_tensor_address(name, memory: int) -> bool``,
``execute_async_v3(stream_handle: int) -> bool``; ``Builder(logger)`` with
``create_network(flags=0)``, ``create_builder_config()``, ``build_serialized_network(network,
config) -> IHostMemory | None``; ``OnnxParser(network, logger)`` with ``parse_from_file(model: str)
-> bool``, ``num_errors``, ``get_error(index)``; ``IBuilderConfig.set_memory_pool_limit(pool,
pool_size)``, ``builder_optimization_level``, ``set_flag``/``clear_flag``,
``create_timing_cache(serialized_timing_cache) -> ITimingCache``, ``set_timing_cache(cache,
ignore_mismatch) -> bool``, ``get_timing_cache()``; ``ITimingCache.serialize() -> IHostMemory``.

A "plan" is JSON naming the TensorRT build that made it and carrying the ONNX graph it was built
from (hex); deserialising it in another build fails as TensorRT does (returns None and logs).
``execute_async_v3`` reads the bound input addresses, runs the graph with ONNX Runtime and writes
the output addresses, launched on the stream through the fake CUDA (so graph capture records it).
Each tensor's ``get_tensor_dtype`` is the graph's own element type (``tensor(float16)`` -> ``HALF``
...), as TensorRT reports an fp16-I/O engine; the buffers are read and written in that type.
``DataType`` values are TensorRT 10's (``FLOAT=0, HALF=1, INT8=2, INT32=3, BOOL=4, UINT8=5, FP8=6,
BF16=7, INT64=8, INT4=9``).
"""

from __future__ import annotations

import ctypes
import enum
import json
import types
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

__all__ = ["TrtScript", "make_tensorrt"]


@dataclass
class TrtScript:
    version: str = "10.3.0.30"
    fail_build: bool = False
    fail_parse: bool = False
    builds: list = field(default_factory=list)  # (flags, fp16 flag, onnx path) per build
    loggers_seen: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


# ONNX Runtime's element type of a graph input/output -> TensorRT DataType member / numpy dtype.
_ONNX_TO_TRT = {"tensor(float)": "FLOAT", "tensor(float16)": "HALF", "tensor(int8)": "INT8",
                "tensor(int32)": "INT32", "tensor(bool)": "BOOL", "tensor(uint8)": "UINT8",
                "tensor(int64)": "INT64"}
_ONNX_TO_NUMPY = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int8)": "int8",
                  "tensor(int32)": "int32", "tensor(bool)": "bool", "tensor(uint8)": "uint8",
                  "tensor(int64)": "int64"}


def _view(address: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buf = (ctypes.c_ubyte * nbytes).from_address(int(address))
    return np.frombuffer(buf, dtype=dtype).reshape(shape)


def make_tensorrt(script: TrtScript, launch: Callable[[int, Callable[[], None]], None]) -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = script.version

    class Severity(enum.IntEnum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    class Logger:
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = tuple(Severity)

        def __init__(self, min_severity=Severity.WARNING):
            self.min_severity = min_severity

        def log(self, severity, msg):
            if severity <= self.min_severity:
                script.warnings.append(msg)

    def see_logger(logger: Any) -> None:
        if not isinstance(logger, Logger):
            raise TypeError("incompatible function arguments: logger must be a tensorrt.ILogger")
        if script.loggers_seen and logger is not script.loggers_seen[0]:
            # What TensorRT prints when a second logger is handed to a builder or runtime.
            logger.log(Severity.WARNING, "The logger passed into createInferRuntime differs from one "
                                         "already provided for an existing builder, runtime, or refitter.")
        script.loggers_seen.append(logger)

    class DataType(enum.Enum):
        FLOAT = 0
        HALF = 1
        INT8 = 2
        INT32 = 3
        BOOL = 4
        UINT8 = 5
        FP8 = 6
        BF16 = 7
        INT64 = 8
        INT4 = 9

    class TensorIOMode(enum.Enum):
        NONE = 0
        INPUT = 1
        OUTPUT = 2

    class MemoryPoolType(enum.Enum):
        WORKSPACE = 0

    class BuilderFlag(enum.IntEnum):
        FP16 = 0
        TF32 = 7

    class NetworkDefinitionCreationFlag(enum.IntEnum):
        EXPLICIT_BATCH = 0
        STRONGLY_TYPED = 1

    class IHostMemory(bytes):
        pass

    class ITimingCache:
        def __init__(self, entries: int) -> None:
            self.entries = entries

        def serialize(self):
            return IHostMemory(f"fake-timing-cache|{script.version}|{self.entries}".encode())

    class INetworkDefinition:
        def __init__(self, flags: int) -> None:
            self.flags = flags
            self.onnx: bytes | None = None

    class OnnxParser:
        def __init__(self, network, logger):
            see_logger(logger)
            self.network = network
            self.num_errors = 0

        def parse_from_file(self, model: str) -> bool:
            if not isinstance(model, str):
                raise TypeError("parse_from_file(model: str)")
            if script.fail_parse:
                self.num_errors = 1
                return False
            with open(model, "rb") as f:
                self.network.onnx = f.read()
            return True

        def get_error(self, index: int):
            return "In node 0 (importModel): INVALID_GRAPH: fake parse failure"

    class IBuilderConfig:
        def __init__(self) -> None:
            self.flags: set = set()
            self.builder_optimization_level = 3
            self.pools: dict = {}
            self.cache: ITimingCache | None = None

        def set_memory_pool_limit(self, pool, pool_size: int) -> None:
            self.pools[pool] = pool_size

        def set_flag(self, flag) -> None:
            self.flags.add(flag)

        def clear_flag(self, flag) -> None:
            self.flags.discard(flag)

        def get_flag(self, flag) -> bool:
            return flag in self.flags

        def create_timing_cache(self, serialized_timing_cache) -> ITimingCache:
            data = bytes(serialized_timing_cache)
            if not data:
                return ITimingCache(0)
            parts = data.decode(errors="replace").split("|")
            if parts[0] != "fake-timing-cache":
                raise RuntimeError("Error Code 1: Serialization (corrupt timing cache)")
            cache = ITimingCache(int(parts[2]))
            cache.version = parts[1]
            return cache

        def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
            if getattr(cache, "version", script.version) != script.version and not ignore_mismatch:
                return False
            self.cache = cache
            return True

        def get_timing_cache(self) -> ITimingCache:
            return self.cache

    class Builder:
        def __init__(self, logger):
            see_logger(logger)

        def create_network(self, flags: int = 0) -> INetworkDefinition:
            return INetworkDefinition(int(flags))

        def create_builder_config(self) -> IBuilderConfig:
            return IBuilderConfig()

        def build_serialized_network(self, network, config):
            if script.fail_build or network.onnx is None:
                return None
            strongly = bool(network.flags & (1 << int(NetworkDefinitionCreationFlag.STRONGLY_TYPED)))
            script.builds.append({"strongly_typed": strongly, "fp16_flag": BuilderFlag.FP16 in config.flags})
            if config.cache is not None:
                config.cache.entries += 1
            return IHostMemory(json.dumps({"fake_tensorrt": script.version, "onnx": network.onnx.hex(),
                                           "fp16": BuilderFlag.FP16 in config.flags}).encode())

    class IExecutionContext:
        def __init__(self, engine) -> None:
            self.engine = engine
            self.addresses: dict[str, int] = {}

        def set_input_shape(self, name: str, shape) -> bool:
            return tuple(shape) == self.engine.shapes[name]

        def get_tensor_shape(self, name: str):
            return self.engine.shapes[name]

        def set_tensor_address(self, name: str, memory: int) -> bool:
            if not isinstance(memory, int):
                raise TypeError("set_tensor_address(name: str, memory: int)")
            self.addresses[name] = memory
            return True

        def execute_async_v3(self, stream_handle: int) -> bool:
            if not isinstance(stream_handle, int):  # pybind11 takes an int, not a cudaStream_t
                raise TypeError("execute_async_v3(stream_handle: int)")
            engine = self.engine

            def kernel() -> None:
                feeds = {n: _view(self.addresses[n], engine.shapes[n], engine.numpy_dtypes[n]).copy()
                         for n in engine.inputs}
                for name, value in zip(engine.outputs, engine.session.run(engine.outputs, feeds)):
                    _view(self.addresses[name], engine.shapes[name], engine.numpy_dtypes[name])[...] = value

            launch(stream_handle, kernel)
            return True

    class ICudaEngine:
        def __init__(self, onnx_bytes: bytes) -> None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            self.session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
            self.inputs = [i.name for i in self.session.get_inputs()]
            self.outputs = [o.name for o in self.session.get_outputs()]
            tensors = [*self.session.get_inputs(), *self.session.get_outputs()]
            self.shapes = {v.name: tuple(v.shape) for v in tensors}
            self.dtypes = {v.name: getattr(DataType, _ONNX_TO_TRT[v.type]) for v in tensors}
            self.numpy_dtypes = {v.name: np.dtype(_ONNX_TO_NUMPY[v.type]) for v in tensors}
            self.num_io_tensors = len(self.inputs) + len(self.outputs)

        def get_tensor_name(self, index: int) -> str:
            return [*self.inputs, *self.outputs][index]

        def get_tensor_mode(self, name: str):
            return TensorIOMode.INPUT if name in self.inputs else TensorIOMode.OUTPUT

        def get_tensor_shape(self, name: str):
            return self.shapes[name]

        def get_tensor_dtype(self, name: str):
            return self.dtypes[name]

        def create_execution_context(self):
            return IExecutionContext(self)

    class Runtime:
        def __init__(self, logger):
            see_logger(logger)
            self.logger = logger

        def deserialize_cuda_engine(self, serialized_engine):
            data = json.loads(bytes(serialized_engine))
            if data.get("fake_tensorrt") != script.version:
                self.logger.log(Severity.ERROR, "The engine plan file is not compatible with this version "
                                                "of TensorRT")
                return None
            return ICudaEngine(bytes.fromhex(data["onnx"]))

    for name, value in list(locals().items()):
        if isinstance(value, type):
            setattr(trt, name, value)
    return trt

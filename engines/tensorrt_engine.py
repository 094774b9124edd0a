"""TensorRT backend (TensorRT 10 name-based tensor API): one context, fixed buffers, one stream.

Built once, before the loop:

- the plan's TensorRT version (all four parts: a plan from 10.3.0.26 does not load in 10.3.0.30)
  and GPU (compute capability and SM count, since the name "Orin" covers every Orin module) are
  checked against the running ones *before* deserialising (an engine runs only where it was built;
  docs/architecture.md#platform-notes);
- one ``trt.Logger`` per process (:func:`tensorrt_logger`), shared with the builder: TensorRT
  keeps the first logger it is given and warns about any other;
- one execution context; one pinned host buffer per tensor (the arrays in ``engine.inputs`` /
  ``engine.outputs``) and one device buffer per tensor, each address given to the context once
  with ``set_tensor_address``;
- a non-blocking stream; a step queues the input copies, ``execute_async_v3`` and the output
  copies on it, then synchronises;
- optionally that whole sequence captured once into a CUDA graph after a warm-up enqueue, so a
  step is one graph launch; capture failure falls back to the plain enqueue (logged);
- on an integrated GPU that can map host memory (Jetson), the buffers are mapped pinned memory
  whose device address goes to TensorRT directly: no copies at all.

TensorRT and CUDA are imported through :mod:`hal.optional`; nothing here imports torch.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from engines.base import Engine, EngineError, EngineMismatchError, TensorSpec, resolve_shape
from engines.cuda_memory import (
    CudaDevice, CudaError, CudaGraph, DeviceBuffer, DeviceInfo, HostSpan, mapped_device_pointer,
    numpy_dtype_from_trt,
)
from hal.optional import require

__all__ = ["TensorRTConfig", "TensorRTEngine", "check_plan_platform", "same_tensorrt_version",
           "platform_record", "tensorrt_logger"]

log = logging.getLogger(__name__)

_ZERO_COPY = ("auto", "on", "off")
_LOG_LEVELS = ("verbose", "info", "warning", "error", "internal_error")
REBUILD_HINT = ("rebuild the engine on this device: krabby-build-engine model.onnx (needs only "
                "TensorRT and onnx, keeps the timing cache beside the engines)")


@dataclass(frozen=True)
class TensorRTConfig:
    """How a TensorRT plan is run.

    Attributes:
        device: CUDA device ordinal.
        cuda_backend: ``"cuda-python"``, ``"pycuda"`` or None (pick; see
            :func:`engines.cuda_memory.select_backend`).
        use_cuda_graph: Capture the step into a CUDA graph (needs cuda-python); falls back to a
            plain enqueue if capture fails.
        zero_copy: ``"auto"`` (mapped memory on an integrated GPU that can map host memory),
            ``"on"`` (require it) or ``"off"`` (always copy).
        check_platform: Refuse a plan whose manifest names another TensorRT version or GPU.
        log_level: TensorRT logger severity.
    """

    device: int = 0
    cuda_backend: str | None = None
    use_cuda_graph: bool = True
    zero_copy: str = "auto"
    check_platform: bool = True
    log_level: str = "warning"

    def __post_init__(self) -> None:
        if self.zero_copy not in _ZERO_COPY:
            raise ValueError(f"zero_copy {self.zero_copy!r} is not one of {_ZERO_COPY}")
        if self.log_level not in _LOG_LEVELS:
            raise ValueError(f"log_level {self.log_level!r} is not one of {_LOG_LEVELS}")


_PLATFORM_KEYS = ("version", "device_name", "compute_capability", "sm_count")


def same_tensorrt_version(a: str, b: str) -> bool:
    """True if two TensorRT versions are the same release, build number included.

    TensorRT refuses a plan serialised by another build ("10.3.0.26" vs "10.3.0.30"); a missing
    part counts as 0 (``"10.3"`` is ``"10.3.0.0"``).
    """
    def parts(text: str) -> list[str]:
        pieces = text.strip().split(".")
        return (pieces + ["0"] * 4)[:4]

    return parts(a) == parts(b)


def platform_record(tensorrt_version: str, device: DeviceInfo) -> dict[str, Any]:
    """The manifest's record of what built a plan: full TensorRT version and the GPU."""
    return {"version": tensorrt_version, "device_name": device.name,
            "compute_capability": device.compute_capability_text,
            "sm_count": device.multiprocessor_count}


def check_plan_platform(plan: str | Path, built: Mapping[str, Any] | None, running_version: str,
                        device: DeviceInfo) -> None:
    """Refuse a plan built by another TensorRT build or on another GPU.

    Args:
        plan: The plan file (for the message).
        built: The manifest's ``tensorrt`` record (``version``, ``device_name``,
            ``compute_capability``, ``sm_count``; see :func:`platform_record`), None if absent.
        running_version: ``tensorrt.__version__`` here.
        device: This GPU.

    Raises:
        EngineMismatchError: the manifest does not record the build platform fully, or records
            a different one; the message names both and says how to rebuild here.
    """
    name = Path(plan).name
    missing = [k for k in _PLATFORM_KEYS if not built or built.get(k) in (None, "")]
    if missing:
        raise EngineMismatchError(f"{name}: the manifest does not record the {', '.join(missing)} of the "
                                  f"TensorRT build and GPU that made it; {REBUILD_HINT}")
    problems = []
    if not same_tensorrt_version(str(built["version"]), running_version):
        problems.append(f"TensorRT {built['version']} built it, this machine runs "
                        f"TensorRT {running_version}")
    if str(built["device_name"]).strip() != device.name.strip():
        problems.append(f"it was built on {built['device_name']!r}, this GPU is {device.name!r}")
    if str(built["compute_capability"]) != device.compute_capability_text:
        problems.append(f"it was built for compute capability {built['compute_capability']}, this GPU "
                        f"has {device.compute_capability_text}")
    if int(built["sm_count"]) != device.multiprocessor_count:
        problems.append(f"it was built on a GPU with {built['sm_count']} SMs, this one has "
                        f"{device.multiprocessor_count} (another Orin module?)")
    if problems:
        raise EngineMismatchError(f"{name} cannot run here: {'; '.join(problems)}. {REBUILD_HINT}")


_logger_lock = threading.Lock()
_trt_logger: Any = None


def tensorrt_logger(trt: Any, level: str = "warning") -> Any:
    """The process's one ``trt.Logger``; a more verbose ``level`` lowers its threshold."""
    global _trt_logger
    severity = getattr(trt.Logger, level.upper())
    with _logger_lock:
        if _trt_logger is None or not isinstance(_trt_logger, trt.Logger):
            _trt_logger = trt.Logger(severity)
        elif int(severity) > int(_trt_logger.min_severity):  # VERBOSE (4) logs more than ERROR (1)
            _trt_logger.min_severity = severity
        return _trt_logger


class TensorRTEngine(Engine):
    """A serialized TensorRT engine (``.plan``) run on preallocated pinned buffers.

    Args:
        path: The ``.plan`` file.
        config: Device, CUDA backend, graph capture, zero-copy.
        shapes: Concrete shapes for tensors with dynamic dimensions (others become 1).
        built: The manifest's ``tensorrt`` record, checked before deserialising (when
            ``config.check_platform``); None skips the check with a warning.
        strict_shapes: Refuse a shape that disagrees with a static dimension (else keep the
            plan's and let the caller compare).

    Raises:
        hal.optional.MissingDependencyError: TensorRT or a CUDA binding is not installed.
        engines.cuda_memory.CudaUnavailableError: no CUDA device.
        EngineMismatchError: built for another TensorRT/GPU, or a shape that does not fit.
        EngineError: deserialisation or a step failed.
    """

    backend = "tensorrt"

    def __init__(self, path: str | Path, config: TensorRTConfig | None = None,
                 shapes: Mapping[str, Sequence[int]] | None = None,
                 built: Mapping[str, Any] | None = None, strict_shapes: bool = True) -> None:
        path = Path(path)
        super().__init__(str(path))
        self.config = config = config or TensorRTConfig()
        if not path.is_file():
            raise EngineError(f"TensorRT plan {path} does not exist")
        trt = require("tensorrt", "TensorRT engines")
        self._trt = trt
        self._device = CudaDevice(config.device, config.cuda_backend)
        info = self._device.info
        if config.check_platform:
            if built is None:
                log.warning("%s: no manifest record of its build platform; cannot check the "
                            "TensorRT version and GPU before deserialising", path.name)
            else:
                check_plan_platform(path, built, trt.__version__, info)

        self._logger = tensorrt_logger(trt, self.config.log_level)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        if self._engine is None:
            raise EngineError(f"TensorRT {trt.__version__} could not deserialise {path} on "
                              f"{info.name!r} (see the TensorRT log above); {REBUILD_HINT}")
        self._context = self._engine.create_execution_context()
        if self._context is None:
            raise EngineError(f"{path}: could not create an execution context (device memory?)")

        self.zero_copy = self._choose_zero_copy()
        self._device_buffers: list[DeviceBuffer] = []
        self._graph: CudaGraph | None = None
        self._stream = None
        try:
            self._bind(dict(shapes or {}), strict_shapes)
            self._stream = self._device.stream()
            self._enqueue()  # warm-up: TensorRT finishes deferred setup on the first enqueue
            self._stream.synchronize()
            if config.use_cuda_graph:
                self._graph = self._capture()
        except BaseException:
            self._close()
            raise
        log.info("opened %s on %s via %s (zero_copy=%s, cuda_graph=%s)", path.name, info.name,
                 self._device.backend.name, self.zero_copy, self._graph is not None)

    def _choose_zero_copy(self) -> bool:
        info = self._device.info
        if self.config.zero_copy == "off":
            return False
        if self.config.zero_copy == "on":
            if not info.can_map_host_memory:
                raise EngineError(f"zero_copy='on' but {info.name!r} cannot map host memory")
            return True
        return info.zero_copy

    def _bind(self, shapes: dict[str, Sequence[int]], strict: bool) -> None:
        """Allocate every tensor's buffers once and give TensorRT their addresses once."""
        trt, engine, context = self._trt, self._engine, self._context
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        unknown = sorted(set(shapes) - set(names))
        if unknown and strict:
            raise EngineError(f"shapes given for unknown tensors {unknown}; the plan has {names}")
        is_input = {n: engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        model_specs = {n: TensorSpec(n, tuple(engine.get_tensor_shape(n)),
                                     numpy_dtype_from_trt(engine.get_tensor_dtype(n)))
                       for n in names}
        self.model_input_specs = tuple(model_specs[n] for n in names if is_input[n])
        self.model_output_specs = tuple(model_specs[n] for n in names if not is_input[n])
        for spec in self.model_input_specs:
            shape = resolve_shape(spec, shapes.get(spec.name), strict)
            if not spec.is_static and not context.set_input_shape(spec.name, shape):
                raise EngineMismatchError(f"{spec.name}: shape {list(shape)} is outside the plan's "
                                          "optimisation profile")
        inputs, outputs = {}, {}
        self._copies_in: list[tuple[int, HostSpan]] = []
        self._copies_out: list[tuple[HostSpan, int]] = []
        for name in names:
            spec = model_specs[name]
            shape = tuple(context.get_tensor_shape(name))
            if strict and not is_input[name] and name in shapes:
                resolve_shape(TensorSpec(name, shape, spec.dtype), shapes[name])  # must agree
            host = self._device.pinned(shape, spec.dtype, mapped=self.zero_copy)
            if self.zero_copy:
                address = mapped_device_pointer(host)
            else:
                buffer = self._device.device_buffer(host.nbytes)
                self._device_buffers.append(buffer)
                address = buffer.ptr
                if is_input[name]:
                    self._copies_in.append((address, HostSpan.of(host)))
                else:
                    self._copies_out.append((HostSpan.of(host), address))
            if not context.set_tensor_address(name, address):
                raise EngineError(f"set_tensor_address({name!r}) failed")
            (inputs if is_input[name] else outputs)[name] = host
        self._set_buffers(inputs, outputs)

    def _enqueue(self) -> None:
        stream = self._stream
        for address, span in self._copies_in:
            stream.copy_to_device(address, span)
        if not self._context.execute_async_v3(stream.address):
            raise EngineError(f"{Path(self.source).name}: execute_async_v3 failed (see the "
                              "TensorRT log)")
        for span, address in self._copies_out:
            stream.copy_to_host(span, address)

    def _capture(self) -> CudaGraph | None:
        backend = self._device.backend
        if not backend.supports_graphs:
            log.info("%s: the %s backend cannot capture CUDA graphs; using plain enqueue",
                     Path(self.source).name, backend.name)
            return None
        try:
            return CudaGraph.capture(self._stream, self._enqueue)
        except CudaError as exc:
            log.warning("%s: CUDA graph capture failed (%s); using plain enqueue",
                        Path(self.source).name, exc)
            return None

    def _run(self) -> None:
        self._device.activate()
        if self._graph is not None:
            self._graph.launch()
        else:
            self._enqueue()
        self._stream.synchronize()

    @property
    def uses_cuda_graph(self) -> bool:
        return self._graph is not None

    def _details(self) -> dict[str, Any]:
        info = self._device.info
        return {"tensorrt": self._trt.__version__, "device": info.name,
                "cuda_backend": self._device.backend.name, "zero_copy": self.zero_copy,
                "cuda_graph": self._graph is not None}

    def _close(self) -> None:
        if self._graph is not None:
            self._graph.close()
            self._graph = None
        if self._stream is not None:
            self._stream.synchronize()
            self._stream.close()
            self._stream = None
        self._context = None  # the context goes before the engine that made it
        self._engine = None
        for buffer in self._device_buffers:
            buffer.close()
        self._device_buffers.clear()

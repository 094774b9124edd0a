"""Host and device memory for the engines and the HAL: pinned when CUDA is present, aligned if not.

The one function the HAL needs is :func:`allocate_host`: observation slots and engine input
buffers come from it, so a slot filled by the control loop can be copied to the GPU by DMA (or, on
a Jetson, read by the GPU in place). Without CUDA it returns ordinary 64-byte-aligned memory, so
the same code runs on a laptop.

The rest is a thin layer over a :class:`~engines.cuda.base.CudaBackend` (cuda-python or pycuda,
picked at runtime, see :func:`select_backend`): :class:`CudaDevice` opens a device and makes
pinned (optionally mapped, zero-copy) host arrays, :class:`DeviceBuffer`, :class:`Stream`,
:class:`Event` and :class:`CudaGraph`. Every object is created once, before the loop; a step only
queues copies and launches on existing ones.

Set ``KRABBY_CUDA_BACKEND`` to ``cuda-python``, ``pycuda`` or ``none`` to override the choice
(``none`` forces ordinary memory everywhere). Without it, the first backend that imports *and
sees a device* is used: one that imports but sees none (cuda-python 13 on a CUDA 12 driver,
error 35) is skipped with a warning naming the CUDA error, and the next one is tried
(:func:`probe_backends`).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from engines.cuda.base import CudaBackend, CudaError, DeviceInfo, HostSpan, PinnedAllocation
from engines.cuda.errors import CudaStatus
from engines.cuda.objects import CudaGraph, DeviceBuffer, Event, Stream
from hal.optional import MissingDependencyError, available

__all__ = [
    "ALIGNMENT_BYTES", "BACKEND_ENV", "BACKENDS", "CudaError", "CudaUnavailableError", "DeviceInfo",
    "HostSpan", "PinnedAllocation", "CudaStatus", "select_backend", "load_backend", "probe_backends",
    "usable_backend", "default_backend",
    "cuda_available", "aligned_zeros", "allocate_host", "pinned_allocation", "is_pinned",
    "mapped_device_pointer", "numpy_dtype_from_trt", "CudaDevice", "DeviceBuffer", "Stream",
    "Event", "CudaGraph",
]

log = logging.getLogger(__name__)

#: Alignment of host buffers without CUDA: one cache line, and enough for any SIMD load.
ALIGNMENT_BYTES = 64
#: Environment variable overriding the backend choice.
BACKEND_ENV = "KRABBY_CUDA_BACKEND"
#: Backends in order of preference, with the module that must import for each.
BACKENDS: Mapping[str, str] = {"cuda-python": "cuda.bindings", "pycuda": "pycuda.driver"}
_NONE = "none"


class CudaUnavailableError(RuntimeError):
    """CUDA was asked for but no backend or no device is present."""


# -- backend choice ---------------------------------------------------------------------------------

def select_backend(preference: str | None = None, *, env: Mapping[str, str] | None = None,
                   is_available: Callable[[str], bool] = available) -> str | None:
    """Name the CUDA backend to use, or None for none.

    Args:
        preference: ``"cuda-python"``, ``"pycuda"``, ``"none"`` or None (then ``$KRABBY_CUDA_BACKEND``,
            then the first installed backend in :data:`BACKENDS` order).
        env: Environment to read (default ``os.environ``).
        is_available: ``is_available(module) -> bool``; default imports it.

    Raises:
        ValueError: ``preference`` (or the environment variable) names no known backend.
    """
    env = os.environ if env is None else env
    choice = preference if preference is not None else env.get(BACKEND_ENV) or None
    if choice is not None:
        choice = choice.strip().lower()
        if choice == _NONE:
            return None
        if choice not in BACKENDS:
            source = "preference" if preference is not None else f"${BACKEND_ENV}"
            raise ValueError(f"{source}={choice!r} is not a CUDA backend; valid: "
                             f"{', '.join([*BACKENDS, _NONE])}")
        return choice  # an explicit choice that is not installed fails loudly in load_backend
    for name, module in BACKENDS.items():
        if is_available(module):
            return name
    return None


_backends: dict[str, CudaBackend] = {}
_backends_lock = threading.Lock()


def load_backend(name: str) -> CudaBackend:
    """The (cached) backend instance called ``name``.

    Raises:
        ValueError: unknown name.
        hal.optional.MissingDependencyError: its binding is not installed (message says how).
    """
    if name not in BACKENDS:
        raise ValueError(f"unknown CUDA backend {name!r}; valid: {', '.join(BACKENDS)}")
    with _backends_lock:
        backend = _backends.get(name)
        if backend is None:
            if name == "cuda-python":
                from engines.cuda.cudart_backend import CudaRuntimeBackend
                backend = CudaRuntimeBackend()
            else:
                from engines.cuda.pycuda_backend import PyCudaBackend
                backend = PyCudaBackend()
            _backends[name] = backend
        return backend


def _candidates(preference: str | None, env: Mapping[str, str] | None) -> list[str]:
    env = os.environ if env is None else env
    if preference is None and not env.get(BACKEND_ENV):
        return list(BACKENDS)
    chosen = select_backend(preference, env=env, is_available=lambda _: True)
    return [] if chosen is None else [chosen]


def probe_backends(preference: str | None = None, *, env: Mapping[str, str] | None = None,
                   loader: Callable[[str], CudaBackend] | None = None) -> list[CudaStatus]:
    """Try each candidate backend (the chosen one, or all in :data:`BACKENDS` order).

    Returns one :class:`CudaStatus` per candidate: its device count, or the CUDA error code (or
    import failure) that hid the devices. Never raises for a broken install.
    """
    loader = loader or load_backend
    statuses = []
    for name in _candidates(preference, env):
        try:
            backend = loader(name)
        except MissingDependencyError as exc:
            statuses.append(CudaStatus(name, 0, detail=f"not installed ({str(exc).split('. Import')[0]})"))
            continue
        except Exception as exc:  # noqa: BLE001 - e.g. RuntimeError from a binding without libcuda
            statuses.append(CudaStatus(name, 0, detail=f"failed to load: {type(exc).__name__}: {exc}"))
            continue
        try:
            statuses.append(backend.probe())
        except Exception as exc:  # noqa: BLE001
            statuses.append(CudaStatus(name, 0, detail=f"probe failed: {type(exc).__name__}: {exc}"))
    return statuses


def usable_backend(preference: str | None = None, *, env: Mapping[str, str] | None = None,
                   loader: Callable[[str], CudaBackend] | None = None,
                   ) -> tuple[CudaBackend | None, list[CudaStatus]]:
    """The first candidate backend that sees a device (None if none does), and every status.

    A backend that imports but sees no device is skipped with a warning saying why, and the next
    one is tried.
    """
    loader = loader or load_backend
    statuses = []
    for status in probe_backends(preference, env=env, loader=loader):
        statuses.append(status)
        if status.ok:
            return loader(status.backend), statuses
        if not status.detail.startswith("not installed"):
            log.warning("CUDA backend %s is unusable (%s); trying the next one", status.backend,
                        status.describe())
    return None, statuses


_default: list[CudaBackend | None] = []
_default_lock = threading.Lock()


def default_backend() -> CudaBackend | None:
    """The first backend that loads and sees a device (see :func:`usable_backend`), else None (cached)."""
    with _default_lock:
        if not _default:
            try:
                backend, statuses = usable_backend()
            except ValueError as exc:  # a bad $KRABBY_CUDA_BACKEND
                log.warning("%s: host memory will be ordinary aligned memory", exc)
                backend, statuses = None, []
            if backend is None and statuses:
                log.info("no CUDA backend sees a device (%s): host memory will be ordinary "
                         "aligned memory", "; ".join(s.describe() for s in statuses))
            _default.append(backend)
        return _default[0]


def cuda_available() -> bool:
    """True when a CUDA backend is installed and a device is visible."""
    return default_backend() is not None


# -- host memory ------------------------------------------------------------------------------------

def _normalise(shape: int | Sequence[int], dtype: Any) -> tuple[tuple[int, ...], np.dtype, int]:
    shape_t = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    if any(s < 0 for s in shape_t):
        raise ValueError(f"shape {shape_t} has a negative dimension")
    dt = np.dtype(dtype)
    return shape_t, dt, int(np.prod(shape_t, dtype=np.int64)) * dt.itemsize


def aligned_zeros(shape: int | Sequence[int], dtype: Any,
                  alignment: int = ALIGNMENT_BYTES) -> np.ndarray:
    """A zeroed, C-contiguous array whose data starts on an ``alignment``-byte boundary."""
    if alignment <= 0 or alignment & (alignment - 1):
        raise ValueError(f"alignment must be a power of two, got {alignment}")
    shape_t, dt, nbytes = _normalise(shape, dtype)
    raw = np.zeros(nbytes + alignment, dtype=np.uint8)
    offset = (-raw.ctypes.data) % alignment
    return raw[offset:offset + nbytes].view(dt).reshape(shape_t)


def _pinned_view(allocation: PinnedAllocation, shape: tuple[int, ...], dt: np.dtype,
                 nbytes: int) -> np.ndarray:
    raw = np.asarray(allocation)
    array = raw[:nbytes].view(dt).reshape(shape)
    array.fill(0)
    return array


def allocate_host(shape: int | Sequence[int], dtype: Any) -> np.ndarray:
    """A zeroed host array allocated once: pinned CUDA memory when CUDA is present, else aligned.

    Pinned memory lets CUDA copy it by DMA, asynchronously; without CUDA the array is ordinary
    memory aligned to :data:`ALIGNMENT_BYTES`. A pinned allocation that fails (page-locked memory
    is limited) falls back to aligned memory with a warning rather than failing the caller.
    """
    shape_t, dt, nbytes = _normalise(shape, dtype)
    backend = default_backend()
    if backend is not None:
        try:
            return _pinned_view(backend.pinned_alloc(nbytes, mapped=False), shape_t, dt, nbytes)
        except CudaError as exc:
            log.warning("pinned allocation of %d bytes failed (%s); using aligned memory",
                        nbytes, exc)
    return aligned_zeros(shape_t, dt)


def pinned_allocation(array: np.ndarray) -> PinnedAllocation | None:
    """The pinned allocation ``array`` is a view of, or None if it is ordinary memory."""
    base: Any = array
    while base is not None:
        if isinstance(base, PinnedAllocation):
            return base
        base = getattr(base, "base", None)
    return None


def is_pinned(array: np.ndarray) -> bool:
    """True if ``array`` lies in page-locked memory allocated by this module."""
    return pinned_allocation(array) is not None


def mapped_device_pointer(array: np.ndarray) -> int:
    """The device address of ``array``'s first element, for an array in mapped pinned memory.

    Raises:
        ValueError: ``array`` is not in mapped pinned memory.
    """
    allocation = pinned_allocation(array)
    if allocation is None or allocation.device_ptr is None:
        raise ValueError("array is not in mapped pinned memory (allocate it with "
                         "CudaDevice.pinned(..., mapped=True))")
    return allocation.device_ptr + (int(array.ctypes.data) - allocation.host_ptr)


# -- TensorRT data types ----------------------------------------------------------------------------

# TensorRT DataType member name -> numpy dtype name (None: no numpy equivalent).
_TRT_TO_NUMPY: Mapping[str, str | None] = {
    "FLOAT": "float32", "HALF": "float16", "INT8": "int8", "UINT8": "uint8", "INT32": "int32",
    "INT64": "int64", "BOOL": "bool", "BF16": None, "FP8": None, "INT4": None, "FP4": None,
}


def numpy_dtype_from_trt(trt_dtype: Any) -> np.dtype:
    """The numpy dtype of a TensorRT ``DataType`` (or its member name, e.g. ``"HALF"``).

    Raises:
        ValueError: the type has no numpy equivalent (BF16, FP8, INT4, ...) or is unknown.
    """
    name = trt_dtype if isinstance(trt_dtype, str) else getattr(trt_dtype, "name", str(trt_dtype))
    name = name.split(".")[-1].upper()
    if name not in _TRT_TO_NUMPY:
        raise ValueError(f"unknown TensorRT data type {trt_dtype!r}; known: {sorted(_TRT_TO_NUMPY)}")
    numpy_name = _TRT_TO_NUMPY[name]
    if numpy_name is None:
        supported = sorted(k for k, v in _TRT_TO_NUMPY.items() if v is not None)
        raise ValueError(f"TensorRT data type {name} has no numpy equivalent; engine inputs and "
                         f"outputs must be one of {supported} (export with fp32/fp16 I/O)")
    return np.dtype(numpy_name)


# -- devices ----------------------------------------------------------------------------------------

class CudaDevice:
    """One CUDA device opened through a backend; the factory for everything allocated on it.

    Args:
        device: Device ordinal.
        backend: Backend name or instance; None picks one (see :func:`select_backend`).

    Raises:
        CudaUnavailableError: no backend installed, or no such device.
    """

    def __init__(self, device: int = 0, backend: str | CudaBackend | None = None) -> None:
        if isinstance(backend, CudaBackend):
            self.backend = backend
        else:
            found, statuses = usable_backend(backend)
            if found is None:
                why = "; ".join(s.describe() for s in statuses) or f"{BACKEND_ENV}=none"
                raise CudaUnavailableError(
                    f"no CUDA backend sees a device ({why}); install cuda-python "
                    "(pip install 'krabby[jetson]') or pycuda")
            self.backend = found
        count = self.backend.device_count()
        if not 0 <= device < count:
            raise CudaUnavailableError(f"CUDA device {device} not present ({count} visible, via "
                                       f"{self.backend.name})")
        self.index = device
        self.backend.activate(device)
        self.info: DeviceInfo = self.backend.device_info(device)
        self._local = threading.local()
        self._local.active = True

    def activate(self) -> None:
        """Make this device current in the calling thread (cheap after the first call)."""
        if not getattr(self._local, "active", False):
            self.backend.activate(self.index)
            self._local.active = True

    def pinned(self, shape: int | Sequence[int], dtype: Any, mapped: bool = False) -> np.ndarray:
        """A zeroed array in pinned host memory; ``mapped`` also maps it into device space."""
        shape_t, dt, nbytes = _normalise(shape, dtype)
        if mapped and not self.info.can_map_host_memory:
            raise CudaError(f"{self.info.name} cannot map host memory (cudaDevAttrCanMapHostMemory=0)")
        return _pinned_view(self.backend.pinned_alloc(nbytes, mapped), shape_t, dt, nbytes)

    def device_buffer(self, nbytes: int) -> DeviceBuffer:
        return DeviceBuffer(self.backend, nbytes)

    def stream(self) -> Stream:
        return Stream(self.backend)

    def event(self, timing: bool = False) -> Event:
        return Event(self.backend, timing)

    def __repr__(self) -> str:
        return f"CudaDevice({self.index}, {self.info.name!r}, backend={self.backend.name!r})"

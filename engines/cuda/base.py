"""The contract every CUDA-from-Python backend fulfils, and the pieces shared by all of them.

Two bindings can drive CUDA from Python on our machines: cuda-python (``cuda.bindings.runtime``,
NVIDIA's choice since TensorRT 10.14) and pycuda (older JetPack images). Each is wrapped by one
module (:mod:`engines.cuda.cudart_backend`, :mod:`engines.cuda.pycuda_backend`) implementing
:class:`CudaBackend` over raw integer pointers and opaque handles, so the memory layer above
(:mod:`engines.cuda_memory`) and the TensorRT engine never touch either binding directly.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

if TYPE_CHECKING:
    from engines.cuda.errors import CudaStatus

import numpy as np

__all__ = ["CudaError", "DeviceInfo", "HostSpan", "PinnedAllocation", "CudaBackend"]

log = logging.getLogger(__name__)


class CudaError(RuntimeError):
    """A CUDA call failed; the message names the call and the CUDA error."""


@dataclass(frozen=True)
class DeviceInfo:
    """What the runtime needs to know about one CUDA device.

    Attributes:
        index: Device ordinal.
        name: Marketing name as the driver reports it (``"Orin"``, ``"NVIDIA H100 80GB HBM3"``).
        compute_capability: ``(major, minor)``.
        integrated: True for an integrated GPU sharing host memory (Jetson).
        can_map_host_memory: True if pinned host memory can be mapped into the device's address
            space (zero-copy).
        total_memory_bytes: Device memory size.
        multiprocessor_count: Streaming multiprocessors (SMs); with the compute capability it
            tells Orin modules apart (AGX Orin 16, Orin NX 8, Orin Nano 4-8), which the name,
            "Orin" for all of them, does not.
    """

    index: int
    name: str
    compute_capability: tuple[int, int]
    integrated: bool
    can_map_host_memory: bool
    total_memory_bytes: int
    multiprocessor_count: int = 0

    @property
    def compute_capability_text(self) -> str:
        return f"{self.compute_capability[0]}.{self.compute_capability[1]}"

    @property
    def zero_copy(self) -> bool:
        """True where mapped pinned memory is the fastest path (integrated and mappable)."""
        return self.integrated and self.can_map_host_memory


class HostSpan(NamedTuple):
    """A pinned host buffer as the copy calls need it, computed once: address, size and array.

    cuda-python copies by address; pycuda copies from an object with the buffer protocol. Keeping
    both ready means a step computes neither.
    """

    ptr: int
    nbytes: int
    array: np.ndarray

    @classmethod
    def of(cls, array: np.ndarray) -> "HostSpan":
        if not array.flags.c_contiguous:
            raise ValueError("a host span must be C-contiguous")
        return cls(int(array.ctypes.data), int(array.nbytes), array)


class PinnedAllocation:
    """Owner of one page-locked host allocation, exposed to numpy by ``__array_interface__``.

    ``numpy.asarray(allocation)`` is a uint8 view whose ``base`` is this object, so the memory
    lives exactly as long as any view of it: it is released when the last view goes away, never
    under a live array.

    Args:
        host_ptr: Host address of the allocation.
        nbytes: Its size.
        backend: Name of the backend that allocated it.
        device_ptr: Device address of the same memory when it was allocated mapped, else None.
        release: Called once with ``host_ptr`` to free the memory (None when ``keepalive`` owns it).
        keepalive: An object of the binding that owns the memory and frees it when collected.
    """

    __slots__ = ("host_ptr", "nbytes", "backend", "device_ptr", "_release", "_keepalive")

    def __init__(self, host_ptr: int, nbytes: int, backend: str, device_ptr: int | None = None,
                 release: Callable[[int], None] | None = None, keepalive: Any = None) -> None:
        self.host_ptr = int(host_ptr)
        self.nbytes = int(nbytes)
        self.backend = backend
        self.device_ptr = None if device_ptr is None else int(device_ptr)
        self._release = release
        self._keepalive = keepalive

    @property
    def mapped(self) -> bool:
        return self.device_ptr is not None

    @property
    def __array_interface__(self) -> dict[str, Any]:
        return {"data": (self.host_ptr, False), "shape": (self.nbytes,), "typestr": "|u1",
                "version": 3}

    def __del__(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            try:
                release(self.host_ptr)
            except Exception:  # noqa: BLE001 - at interpreter exit the binding may be gone
                pass
        self._keepalive = None

    def __repr__(self) -> str:
        mapped = f", device_ptr=0x{self.device_ptr:x}" if self.mapped else ""
        return (f"PinnedAllocation(backend={self.backend!r}, host_ptr=0x{self.host_ptr:x}, "
                f"nbytes={self.nbytes}{mapped})")


class CudaBackend(ABC):
    """One CUDA binding behind a uniform, pointer-level interface.

    Pointers are Python ints. Streams, events and graphs are opaque handles of the binding; a
    stream's raw address (what TensorRT's ``execute_async_v3`` takes) comes from
    :meth:`stream_address`. Every failing call raises :class:`CudaError`.
    """

    #: Backend name as used by ``KRABBY_CUDA_BACKEND`` and ``select_backend``.
    name: str = ""
    #: Whether stream capture into CUDA graphs is available through this binding.
    supports_graphs: bool = False

    @abstractmethod
    def device_count(self) -> int:
        """Number of visible CUDA devices (0 when no driver or no device)."""

    def probe(self) -> "CudaStatus":
        """Devices visible through this binding, or why none is (see :mod:`engines.cuda.errors`)."""
        from engines.cuda.errors import CudaStatus

        return CudaStatus(self.name, self.device_count())

    @abstractmethod
    def device_info(self, device: int) -> DeviceInfo:
        """Properties of device ``device``."""

    @abstractmethod
    def activate(self, device: int) -> None:
        """Make ``device`` current for the calling thread (call once per thread)."""

    @abstractmethod
    def pinned_alloc(self, nbytes: int, mapped: bool) -> PinnedAllocation:
        """Allocate page-locked (portable) host memory; ``mapped`` also maps it for the device."""

    @abstractmethod
    def device_alloc(self, nbytes: int) -> int:
        """Allocate device memory; returns its address."""

    @abstractmethod
    def device_free(self, ptr: int) -> None:
        """Free memory from :meth:`device_alloc`."""

    @abstractmethod
    def stream_create(self) -> Any:
        """A new non-blocking stream (never the legacy default stream)."""

    @abstractmethod
    def stream_address(self, stream: Any) -> int:
        """The stream's ``cudaStream_t`` as an int."""

    @abstractmethod
    def stream_synchronize(self, stream: Any) -> None:
        """Block until all work queued on ``stream`` is done."""

    @abstractmethod
    def stream_destroy(self, stream: Any) -> None:
        """Destroy a stream from :meth:`stream_create`."""

    @abstractmethod
    def memcpy_htod_async(self, dst_device: int, src: HostSpan, stream: Any) -> None:
        """Queue a copy of ``src`` (pinned) to ``dst_device`` on ``stream``."""

    @abstractmethod
    def memcpy_dtoh_async(self, dst: HostSpan, src_device: int, stream: Any) -> None:
        """Queue a copy from ``src_device`` into ``dst`` (pinned) on ``stream``."""

    @abstractmethod
    def event_create(self, timing: bool) -> Any:
        """A new event; ``timing=False`` makes it cheaper to record and wait on."""

    @abstractmethod
    def event_record(self, event: Any, stream: Any) -> None:
        """Record ``event`` on ``stream``."""

    @abstractmethod
    def event_synchronize(self, event: Any) -> None:
        """Block until ``event`` has completed."""

    @abstractmethod
    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        """Milliseconds between two completed timing events."""

    @abstractmethod
    def event_destroy(self, event: Any) -> None:
        """Destroy an event from :meth:`event_create`."""

    def begin_capture(self, stream: Any) -> None:
        """Start capturing ``stream`` into a CUDA graph (thread-local capture mode)."""
        raise CudaError(f"the {self.name} backend does not support CUDA graphs")

    def end_capture(self, stream: Any) -> Any:
        """Stop capturing and return an instantiated, launchable graph."""
        raise CudaError(f"the {self.name} backend does not support CUDA graphs")

    def abort_capture(self, stream: Any) -> None:
        """Leave capture mode after a failure and clear the error it left behind."""

    def graph_launch(self, graph_exec: Any, stream: Any) -> None:
        """Launch an instantiated graph on ``stream``."""
        raise CudaError(f"the {self.name} backend does not support CUDA graphs")

    def graph_destroy(self, graph_exec: Any) -> None:
        """Destroy an instantiated graph."""

"""CUDA through pycuda (``pycuda.driver``), for JetPack images that ship it instead of cuda-python.

pycuda speaks the driver API, whose calls need a current context in the calling thread. We use the
device's *primary* context, the same one the CUDA runtime (and so TensorRT) uses, and make it
current only around each call (push, call, pop): pycuda aborts the process at exit when a thread
leaves a context on its stack, and a context pushed in a worker thread can only be popped there.
:meth:`PyCudaBackend.activate` just records the thread's device. Pinned memory is allocated
portable, so it is pinned for every context.

CUDA graph capture is not offered through pycuda (its wrappers for stream capture differ between
releases); engines fall back to a plain enqueue, which the TensorRT engine logs once.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

from engines.cuda.base import CudaBackend, CudaError, DeviceInfo, HostSpan, PinnedAllocation
from engines.cuda.errors import CudaStatus
from hal.optional import require

__all__ = ["PyCudaBackend"]

log = logging.getLogger(__name__)

# CU_STREAM_NON_BLOCKING: the stream does not synchronise with the legacy default stream.
_CU_STREAM_NON_BLOCKING = 1


class PyCudaBackend(CudaBackend):
    """:class:`CudaBackend` over pycuda's driver API wrappers."""

    name = "pycuda"
    supports_graphs = False

    def __init__(self) -> None:
        self._cuda = require("pycuda.driver", "CUDA from Python (pycuda)")
        self._init_error: str | None = None
        try:
            self._cuda.init()
        except Exception as exc:  # noqa: BLE001 - no driver/device: report 0 devices
            self._init_error = str(exc)
        self._contexts: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self._allocations: dict[int, Any] = {}

    def _call(self, call: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._cuda.Error as exc:
            raise CudaError(f"{call} failed: {exc}") from None

    def _context(self, device: int) -> Any:
        with self._lock:
            ctx = self._contexts.get(device)
            if ctx is None:
                dev = self._call(f"Device({device})", self._cuda.Device, device)
                ctx = self._call("retain_primary_context", dev.retain_primary_context)
                self._contexts[device] = ctx
            return ctx

    @contextmanager
    def _current(self) -> Iterator[None]:
        """The thread's device context current for one call, and popped after it."""
        # A thread that never called activate() (the HAL allocating observation slots) gets
        # device 0, as the runtime API would.
        ctx = self._context(getattr(self._local, "device", 0))
        self._call("Context.push", ctx.push)
        try:
            yield
        finally:
            self._cuda.Context.pop()

    # -- devices -------------------------------------------------------------------------------

    def probe(self) -> CudaStatus:
        if self._init_error is not None:
            return CudaStatus(self.name, 0, detail=f"cuInit failed: {self._init_error}")
        try:
            count = int(self._cuda.Device.count())
        except self._cuda.Error as exc:
            return CudaStatus(self.name, 0, detail=f"cuDeviceGetCount failed: {exc}")
        return CudaStatus(self.name, count, detail="" if count else "the driver reports no device")

    def device_count(self) -> int:
        return self.probe().device_count

    def device_info(self, device: int) -> DeviceInfo:
        cuda = self._cuda
        dev = self._call(f"Device({device})", cuda.Device, device)
        attr = cuda.device_attribute
        major, minor = dev.compute_capability()
        return DeviceInfo(index=device, name=str(dev.name()).strip(),
                          compute_capability=(int(major), int(minor)),
                          integrated=bool(dev.get_attribute(attr.INTEGRATED)),
                          can_map_host_memory=bool(dev.get_attribute(attr.CAN_MAP_HOST_MEMORY)),
                          total_memory_bytes=int(dev.total_memory()),
                          multiprocessor_count=int(dev.get_attribute(attr.MULTIPROCESSOR_COUNT)))

    def activate(self, device: int) -> None:
        self._context(device)  # retained once; fails here for a bad ordinal
        self._local.device = device

    # -- memory --------------------------------------------------------------------------------

    def pinned_alloc(self, nbytes: int, mapped: bool) -> PinnedAllocation:
        cuda = self._cuda
        flags = cuda.host_alloc_flags.PORTABLE | (cuda.host_alloc_flags.DEVICEMAP if mapped else 0)
        with self._current():
            array = self._call(f"pagelocked_empty({nbytes}, mapped={mapped})", cuda.pagelocked_empty,
                               max(int(nbytes), 1), np.uint8, mem_flags=flags)
            device_ptr = None
            if mapped:
                device_ptr = int(self._call("get_device_pointer", array.base.get_device_pointer))
        # pycuda frees the memory when its array (kept alive here) is collected.
        return PinnedAllocation(int(array.ctypes.data), nbytes, self.name, device_ptr,
                                keepalive=array)

    def device_alloc(self, nbytes: int) -> int:
        with self._current():
            allocation = self._call(f"mem_alloc({nbytes})", self._cuda.mem_alloc, max(int(nbytes), 1))
        ptr = int(allocation)
        self._allocations[ptr] = allocation
        return ptr

    def device_free(self, ptr: int) -> None:
        allocation = self._allocations.pop(ptr, None)
        if allocation is None:
            raise CudaError(f"device_free: 0x{ptr:x} was not allocated by this backend")
        with self._current():
            self._call("DeviceAllocation.free", allocation.free)

    # -- streams and copies ---------------------------------------------------------------------

    def stream_create(self) -> Any:
        with self._current():
            return self._call("Stream", self._cuda.Stream, flags=_CU_STREAM_NON_BLOCKING)

    def stream_address(self, stream: Any) -> int:
        return int(stream.handle)

    def stream_synchronize(self, stream: Any) -> None:
        with self._current():
            self._call("Stream.synchronize", stream.synchronize)

    def stream_destroy(self, stream: Any) -> None:
        # pycuda destroys the stream when the object is collected; nothing to do eagerly.
        del stream

    def memcpy_htod_async(self, dst_device: int, src: HostSpan, stream: Any) -> None:
        with self._current():
            self._call("memcpy_htod_async", self._cuda.memcpy_htod_async, dst_device, src.array, stream)

    def memcpy_dtoh_async(self, dst: HostSpan, src_device: int, stream: Any) -> None:
        with self._current():
            self._call("memcpy_dtoh_async", self._cuda.memcpy_dtoh_async, dst.array, src_device, stream)

    # -- events --------------------------------------------------------------------------------

    def event_create(self, timing: bool) -> Any:
        flags = 0 if timing else self._cuda.event_flags.DISABLE_TIMING
        with self._current():
            return self._call("Event", self._cuda.Event, flags)

    def event_record(self, event: Any, stream: Any) -> None:
        with self._current():
            self._call("Event.record", event.record, stream)

    def event_synchronize(self, event: Any) -> None:
        with self._current():
            self._call("Event.synchronize", event.synchronize)

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        with self._current():
            return float(self._call("Event.time_since", end.time_since, start))

    def event_destroy(self, event: Any) -> None:
        del event

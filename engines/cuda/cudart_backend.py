"""CUDA through cuda-python's runtime bindings (``cuda.bindings.runtime``).

Every call of the binding returns a tuple whose first item is a ``cudaError_t``; :func:`_check`
turns a failure into :class:`CudaError` naming the call. The binding releases the GIL inside the
CUDA calls, so a stream synchronise in the actor thread does not stall the other threads.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from engines.cuda.base import CudaBackend, CudaError, DeviceInfo, HostSpan, PinnedAllocation
from hal.optional import require

__all__ = ["CudaRuntimeBackend", "load_cudart"]

logger = logging.getLogger(__name__)


def load_cudart() -> Any:
    """Import ``cuda.bindings.runtime`` (raises MissingDependencyError with the install command)."""
    require("cuda.bindings", "CUDA from Python (cuda-python)")
    return importlib.import_module("cuda.bindings.runtime")


class CudaRuntimeBackend(CudaBackend):
    """:class:`CudaBackend` over cuda-python's CUDA runtime bindings."""

    name = "cuda-python"
    supports_graphs = True

    def __init__(self) -> None:
        self._rt = load_cudart()
        rt = self._rt
        self._success = rt.cudaError_t.cudaSuccess
        self._h2d = rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._d2h = rt.cudaMemcpyKind.cudaMemcpyDeviceToHost

    def _check(self, result: Any, call: str) -> Any:
        """Raise on a failed call; return its single value, its values, or None."""
        err = result[0] if isinstance(result, tuple) else result
        if err != self._success:
            try:
                name = self._rt.cudaGetErrorName(err)[1].decode()
            except Exception:  # noqa: BLE001 - the error itself is what matters
                name = str(err)
            raise CudaError(f"{call} failed: {name} ({int(err)})")
        if not isinstance(result, tuple) or len(result) == 1:
            return None
        return result[1] if len(result) == 2 else result[1:]

    # -- devices -------------------------------------------------------------------------------

    def device_count(self) -> int:
        err, count = self._rt.cudaGetDeviceCount()
        if err != self._success:
            logger.debug("cudaGetDeviceCount: %s (no usable CUDA driver or device)", err)
            return 0
        return int(count)

    def device_info(self, device: int) -> DeviceInfo:
        rt = self._rt
        prop = self._check(rt.cudaGetDeviceProperties(device), f"cudaGetDeviceProperties({device})")
        attr = rt.cudaDeviceAttr
        integrated = self._check(rt.cudaDeviceGetAttribute(attr.cudaDevAttrIntegrated, device),
                                 "cudaDeviceGetAttribute(cudaDevAttrIntegrated)")
        can_map = self._check(rt.cudaDeviceGetAttribute(attr.cudaDevAttrCanMapHostMemory, device),
                              "cudaDeviceGetAttribute(cudaDevAttrCanMapHostMemory)")
        name = prop.name
        if isinstance(name, (bytes, bytearray)):
            name = bytes(name).split(b"\0", 1)[0].decode(errors="replace")
        return DeviceInfo(index=device, name=str(name).strip(),
                          compute_capability=(int(prop.major), int(prop.minor)),
                          integrated=bool(integrated), can_map_host_memory=bool(can_map),
                          total_memory_bytes=int(prop.totalGlobalMem))

    def activate(self, device: int) -> None:
        self._check(self._rt.cudaSetDevice(device), f"cudaSetDevice({device})")

    # -- memory --------------------------------------------------------------------------------

    def pinned_alloc(self, nbytes: int, mapped: bool) -> PinnedAllocation:
        rt = self._rt
        flags = rt.cudaHostAllocPortable | (rt.cudaHostAllocMapped if mapped else 0)
        ptr = int(self._check(rt.cudaHostAlloc(max(int(nbytes), 1), flags),
                              f"cudaHostAlloc({nbytes}, mapped={mapped})"))
        device_ptr = None
        if mapped:
            try:
                device_ptr = int(self._check(rt.cudaHostGetDevicePointer(ptr, 0),
                                             "cudaHostGetDevicePointer"))
            except CudaError:
                rt.cudaFreeHost(ptr)
                raise
        return PinnedAllocation(ptr, nbytes, self.name, device_ptr, release=self._free_host)

    def _free_host(self, ptr: int) -> None:
        self._rt.cudaFreeHost(ptr)

    def device_alloc(self, nbytes: int) -> int:
        return int(self._check(self._rt.cudaMalloc(max(int(nbytes), 1)), f"cudaMalloc({nbytes})"))

    def device_free(self, ptr: int) -> None:
        self._check(self._rt.cudaFree(ptr), "cudaFree")

    # -- streams and copies ---------------------------------------------------------------------

    def stream_create(self) -> Any:
        return self._check(self._rt.cudaStreamCreateWithFlags(self._rt.cudaStreamNonBlocking),
                           "cudaStreamCreateWithFlags(cudaStreamNonBlocking)")

    def stream_address(self, stream: Any) -> int:
        return int(stream)

    def stream_synchronize(self, stream: Any) -> None:
        self._check(self._rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    def stream_destroy(self, stream: Any) -> None:
        self._check(self._rt.cudaStreamDestroy(stream), "cudaStreamDestroy")

    def memcpy_htod_async(self, dst_device: int, src: HostSpan, stream: Any) -> None:
        self._check(self._rt.cudaMemcpyAsync(dst_device, src.ptr, src.nbytes, self._h2d, stream),
                    "cudaMemcpyAsync(host to device)")

    def memcpy_dtoh_async(self, dst: HostSpan, src_device: int, stream: Any) -> None:
        self._check(self._rt.cudaMemcpyAsync(dst.ptr, src_device, dst.nbytes, self._d2h, stream),
                    "cudaMemcpyAsync(device to host)")

    # -- events --------------------------------------------------------------------------------

    def event_create(self, timing: bool) -> Any:
        flags = self._rt.cudaEventDefault if timing else self._rt.cudaEventDisableTiming
        return self._check(self._rt.cudaEventCreateWithFlags(flags), "cudaEventCreateWithFlags")

    def event_record(self, event: Any, stream: Any) -> None:
        self._check(self._rt.cudaEventRecord(event, stream), "cudaEventRecord")

    def event_synchronize(self, event: Any) -> None:
        self._check(self._rt.cudaEventSynchronize(event), "cudaEventSynchronize")

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        return float(self._check(self._rt.cudaEventElapsedTime(start, end), "cudaEventElapsedTime"))

    def event_destroy(self, event: Any) -> None:
        self._check(self._rt.cudaEventDestroy(event), "cudaEventDestroy")

    # -- graphs --------------------------------------------------------------------------------

    def begin_capture(self, stream: Any) -> None:
        # Thread-local mode: the depth thread may allocate or synchronise while the actor thread
        # captures, which global mode would turn into a capture error.
        mode = self._rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        self._check(self._rt.cudaStreamBeginCapture(stream, mode), "cudaStreamBeginCapture")

    def end_capture(self, stream: Any) -> Any:
        rt = self._rt
        graph = self._check(rt.cudaStreamEndCapture(stream), "cudaStreamEndCapture")
        try:
            return self._check(rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
        finally:
            rt.cudaGraphDestroy(graph)

    def abort_capture(self, stream: Any) -> None:
        rt = self._rt
        err, status = rt.cudaStreamIsCapturing(stream)
        if err == self._success and status != rt.cudaStreamCaptureStatus.cudaStreamCaptureStatusNone:
            err, graph = rt.cudaStreamEndCapture(stream)
            if err == self._success and graph is not None and int(graph) != 0:
                rt.cudaGraphDestroy(graph)
        rt.cudaGetLastError()  # clear the (non-sticky) error a failed capture leaves

    def graph_launch(self, graph_exec: Any, stream: Any) -> None:
        self._check(self._rt.cudaGraphLaunch(graph_exec, stream), "cudaGraphLaunch")

    def graph_destroy(self, graph_exec: Any) -> None:
        self._check(self._rt.cudaGraphExecDestroy(graph_exec), "cudaGraphExecDestroy")

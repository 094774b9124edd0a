"""CUDA through cuda-python's runtime bindings (``cuda.bindings.runtime``).

Every call of the binding returns a tuple whose first item is a ``cudaError_t``; :func:`_check`
turns a failure into :class:`CudaError` naming the call, the code and what it means here
(:mod:`engines.cuda.errors`). The binding releases the GIL inside the CUDA calls, so a stream
synchronise in the actor thread does not stall the other threads.

Versions: cuda-python 13 needs a CUDA 13 driver (JetPack 6 has CUDA 12.6: every call then fails
with error 35), and releases before 12.6.1 have no ``cuda.bindings``; the ``jetson`` extra pins
12.6.1 <= v < 13. cuda-python 12.6–12.8 raise ``RuntimeError`` (not an error code) when
``libcuda.so`` cannot be loaded: :meth:`CudaRuntimeBackend.probe` turns that into a status too.
A stream's raw handle comes from ``cuda.bindings.utils.get_cuda_native_handle`` where the
binding has it (``int(cudaStream_t)`` is on its way out), else from ``int()``.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from engines.cuda.base import CudaBackend, CudaError, DeviceInfo, HostSpan, PinnedAllocation
from engines.cuda.errors import CudaStatus, describe_cuda_error
from hal.optional import require

__all__ = ["CudaRuntimeBackend", "load_cudart"]

log = logging.getLogger(__name__)


def load_cudart() -> Any:
    """Import ``cuda.bindings.runtime`` (raises MissingDependencyError with the install command)."""
    require("cuda.bindings", "CUDA from Python (cuda-python)")
    try:
        return importlib.import_module("cuda.bindings.runtime")
    except RuntimeError as exc:  # some releases load libcuda at import
        raise CudaError(f"cuda.bindings.runtime did not load: {exc} (is the NVIDIA driver "
                        "installed and libcuda.so on the loader path?)") from None


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
        try:
            self._native_handle = importlib.import_module("cuda.bindings.utils").get_cuda_native_handle
        except (ImportError, AttributeError):  # cuda-python before 12.9.1 / 13.0
            self._native_handle = int

    def _check(self, result: Any, call: str) -> Any:
        """Raise on a failed call; return its single value, its values, or None."""
        err = result[0] if isinstance(result, tuple) else result
        if err != self._success:
            try:
                name = self._rt.cudaGetErrorName(err)[1].decode()
            except Exception:  # noqa: BLE001 - the error itself is what matters
                name = str(err)
            raise CudaError(f"{call} failed: {describe_cuda_error(int(err), name)}")
        if not isinstance(result, tuple) or len(result) == 1:
            return None
        return result[1] if len(result) == 2 else result[1:]

    # -- devices -------------------------------------------------------------------------------

    def probe(self) -> CudaStatus:
        """Devices visible to the runtime, or the CUDA error (code and meaning) that hides them."""
        try:
            err, count = self._rt.cudaGetDeviceCount()
        except RuntimeError as exc:  # cuda-python 12.6-12.8 when libcuda.so cannot be loaded
            return CudaStatus(self.name, 0, detail=f"the CUDA driver library did not load: {exc}")
        if err != self._success:
            try:
                name = self._rt.cudaGetErrorName(err)[1].decode()
            except Exception:  # noqa: BLE001 - the code is what matters
                name = ""
            return CudaStatus(self.name, 0, int(err), name)
        if int(count) == 0:
            return CudaStatus(self.name, 0, detail="the driver reports no device")
        return CudaStatus(self.name, int(count))

    def device_count(self) -> int:
        status = self.probe()
        if not status.ok:
            log.debug("cudaGetDeviceCount: %s", status.describe())
        return status.device_count

    def versions(self) -> dict[str, int | None]:
        """Driver and runtime versions as CUDA encodes them (12060 = 12.6), None where unknown."""
        out: dict[str, int | None] = {}
        for key, call in (("driver", "cudaDriverGetVersion"), ("runtime", "cudaRuntimeGetVersion")):
            try:
                err, value = getattr(self._rt, call)()
                out[key] = int(value) if err == self._success else None
            except Exception:  # noqa: BLE001 - a missing driver is reported by probe()
                out[key] = None
        return out

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
                          total_memory_bytes=int(prop.totalGlobalMem),
                          multiprocessor_count=int(prop.multiProcessorCount))

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
        return int(self._native_handle(stream))

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
            if err == self._success and graph is not None and self._native_handle(graph) != 0:
                rt.cudaGraphDestroy(graph)
        rt.cudaGetLastError()  # clear the (non-sticky) error a failed capture leaves

    def graph_launch(self, graph_exec: Any, stream: Any) -> None:
        self._check(self._rt.cudaGraphLaunch(graph_exec, stream), "cudaGraphLaunch")

    def graph_destroy(self, graph_exec: Any) -> None:
        self._check(self._rt.cudaGraphExecDestroy(graph_exec), "cudaGraphExecDestroy")

"""Device-side objects over a :class:`~engines.cuda.base.CudaBackend`: buffers, streams, events, graphs.

Each is created once, before the control loop; a step only queues work on existing ones. Use them
through :class:`engines.cuda_memory.CudaDevice`, which creates them on an opened device.
"""

from __future__ import annotations

from typing import Any, Callable

from engines.cuda.base import CudaBackend, CudaError, HostSpan

__all__ = ["DeviceBuffer", "Stream", "Event", "CudaGraph"]


class DeviceBuffer:
    """``nbytes`` of device memory, freed by :meth:`close`."""

    def __init__(self, backend: CudaBackend, nbytes: int) -> None:
        self._backend = backend
        self.nbytes = int(nbytes)
        self.ptr: int = backend.device_alloc(self.nbytes)

    def close(self) -> None:
        if self.ptr:
            ptr, self.ptr = self.ptr, 0
            self._backend.device_free(ptr)

    def __enter__(self) -> "DeviceBuffer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Stream:
    """A non-blocking CUDA stream with async copies between pinned host and device memory."""

    def __init__(self, backend: CudaBackend) -> None:
        self._backend = backend
        self.handle = backend.stream_create()
        #: The raw ``cudaStream_t`` (what TensorRT's ``execute_async_v3`` takes).
        self.address: int = backend.stream_address(self.handle)

    def copy_to_device(self, dst_device: int, src: HostSpan) -> None:
        self._backend.memcpy_htod_async(dst_device, src, self.handle)

    def copy_to_host(self, dst: HostSpan, src_device: int) -> None:
        self._backend.memcpy_dtoh_async(dst, src_device, self.handle)

    def synchronize(self) -> None:
        self._backend.stream_synchronize(self.handle)

    def close(self) -> None:
        if self.handle is not None:
            handle, self.handle = self.handle, None
            self._backend.stream_destroy(handle)

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Event:
    """A CUDA event: a marker in a stream to wait on or (with ``timing``) to time against."""

    def __init__(self, backend: CudaBackend, timing: bool = False) -> None:
        self._backend = backend
        self.handle = backend.event_create(timing)

    def record(self, stream: Stream) -> None:
        self._backend.event_record(self.handle, stream.handle)

    def synchronize(self) -> None:
        self._backend.event_synchronize(self.handle)

    def elapsed_ms_since(self, start: "Event") -> float:
        return self._backend.event_elapsed_ms(start.handle, self.handle)

    def close(self) -> None:
        if self.handle is not None:
            handle, self.handle = self.handle, None
            self._backend.event_destroy(handle)


class CudaGraph:
    """An instantiated CUDA graph captured from the work one callable queues on a stream."""

    def __init__(self, backend: CudaBackend, graph_exec: Any, stream: Stream) -> None:
        self._backend = backend
        self._exec = graph_exec
        self._stream = stream

    @classmethod
    def capture(cls, stream: Stream, enqueue: Callable[[], None]) -> "CudaGraph":
        """Capture what ``enqueue()`` queues on ``stream`` (nothing runs during capture).

        Raises:
            CudaError: the backend cannot capture, or capture failed; the stream is left usable.
        """
        backend = stream._backend
        if not backend.supports_graphs:
            raise CudaError(f"the {backend.name} backend does not support CUDA graphs")
        backend.begin_capture(stream.handle)
        try:
            enqueue()
            graph_exec = backend.end_capture(stream.handle)
        except Exception as exc:
            backend.abort_capture(stream.handle)
            raise CudaError(f"CUDA graph capture failed: {exc}") from exc
        return cls(backend, graph_exec, stream)

    def launch(self) -> None:
        self._backend.graph_launch(self._exec, self._stream.handle)

    def close(self) -> None:
        if self._exec is not None:
            graph_exec, self._exec = self._exec, None
            self._backend.graph_destroy(graph_exec)

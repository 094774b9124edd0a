"""Fake ``cuda.bindings.runtime`` (cuda-python) and ``pycuda.driver`` with the real call shapes.

They stay fakes because both need an NVIDIA driver and GPU, which CI does not have.

cuda-python (``cuda/bindings/runtime.pyx``, 12.x and 13.x): every function returns a tuple whose
first item is a ``cudaError_t`` (``cudaGetDeviceCount() -> (err, int)``, ``cudaSetDevice(d) ->
(err,)``, ``cudaHostAlloc(size, flags) -> (err, int)``, ``cudaStreamCreateWithFlags(flags) ->
(err, cudaStream_t)``, ``cudaMemcpyAsync(dst, src, count, kind, stream) -> (err,)``,
``cudaStreamEndCapture(stream) -> (err, cudaGraph_t)``, ``cudaGraphInstantiate(graph, flags) ->
(err, cudaGraphExec_t)``, ``cudaGetErrorName(err) -> (err, bytes)``, ...). Releases from 12.9.1 /
13.0 have ``cuda.bindings.utils.get_cuda_native_handle(obj) -> int``. A cuda-python 13 binding on
a CUDA 12 driver fails every call with ``cudaErrorInsufficientDriver`` (35); cuda-python 12.6–12.8
raise ``RuntimeError`` when ``libcuda.so`` is missing.

pycuda (``pycuda/driver``): ``init()``, ``Device(n)`` with ``retain_primary_context()``,
``Context.push()`` / ``Context.pop()`` (static) on a per-thread stack; pycuda's module cleanup
aborts the process when a stack is not empty (:meth:`FakePycuda.stack_depths` lets a test see it).
``pagelocked_empty(shape, dtype, order="C", mem_flags=0)`` returns an ndarray whose ``.base`` is
the ``HostAllocation`` (pycuda's ``PagelockedHostAllocation``), with ``get_device_pointer()`` for
memory allocated with ``host_alloc_flags.DEVICEMAP`` (``cuMemHostGetDevicePointer``; on an
integrated GPU the mapped pointer is the host address, as here); without that flag it fails.

Memory is real host memory (ctypes), so copies move bytes; streams run work at once; a capture
records the copies and a graph launch replays them.
"""

from __future__ import annotations

import ctypes
import enum
import threading
import types
import warnings
from dataclasses import dataclass, field

import numpy as np

__all__ = ["CudaScript", "make_cuda_python", "FakePycuda", "make_pycuda"]


@dataclass
class CudaScript:
    binding_version: str = "12.6.2"
    driver_version: int = 12060  # JetPack 6: CUDA 12.6
    device_count: int = 1
    device_error: int = 0  # e.g. 100 (no device), 999 (not in the video group)
    libcuda_missing: bool = False
    name: bytes = b"Orin"
    compute_capability: tuple[int, int] = (8, 7)
    multiprocessor_count: int = 16
    integrated: int = 1
    can_map: int = 1
    calls: list = field(default_factory=list)


class _Handle:
    """cuda-python's opaque handle types (cudaStream_t, cudaEvent_t, ...)."""

    _next = 0x1000

    def __init__(self, deprecate_int: bool) -> None:
        _Handle._next += 0x10
        self._ptr = _Handle._next
        self._deprecate_int = deprecate_int

    def __int__(self) -> int:
        if self._deprecate_int:
            warnings.warn("int() on cuda.bindings handles is deprecated; use "
                          "cuda.bindings.utils.get_cuda_native_handle", DeprecationWarning, stacklevel=2)
        return self._ptr


def make_cuda_python(script: CudaScript) -> dict[str, types.ModuleType]:
    major = int(script.binding_version.split(".")[0])
    newer = tuple(int(p) for p in script.binding_version.split(".")[:3]) >= (12, 9, 1)
    rt = types.ModuleType("cuda.bindings.runtime")

    class cudaError_t(enum.IntEnum):  # noqa: N801
        cudaSuccess = 0
        cudaErrorInvalidValue = 1
        cudaErrorInsufficientDriver = 35
        cudaErrorNoDevice = 100
        cudaErrorUnknown = 999

    ok = cudaError_t.cudaSuccess
    memory: dict[int, ctypes.Array] = {}
    capturing: dict[int, list] = {}

    def status() -> cudaError_t:
        if major >= 13 and script.driver_version < 13000:
            return cudaError_t.cudaErrorInsufficientDriver
        return cudaError_t(script.device_error) if script.device_error else ok

    def alloc(size: int) -> int:
        buf = (ctypes.c_ubyte * int(size))()
        memory[ctypes.addressof(buf)] = buf
        return ctypes.addressof(buf)

    def cudaGetDeviceCount():  # noqa: N802
        if script.libcuda_missing:
            raise RuntimeError("Failed to dlopen libcuda.so.1")
        err = status()
        return (err, 0) if err != ok else (ok, script.device_count)

    def cudaGetErrorName(error):  # noqa: N802
        return ok, cudaError_t(int(error)).name.encode()

    def cudaDriverGetVersion():  # noqa: N802
        return ok, script.driver_version

    def cudaRuntimeGetVersion():  # noqa: N802
        return ok, major * 1000 + 60

    def cudaGetDeviceProperties(device):  # noqa: N802
        prop = types.SimpleNamespace(name=script.name + b"\0" * 8, major=script.compute_capability[0],
                                     minor=script.compute_capability[1], totalGlobalMem=8 << 30,
                                     multiProcessorCount=script.multiprocessor_count)
        return status(), prop

    class cudaDeviceAttr(enum.IntEnum):  # noqa: N801
        cudaDevAttrIntegrated = 18
        cudaDevAttrCanMapHostMemory = 19

    def cudaDeviceGetAttribute(attr, device):  # noqa: N802
        value = script.integrated if attr == cudaDeviceAttr.cudaDevAttrIntegrated else script.can_map
        return status(), value

    def cudaSetDevice(device):  # noqa: N802
        script.calls.append(("cudaSetDevice", device))
        return (status(),)

    def cudaHostAlloc(size, flags):  # noqa: N802
        return status(), alloc(size)

    def cudaHostGetDevicePointer(pHost, flags):  # noqa: N802, N803
        return ok, pHost  # integrated: one address space

    def cudaFreeHost(ptr):  # noqa: N802
        memory.pop(int(ptr), None)
        return (ok,)

    def cudaMalloc(size):  # noqa: N802
        return status(), alloc(size)

    def cudaFree(devPtr):  # noqa: N802, N803
        memory.pop(int(devPtr), None)
        return (ok,)

    class cudaMemcpyKind(enum.IntEnum):  # noqa: N801
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2

    class cudaStreamCaptureMode(enum.IntEnum):  # noqa: N801
        cudaStreamCaptureModeGlobal = 0
        cudaStreamCaptureModeThreadLocal = 1

    class cudaStreamCaptureStatus(enum.IntEnum):  # noqa: N801
        cudaStreamCaptureStatusNone = 0
        cudaStreamCaptureStatusActive = 1

    def handle() -> _Handle:
        return _Handle(deprecate_int=newer)

    def key(stream) -> int:
        return stream._ptr

    def cudaStreamCreateWithFlags(flags):  # noqa: N802
        return status(), handle()

    def cudaStreamSynchronize(stream):  # noqa: N802
        return (ok,)

    def cudaStreamDestroy(stream):  # noqa: N802
        return (ok,)

    def cudaMemcpyAsync(dst, src, count, kind, stream):  # noqa: N802
        copy = (int(dst), int(src), int(count))
        if key(stream) in capturing:
            capturing[key(stream)].append(copy)
        else:
            ctypes.memmove(*copy)
        return (ok,)

    def cudaEventCreateWithFlags(flags):  # noqa: N802
        return ok, handle()

    def cudaEventRecord(event, stream):  # noqa: N802
        return (ok,)

    def cudaEventSynchronize(event):  # noqa: N802
        return (ok,)

    def cudaEventElapsedTime(start, end):  # noqa: N802
        return ok, 0.0

    def cudaEventDestroy(event):  # noqa: N802
        return (ok,)

    def cudaStreamBeginCapture(stream, mode):  # noqa: N802
        capturing[key(stream)] = []
        return (ok,)

    def cudaStreamEndCapture(stream):  # noqa: N802
        graph = handle()
        graph.copies = capturing.pop(key(stream))
        return ok, graph

    def cudaStreamIsCapturing(stream):  # noqa: N802
        return ok, (cudaStreamCaptureStatus.cudaStreamCaptureStatusActive if key(stream) in capturing
                    else cudaStreamCaptureStatus.cudaStreamCaptureStatusNone)

    def cudaGraphInstantiate(graph, flags):  # noqa: N802
        exec_ = handle()
        exec_.copies = list(graph.copies)
        return ok, exec_

    def cudaGraphLaunch(graphExec, stream):  # noqa: N802, N803
        for op in graphExec.copies:
            op() if callable(op) else ctypes.memmove(*op)
        return (ok,)

    def launch(stream_address: int, kernel) -> None:
        """What a library launching on a stream (TensorRT) does: run now, or be captured."""
        if stream_address in capturing:
            capturing[stream_address].append(kernel)
        else:
            kernel()

    def cudaGraphDestroy(graph):  # noqa: N802
        return (ok,)

    def cudaGraphExecDestroy(graphExec):  # noqa: N802, N803
        return (ok,)

    def cudaGetLastError():  # noqa: N802
        return (ok,)

    for name, value in list(locals().items()):
        if name.startswith("cuda"):
            setattr(rt, name, value)
    rt.fake_launch = launch
    rt.cudaHostAllocPortable, rt.cudaHostAllocMapped = 1, 2
    rt.cudaStreamNonBlocking = 1
    rt.cudaEventDefault, rt.cudaEventDisableTiming = 0, 2
    cuda = types.ModuleType("cuda")
    bindings = types.ModuleType("cuda.bindings")
    bindings.__version__ = script.binding_version
    cuda.bindings, bindings.runtime = bindings, rt
    modules = {"cuda": cuda, "cuda.bindings": bindings, "cuda.bindings.runtime": rt}
    if newer:
        utils = types.ModuleType("cuda.bindings.utils")
        utils.get_cuda_native_handle = lambda obj: obj._ptr
        bindings.utils = utils
        modules["cuda.bindings.utils"] = utils
    else:
        modules["cuda.bindings.utils"] = None  # import fails, as in 12.6
    return modules


class FakePycuda:
    """``pycuda.driver`` with per-thread context stacks."""

    def __init__(self, device_count: int = 1) -> None:
        self._stacks: dict[int, list] = {}
        self._lock = threading.Lock()
        self._device_count = device_count
        self.device_pointers_given = 0  # get_device_pointer() calls that returned a pointer
        fake = self
        DEVICEMAP = 2

        class Error(Exception):
            pass

        class Context:
            def push(self):
                fake._stack().append(self)

            @staticmethod
            def pop():
                stack = fake._stack()
                if not stack:
                    raise Error("cuCtxPopCurrent failed: invalid context")
                stack.pop()

            @staticmethod
            def get_current():
                stack = fake._stack()
                return stack[-1] if stack else None

        def require_context(what: str) -> None:
            if not fake._stack():
                raise Error(f"{what} failed: invalid device context - no currently active context?")

        class Device:
            def __init__(self, number):
                self.number = number

            @staticmethod
            def count():
                return fake._device_count

            def retain_primary_context(self):
                return Context()

            def name(self):
                return "Orin"

            def compute_capability(self):
                return (8, 7)

            def total_memory(self):
                return 8 << 30

            def get_attribute(self, attr):
                return {"INTEGRATED": 1, "CAN_MAP_HOST_MEMORY": 1, "MULTIPROCESSOR_COUNT": 16}[attr]

        class Stream:
            def __init__(self, flags=0):
                require_context("cuStreamCreate")
                self.handle = 0xABC0

            def synchronize(self):
                require_context("cuStreamSynchronize")

        class HostAllocation:
            """Pinned host memory; numpy arrays over it keep it as their ``.base``."""

            def __init__(self, shape, dtype, mem_flags):
                dtype = np.dtype(dtype)
                shape = (shape,) if isinstance(shape, int) else tuple(shape)
                self.nbytes = max(int(np.prod(shape)) * dtype.itemsize, 1)
                self._buf = (ctypes.c_ubyte * self.nbytes)()
                self.mem_flags = mem_flags
                self.__array_interface__ = {"shape": shape, "typestr": dtype.str, "version": 3,
                                            "data": (ctypes.addressof(self._buf), False)}

            def get_device_pointer(self):
                require_context("cuMemHostGetDevicePointer")
                if not self.mem_flags & DEVICEMAP:
                    raise Error("cuMemHostGetDevicePointer failed: invalid value (not allocated "
                                "with host_alloc_flags.DEVICEMAP)")
                fake.device_pointers_given += 1
                return ctypes.addressof(self._buf)

        def pagelocked_empty(shape, dtype, order="C", mem_flags=0):
            require_context("cuMemHostAlloc")
            array = np.asarray(HostAllocation(shape, dtype, mem_flags))
            assert isinstance(array.base, HostAllocation)
            return array

        class DeviceAllocation:
            def __init__(self, nbytes):
                self.buf = np.zeros(nbytes, np.uint8)

            def __int__(self):
                return self.buf.ctypes.data

            def free(self):
                require_context("cuMemFree")

        def mem_alloc(nbytes):
            require_context("cuMemAlloc")
            return DeviceAllocation(nbytes)

        self.module = types.ModuleType("pycuda.driver")
        self.module.__dict__.update(
            Error=Error, Context=Context, Device=Device, Stream=Stream, init=lambda flags=0: None,
            mem_alloc=mem_alloc,
            pagelocked_empty=pagelocked_empty,
            device_attribute=types.SimpleNamespace(INTEGRATED="INTEGRATED", CAN_MAP_HOST_MEMORY="CAN_MAP_HOST_MEMORY",
                                                   MULTIPROCESSOR_COUNT="MULTIPROCESSOR_COUNT"),
            host_alloc_flags=types.SimpleNamespace(PORTABLE=1, DEVICEMAP=DEVICEMAP),
            event_flags=types.SimpleNamespace(DISABLE_TIMING=2),
            memcpy_htod_async=lambda dest, src, stream=None: require_context("cuMemcpyHtoDAsync"),
            memcpy_dtoh_async=lambda dest, src, stream=None: require_context("cuMemcpyDtoHAsync"),
        )

    def _stack(self) -> list:
        with self._lock:
            return self._stacks.setdefault(threading.get_ident(), [])

    def stack_depths(self) -> dict[int, int]:
        """Context-stack depth of every thread that used pycuda (pycuda aborts at exit if any > 0)."""
        with self._lock:
            return {tid: len(stack) for tid, stack in self._stacks.items()}


def make_pycuda(device_count: int = 1) -> tuple[FakePycuda, dict[str, types.ModuleType]]:
    fake = FakePycuda(device_count)
    pycuda = types.ModuleType("pycuda")
    pycuda.driver = fake.module
    return fake, {"pycuda": pycuda, "pycuda.driver": fake.module}

"""The CUDA memory layer: the logic that needs no GPU here, the real thing where CUDA exists."""

from __future__ import annotations

import ctypes
import gc
import sys

import numpy as np
import pytest

from engines import cuda_memory as cm
from engines.cuda.base import HostSpan, PinnedAllocation
from hal.optional import available


# -- backend choice -------------------------------------------------------------------------------

def test_backend_preference_order_and_env_override():
    installed = {"cuda.bindings", "pycuda.driver"}
    only_pycuda = {"pycuda.driver"}
    assert cm.select_backend(env={}, is_available=installed.__contains__) == "cuda-python"
    assert cm.select_backend(env={}, is_available=only_pycuda.__contains__) == "pycuda"
    assert cm.select_backend(env={}, is_available=set().__contains__) is None
    env = {cm.BACKEND_ENV: "pycuda"}
    assert cm.select_backend(env=env, is_available=installed.__contains__) == "pycuda"
    assert cm.select_backend(env={cm.BACKEND_ENV: "none"}, is_available=installed.__contains__) is None
    # An explicit argument beats the environment.
    chosen = cm.select_backend("cuda-python", env=env, is_available=installed.__contains__)
    assert chosen == "cuda-python"


def test_unknown_backend_names_the_valid_ones():
    with pytest.raises(ValueError, match="cuda-python, pycuda, none"):
        cm.select_backend("opencl", env={})
    with pytest.raises(ValueError, match=r"\$KRABBY_CUDA_BACKEND='rocm'"):
        cm.select_backend(env={cm.BACKEND_ENV: "rocm"})
    with pytest.raises(ValueError, match="unknown CUDA backend"):
        cm.load_backend("rocm")


# -- host memory without CUDA ---------------------------------------------------------------------

@pytest.mark.parametrize("alignment", [16, 64, 4096])
@pytest.mark.parametrize("shape,dtype", [((3, 5), np.float32), ((7,), np.uint8),
                                         ((2, 58, 87), np.float64), ((0,), np.float32)])
def test_aligned_zeros_is_aligned_zeroed_contiguous(shape, dtype, alignment):
    arrays = [cm.aligned_zeros(shape, dtype, alignment) for _ in range(8)]
    for arr in arrays:
        assert arr.shape == shape and arr.dtype == np.dtype(dtype)
        assert arr.nbytes == 0 or arr.ctypes.data % alignment == 0
        assert arr.flags.c_contiguous and arr.flags.writeable
        assert not arr.any()
    # Distinct allocations never overlap.
    spans = sorted((a.ctypes.data, a.ctypes.data + a.nbytes) for a in arrays if a.nbytes)
    assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:]))


def test_aligned_zeros_rejects_bad_alignment_and_shape():
    with pytest.raises(ValueError, match="power of two"):
        cm.aligned_zeros((4,), np.float32, alignment=48)
    with pytest.raises(ValueError, match="negative"):
        cm.aligned_zeros((4, -1), np.float32)


@pytest.mark.skipif(cm.cuda_available(), reason="checks the CPU fallback")
def test_allocate_host_without_cuda_is_aligned_ordinary_memory():
    arr = cm.allocate_host((4, 753), np.float32)
    assert arr.shape == (4, 753) and arr.dtype == np.float32
    assert arr.ctypes.data % cm.ALIGNMENT_BYTES == 0
    assert not cm.is_pinned(arr) and not arr.any()
    arr[...] = 1.5  # writeable, and a plain array
    assert float(arr.sum()) == pytest.approx(1.5 * arr.size)
    assert cm.allocate_host(5, "uint8").shape == (5,)


# -- allocation ownership and views (what pinned buffers rely on) -----------------------------------

def _fake_pinned(nbytes: int, released: list[int]) -> PinnedAllocation:
    """An allocation over ctypes memory whose release we can observe (stands in for cudaFreeHost)."""
    storage = (ctypes.c_ubyte * nbytes)()
    ptr = ctypes.addressof(storage)
    alloc = PinnedAllocation(ptr, nbytes, "test", device_ptr=0x7000_0000,
                             release=released.append, keepalive=storage)
    return alloc


def test_pinned_allocation_lives_exactly_as_long_as_its_views():
    released: list[int] = []
    alloc = _fake_pinned(4 * 12, released)
    ptr = alloc.host_ptr
    view = cm._pinned_view(alloc, (3, 4), np.dtype(np.float32), 48)
    del alloc
    gc.collect()
    assert released == []  # the view keeps it alive
    assert cm.is_pinned(view) and cm.is_pinned(view[1:])
    view[2, 3] = 7.0
    assert view.ctypes.data == ptr and float(view[2, 3]) == 7.0
    del view
    gc.collect()
    assert released == [ptr]


def test_mapped_device_pointer_follows_offsets():
    released: list[int] = []
    alloc = _fake_pinned(64, released)
    arr = cm._pinned_view(alloc, (16,), np.dtype(np.float32), 64)
    assert cm.mapped_device_pointer(arr) == 0x7000_0000
    assert cm.mapped_device_pointer(arr[4:]) == 0x7000_0000 + 16
    with pytest.raises(ValueError, match="not in mapped pinned memory"):
        cm.mapped_device_pointer(np.zeros(4, np.float32))


def test_host_span_caches_address_and_size():
    arr = cm.aligned_zeros((2, 3), np.float32)
    span = HostSpan.of(arr)
    assert span.ptr == arr.ctypes.data and span.nbytes == 24 and span.array is arr
    with pytest.raises(ValueError, match="C-contiguous"):
        HostSpan.of(np.zeros((4, 4), np.float32)[:, ::2])


# -- TensorRT data types --------------------------------------------------------------------------

class _FakeTrtDataType:
    """Stands in for tensorrt.DataType members, which carry their name in ``.name``."""

    def __init__(self, name: str) -> None:
        self.name = name


@pytest.mark.parametrize("name,expected", [("FLOAT", np.float32), ("HALF", np.float16),
                                           ("INT8", np.int8), ("INT32", np.int32),
                                           ("INT64", np.int64), ("BOOL", np.bool_),
                                           ("UINT8", np.uint8)])
def test_trt_dtype_mapping(name, expected):
    assert cm.numpy_dtype_from_trt(name) == np.dtype(expected)
    assert cm.numpy_dtype_from_trt(_FakeTrtDataType(name)) == np.dtype(expected)
    assert cm.numpy_dtype_from_trt(f"DataType.{name}") == np.dtype(expected)


def test_trt_dtype_without_numpy_equivalent_is_refused_clearly():
    with pytest.raises(ValueError, match="BF16 has no numpy equivalent"):
        cm.numpy_dtype_from_trt("BF16")
    with pytest.raises(ValueError, match="unknown TensorRT data type"):
        cm.numpy_dtype_from_trt("COMPLEX")


# -- cuda-python installed but no GPU/driver ------------------------------------------------------

@pytest.mark.skipif(not available("cuda.bindings"), reason="cuda-python not installed")
def test_cudart_backend_without_a_device_reports_zero_devices():
    backend = cm.load_backend("cuda-python")
    if backend.device_count() > 0:
        pytest.skip("a CUDA device is present")
    with pytest.raises(cm.CudaUnavailableError, match="not present"):
        cm.CudaDevice(0, backend)


# -- real CUDA ------------------------------------------------------------------------------------

needs_cuda = pytest.mark.skipif(not cm.cuda_available(), reason="no CUDA device")


@pytest.fixture(scope="module")
def device():
    if not cm.cuda_available():
        pytest.skip("no CUDA device")
    return cm.CudaDevice(0)


@pytest.mark.gpu
@needs_cuda
def test_allocate_host_is_pinned_with_cuda():
    arr = cm.allocate_host((4, 753), np.float32)
    assert cm.is_pinned(arr) and not arr.any()


@pytest.mark.gpu
@needs_cuda
def test_round_trip_through_device_on_a_stream(device):
    host_in = device.pinned((1000,), np.float32)
    host_out = device.pinned((1000,), np.float32)
    host_in[:] = np.arange(1000, dtype=np.float32)
    with device.device_buffer(host_in.nbytes) as buf, device.stream() as stream:
        start, end = device.event(timing=True), device.event(timing=True)
        start.record(stream)
        stream.copy_to_device(buf.ptr, HostSpan.of(host_in))
        stream.copy_to_host(HostSpan.of(host_out), buf.ptr)
        end.record(stream)
        stream.synchronize()
        assert end.elapsed_ms_since(start) >= 0.0
        start.close(), end.close()
    np.testing.assert_array_equal(host_out, host_in)


@pytest.mark.gpu
@needs_cuda
def test_graph_replays_captured_copies(device):
    if not device.backend.supports_graphs:
        pytest.skip(f"{device.backend.name} cannot capture graphs")
    host_in = device.pinned((256,), np.float32)
    host_out = device.pinned((256,), np.float32)
    with device.device_buffer(host_in.nbytes) as buf, device.stream() as stream:
        src, dst = HostSpan.of(host_in), HostSpan.of(host_out)
        graph = cm.CudaGraph.capture(stream, lambda: (stream.copy_to_device(buf.ptr, src),
                                                      stream.copy_to_host(dst, buf.ptr)))
        for value in (1.0, 2.0, 3.0):  # new data each launch, same addresses
            host_in[:] = value
            graph.launch()
            stream.synchronize()
            assert np.all(host_out == value)
        graph.close()


@pytest.mark.gpu
@needs_cuda
def test_mapped_memory_has_a_device_address(device):
    if not device.info.can_map_host_memory:
        pytest.skip("device cannot map host memory")
    arr = device.pinned((64,), np.float32, mapped=True)
    assert cm.mapped_device_pointer(arr) != 0


def test_module_import_stays_light():
    # The HAL imports engines.cuda_memory; it must not drag in onnxruntime, torch or TensorRT.
    import subprocess

    code = ("import sys, engines.cuda_memory; "
            "print(sorted(m for m in ('onnxruntime', 'torch', 'tensorrt') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"

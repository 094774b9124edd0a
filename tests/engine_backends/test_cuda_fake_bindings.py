"""The CUDA backends against fakes of cuda-python and pycuda with the real call shapes
(tests/fakes/cuda.py): error codes and their meaning, falling through to the next backend, the
pycuda context stack, the stream's native handle, and a copy/graph round trip."""

from __future__ import annotations

import logging
import threading
import warnings

import numpy as np
import pytest

from engines import cuda_memory as cm
from engines.cuda.base import HostSpan
from tests.fakes import install
from tests.fakes.cuda import CudaScript, make_cuda_python, make_pycuda


@pytest.fixture
def fresh(monkeypatch):
    """Empty backend caches, no $KRABBY_CUDA_BACKEND, and no real binding."""
    monkeypatch.setattr(cm, "_backends", {})
    monkeypatch.setattr(cm, "_default", [])
    monkeypatch.delenv(cm.BACKEND_ENV, raising=False)
    for name in ("cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.bindings.utils", "pycuda",
                 "pycuda.driver"):
        monkeypatch.setitem(__import__("sys").modules, name, None)

    def cuda_python(**fields) -> CudaScript:
        script = CudaScript(**fields)
        install(monkeypatch, make_cuda_python(script))
        return script

    def pycuda(device_count: int = 1):
        fake, modules = make_pycuda(device_count)
        install(monkeypatch, modules)
        return fake

    return cuda_python, pycuda


@pytest.mark.parametrize("fields, words", [
    ({"binding_version": "13.0.1", "driver_version": 12060}, ["CUDA error 35", "cudaErrorInsufficientDriver",
                                                             "cuda-python>=12.6.1,<13"]),
    ({"device_error": 100}, ["CUDA error 100", "no CUDA device"]),
    ({"device_error": 999}, ["CUDA error 999", "video"]),
])
def test_cuda_error_code_and_meaning_are_reported(fresh, fields, words):
    cuda_python, _ = fresh
    cuda_python(**fields)
    (status,) = cm.probe_backends("cuda-python")
    assert status.device_count == 0 and not status.ok
    for word in words:
        assert word in status.describe()
    with pytest.raises(cm.CudaUnavailableError) as err:
        cm.CudaDevice(0)
    for word in words:
        assert word in str(err.value)


def test_missing_libcuda_raising_runtime_error_is_a_status_not_a_crash(fresh):
    cuda_python, _ = fresh
    cuda_python(libcuda_missing=True)
    backend = cm.load_backend("cuda-python")
    assert backend.device_count() == 0
    (status,) = cm.probe_backends("cuda-python")
    assert "libcuda.so.1" in status.describe()
    assert cm.default_backend() is None


def test_a_backend_without_a_device_falls_through_to_the_next(fresh, caplog):
    cuda_python, pycuda = fresh
    cuda_python(binding_version="13.0.1", driver_version=12060)  # imports, sees nothing
    pycuda(device_count=1)
    with caplog.at_level(logging.WARNING, logger="engines.cuda_memory"):
        backend, statuses = cm.usable_backend()
    assert backend is not None and backend.name == "pycuda"
    assert [s.backend for s in statuses] == ["cuda-python", "pycuda"]
    assert any("cuda-python" in r.getMessage() and "35" in r.getMessage() for r in caplog.records)
    device = cm.CudaDevice(0)
    assert device.backend.name == "pycuda" and device.info.multiprocessor_count == 16


def test_pycuda_leaves_no_context_on_any_thread_stack(fresh):
    _, pycuda = fresh
    fake = pycuda()
    device = cm.CudaDevice(0, "pycuda")
    host = device.pinned((64,), np.float32)

    def work() -> None:
        device.activate()
        with device.device_buffer(host.nbytes) as buf, device.stream() as stream:
            stream.copy_to_device(buf.ptr, HostSpan.of(host))
            stream.synchronize()

    work()
    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    depths = fake.stack_depths()
    assert len(depths) == 2 and set(depths.values()) == {0}, depths


def test_stream_handle_uses_the_native_handle_where_the_binding_has_it(fresh):
    cuda_python, _ = fresh
    cuda_python(binding_version="13.0.1", driver_version=13000)
    device = cm.CudaDevice(0, "cuda-python")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        with device.stream() as stream:
            assert stream.address == stream.handle._ptr


def test_round_trip_and_graph_replay_through_cuda_python(fresh):
    cuda_python, _ = fresh
    cuda_python()  # 12.6.2 on JetPack 6's CUDA 12.6
    device = cm.CudaDevice(0)
    assert device.backend.name == "cuda-python"
    assert (device.info.name, device.info.compute_capability, device.info.multiprocessor_count) == ("Orin", (8, 7), 16)
    src = device.pinned((256,), np.float32)
    dst = device.pinned((256,), np.float32, mapped=True)
    assert cm.mapped_device_pointer(dst) == dst.ctypes.data
    with device.device_buffer(src.nbytes) as buf, device.stream() as stream:
        s, d = HostSpan.of(src), HostSpan.of(dst)
        graph = cm.CudaGraph.capture(stream, lambda: (stream.copy_to_device(buf.ptr, s),
                                                      stream.copy_to_host(d, buf.ptr)))
        assert not dst.any()  # capture queues nothing
        for value in (1.0, 2.5):
            src[:] = value
            graph.launch()
            stream.synchronize()
            np.testing.assert_array_equal(dst, value)
        graph.close()


def test_cuda_paths_benchmark_runs_its_calls_on_the_fake(fresh, tmp_path, capsys):
    """The GPU benchmark (run for real where a GPU is lent) makes only calls the binding has."""
    import json

    from benchmarks.cuda_paths import main as bench

    cuda_python, _ = fresh
    cuda_python()
    out = tmp_path / "cuda.json"
    assert bench(["--reps", "5", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report["copy"]) == {"obs_753", "depth_58x87", "zed_hd720"}
    assert {"plain", "graph", "plain_over_graph_p50"} <= set(report["graph"])

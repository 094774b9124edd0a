"""Stand-ins for the hardware libraries that cannot run here (pyzed, TensorRT, cuda-python, pycuda).

Unitree's SDK is not faked: it runs here, over real Cyclone DDS against ``krabby-go2-sim``
(tests/go2_dds).

Each fake copies the *call signatures and return shapes* of the real library, taken from its
published sources or stubs (cited in each module), so code that passes the wrong number of
arguments or unpacks the wrong return shape fails here as it would on the robot. Behaviour is
scripted by the test (what a call returns), never computed to match the code under test.

:func:`install` puts a fake module tree into ``sys.modules`` for one test (``monkeypatch``).
"""

from __future__ import annotations

import sys
import types
from typing import Mapping

__all__ = ["install", "install_gpu"]


def install(monkeypatch, modules: Mapping[str, types.ModuleType]) -> None:
    """Make each ``name -> module`` importable for the duration of one test."""
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)


def install_gpu(monkeypatch, trt_version: str | None = "10.3.0.30", **cuda_fields):
    """A fake Jetson for one test: cuda-python (JetPack 6's CUDA 12.6 on an AGX Orin) and, unless
    ``trt_version`` is None, TensorRT. Clears the CUDA backend caches and the shared TensorRT
    logger so nothing leaks between tests. Returns ``(cuda_script, trt_script)``."""
    from engines import cuda_memory
    from engines import tensorrt_engine
    from tests.fakes.cuda import CudaScript, make_cuda_python
    from tests.fakes.tensorrt import TrtScript, make_tensorrt

    monkeypatch.setattr(cuda_memory, "_backends", {})
    monkeypatch.setattr(cuda_memory, "_default", [])
    monkeypatch.setattr(tensorrt_engine, "_trt_logger", None)
    monkeypatch.delenv(cuda_memory.BACKEND_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "pycuda", None)
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)
    cuda_script = CudaScript(**cuda_fields)
    modules = make_cuda_python(cuda_script)
    install(monkeypatch, modules)
    trt_script = None
    if trt_version is not None:
        trt_script = TrtScript(version=trt_version)
        install(monkeypatch, {"tensorrt": make_tensorrt(trt_script, modules["cuda.bindings.runtime"].fake_launch)})
    else:
        monkeypatch.setitem(sys.modules, "tensorrt", None)
    return cuda_script, trt_script

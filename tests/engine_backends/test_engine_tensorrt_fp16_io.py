"""An engine whose inputs and outputs are half precision, through TensorRTEngine on the fake Jetson;
and the same engine on the pycuda backend with zero-copy (mapped pinned memory).

The fake TensorRT (tests/fakes/tensorrt.py) reports each tensor's own dtype, as TensorRT does for
an engine built with fp16 I/O: the engine must allocate float16 buffers for those tensors, bind
them and read them back as float16. The graph is built with ``onnx.helper`` (no torch), and the
expected values are computed with numpy from the same weights. With pycuda, zero-copy binds the
device pointer of each pinned array (``array.base.get_device_pointer()``, pycuda's API).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from engines import cuda_memory, tensorrt_engine
from engines.tensorrt_engine import TensorRTConfig, TensorRTEngine
from tests.fakes import install, install_gpu
from tests.fakes.cuda import make_pycuda
from tests.fakes.tensorrt import TrtScript, make_tensorrt

onnx = pytest.importorskip("onnx")  # the [jetson] and [export] extras
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

WEIGHT = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5], [-2.0, 1.0, 0.0], [0.75, -0.25, 1.0]], np.float32)
BIAS = np.array([0.1, -0.2, 0.3], np.float32)


def _fp16_io_graph(path) -> None:
    """x (float16, 1x4) -> Cast float32 -> MatMul WEIGHT -> Add BIAS -> y (float32) and y16 (float16)."""
    nodes = [helper.make_node("Cast", ["x"], ["x32"], to=TensorProto.FLOAT),
             helper.make_node("MatMul", ["x32", "w"], ["xw"]),
             helper.make_node("Add", ["xw", "b"], ["y"]),
             helper.make_node("Cast", ["y"], ["y16"], to=TensorProto.FLOAT16)]
    graph = helper.make_graph(
        nodes, "fp16_io",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3]),
         helper.make_tensor_value_info("y16", TensorProto.FLOAT16, [1, 3])],
        [numpy_helper.from_array(WEIGHT, "w"), numpy_helper.from_array(BIAS, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _plan(tmp_path, version: str = "10.3.0.30"):
    onnx_path = tmp_path / "fp16_io.onnx"
    _fp16_io_graph(onnx_path)
    plan = tmp_path / "fp16_io.plan"  # a plan as the fake TensorRT serialises one
    plan.write_text(json.dumps({"fake_tensorrt": version, "onnx": onnx_path.read_bytes().hex(),
                                "fp16": True}))
    return plan


def _check(engine: TensorRTEngine) -> None:
    assert engine.inputs["x"].dtype == np.float16
    assert engine.outputs["y"].dtype == np.float32 and engine.outputs["y16"].dtype == np.float16
    assert [(s.name, s.dtype) for s in engine.describe().inputs] == [("x", np.dtype(np.float16))]
    for x in (np.array([[1.0, 2.0, -0.5, 4.0]]), np.array([[0.125, -3.0, 2.5, 0.0]])):
        out = engine.infer(x=x.astype(np.float16))
        expected = x.astype(np.float16).astype(np.float32) @ WEIGHT + BIAS
        np.testing.assert_allclose(out["y"], expected, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(out["y16"], expected.astype(np.float16))


@pytest.mark.parametrize("use_graph", [True, False], ids=["cuda-graph", "enqueue"])
@pytest.mark.parametrize("zero_copy", ["off", "auto"])
def test_half_precision_inputs_and_outputs(tmp_path, monkeypatch, use_graph, zero_copy):
    install_gpu(monkeypatch, trt_version="10.3.0.30")
    engine = TensorRTEngine(_plan(tmp_path), TensorRTConfig(use_cuda_graph=use_graph, zero_copy=zero_copy,
                                                            check_platform=False))
    try:
        assert engine.zero_copy == (zero_copy == "auto")  # the fake Orin maps host memory
        _check(engine)
    finally:
        engine.close()


def test_pycuda_zero_copy_binds_the_pinned_arrays_device_pointers(tmp_path, monkeypatch):
    monkeypatch.setattr(cuda_memory, "_backends", {})
    monkeypatch.setattr(cuda_memory, "_default", [])
    monkeypatch.setattr(tensorrt_engine, "_trt_logger", None)
    monkeypatch.setenv(cuda_memory.BACKEND_ENV, "pycuda")
    for name in ("cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.bindings.utils"):
        monkeypatch.setitem(sys.modules, name, None)
    fake, modules = make_pycuda(device_count=1)
    install(monkeypatch, modules)
    ran = []
    # pycuda streams run the kernel at once here (the fake memory is host memory).
    install(monkeypatch, {"tensorrt": make_tensorrt(TrtScript("10.3.0.30"),
                                                    lambda handle, kernel: (ran.append(handle), kernel()))})
    engine = TensorRTEngine(_plan(tmp_path), TensorRTConfig(zero_copy="on", check_platform=False))
    try:
        assert engine.zero_copy and not engine.uses_cuda_graph  # pycuda cannot capture graphs
        assert fake.device_pointers_given == 3  # x, y, y16: each bound through its device pointer
        _check(engine)
        assert len(ran) >= 2 and set(ran) == {0xABC0}  # on pycuda's stream handle (the fake's)
    finally:
        engine.close()
    assert all(depth == 0 for depth in fake.stack_depths().values())

"""Torch reference engine: same buffers contract, agrees with ONNX Runtime on the same model."""

from __future__ import annotations

import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tests.engine_backends.engine_models import numpy_recurrent  # noqa: E402
from engines.base import EngineMismatchError, TensorSpec  # noqa: E402
from engines.onnxruntime_engine import OnnxRuntimeEngine  # noqa: E402
from engines.torch_engine import TorchConfig, TorchEngine  # noqa: E402

SPECS = [TensorSpec("x", (1, 8), np.float32), TensorSpec("hidden_in", (1, 1, 6), np.float32)]


@pytest.mark.parametrize("jit_trace", [False, True], ids=["eager", "torchscript"])
def test_torch_and_onnxruntime_agree_on_the_same_exported_model(recurrent, jit_trace):
    ref = TorchEngine(recurrent["model"], SPECS, ["y", "hidden_out"], TorchConfig(jit_trace=jit_trace))
    ort_engine = OnnxRuntimeEngine(recurrent["path"])
    assert ref.describe().inputs == ort_engine.describe().inputs
    assert ref.describe().outputs == ort_engine.describe().outputs
    rng = np.random.default_rng(2)
    for _ in range(6):
        x = (3 * rng.standard_normal((1, 8))).astype(np.float32)
        for engine in (ref, ort_engine):
            engine.inputs["x"][...] = x
            engine.run()
            engine.inputs["hidden_in"][...] = engine.outputs["hidden_out"]
        for name in ("y", "hidden_out"):
            np.testing.assert_allclose(ref.outputs[name], ort_engine.outputs[name], atol=1e-5, rtol=0)
    # And the torch reference itself is right (independent float64 computation).
    y_ref, _ = numpy_recurrent(recurrent["model"], ref.inputs["x"].copy(),
                               np.zeros((1, 1, 6), np.float32))
    ref.inputs["hidden_in"][...] = 0
    ref.run()
    np.testing.assert_allclose(ref.outputs["y"], y_ref, atol=1e-5)


def test_outputs_land_in_the_same_arrays_and_inputs_are_shared(recurrent):
    engine = TorchEngine(recurrent["model"], SPECS, ["y", "hidden_out"])
    y, h = engine.outputs["y"], engine.outputs["hidden_out"]
    pointers = [a.ctypes.data for a in (*engine.inputs.values(), y, h)]
    first = None
    for step in range(3):
        engine.inputs["x"][0, 0] = float(step)
        engine.run()
        assert engine.outputs["y"] is y and engine.outputs["hidden_out"] is h
        assert [a.ctypes.data for a in (*engine.inputs.values(), y, h)] == pointers
        if first is None:
            first = y.copy()
    assert not np.allclose(first, y)


def test_module_returning_fewer_outputs_than_named_is_refused(recurrent):
    with pytest.raises(EngineMismatchError, match="returns 2 output"):
        TorchEngine(recurrent["model"], SPECS, ["y"])


def test_run_is_under_inference_mode_and_single_output_modules_work():
    seen = []

    class Probe(torch.nn.Module):
        def forward(self, a):
            seen.append(torch.is_inference_mode_enabled())
            return a * 2

    engine = TorchEngine(Probe(), [TensorSpec("a", (2, 3), np.float32)], ["b"])
    engine.inputs["a"][...] = np.arange(6).reshape(2, 3)
    engine.run()
    np.testing.assert_array_equal(engine.outputs["b"], 2 * np.arange(6).reshape(2, 3))
    assert seen and all(seen)
    assert engine.outputs["b"].dtype == np.float32


def test_config_validation():
    with pytest.raises(ValueError, match="device 'tpu'"):
        TorchConfig(device="tpu")


def test_onnx_and_tensorrt_paths_never_import_torch(recurrent, tmp_path):
    import subprocess

    code = ("import sys\n"
            "from engines import open_engine\n"
            f"e = open_engine({str(recurrent['path'])!r}, manifest=None)\n"
            "e.run()\n"
            "import engines.tensorrt_engine\n"
            "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device for torch")
def test_torch_on_cuda_matches_cpu(recurrent):
    cpu = TorchEngine(recurrent["model"], SPECS, ["y", "hidden_out"])
    gpu = TorchEngine(recurrent["model"], SPECS, ["y", "hidden_out"], TorchConfig(device="cuda"))
    assert next(recurrent["model"].parameters()).device.type == "cpu"  # caller's module unmoved
    x = np.linspace(-1, 1, 8, dtype=np.float32)[None]
    for engine in (cpu, gpu):
        engine.inputs["x"][...] = x
        engine.run()
    np.testing.assert_allclose(gpu.outputs["y"], cpu.outputs["y"], atol=1e-4)

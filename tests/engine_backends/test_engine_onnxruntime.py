"""ONNX Runtime engine: results checked against numpy, buffers fixed, a step allocates no arrays."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

pytest.importorskip("torch")  # builds the models under test (engine_models)

from tests.engine_backends.engine_models import numpy_recurrent  # noqa: E402
from engines.base import EngineClosedError, EngineError, EngineMismatchError, TensorSpec  # noqa: E402
from engines.onnxruntime_engine import OnnxRuntimeConfig, OnnxRuntimeEngine  # noqa: E402


def test_describe_lists_tensors_in_order(recurrent):
    with OnnxRuntimeEngine(recurrent["path"]) as engine:
        d = engine.describe()
        assert d.backend == "onnxruntime"
        assert d.inputs == (TensorSpec("x", (1, 8), np.float32),
                            TensorSpec("hidden_in", (1, 1, 6), np.float32))
        assert d.outputs == (TensorSpec("y", (1, 3), np.float32),
                             TensorSpec("hidden_out", (1, 1, 6), np.float32))
        assert d.details["intra_op_threads"] == 1 and d.details["providers"] == ["CPUExecutionProvider"]
        assert "x: float32[1,8]" in str(d)


def test_recurrent_steps_match_numpy(recurrent):
    """Several steps feeding the hidden state back, against an independent float64 computation."""
    rng = np.random.default_rng(0)
    engine = OnnxRuntimeEngine(recurrent["path"])
    h_ref = np.zeros((1, 1, 6))
    for _ in range(5):
        x = rng.standard_normal((1, 8)).astype(np.float32)
        engine.inputs["x"][...] = x
        engine.run()
        y_ref, h_ref = numpy_recurrent(recurrent["model"], x, h_ref.astype(np.float32))
        np.testing.assert_allclose(engine.outputs["y"], y_ref, atol=1e-5)
        np.testing.assert_allclose(engine.outputs["hidden_out"], h_ref, atol=1e-5)
        engine.inputs["hidden_in"][...] = engine.outputs["hidden_out"]
    engine.close()


def test_buffers_are_the_same_objects_at_the_same_addresses(recurrent):
    engine = OnnxRuntimeEngine(recurrent["path"])
    arrays = {**engine.inputs, **engine.outputs}
    addresses = {name: a.ctypes.data for name, a in arrays.items()}
    rng = np.random.default_rng(1)
    seen = []
    for _ in range(4):
        engine.inputs["x"][...] = rng.standard_normal((1, 8))
        engine.run()
        for name in arrays:
            current = engine.inputs.get(name, engine.outputs.get(name))
            assert current is arrays[name]
            assert current.ctypes.data == addresses[name]
        seen.append(engine.outputs["y"].copy())
    # The outputs really were written in place (they changed between steps).
    assert not np.allclose(seen[0], seen[1])


def test_a_step_allocates_no_numpy_arrays(recurrent):
    engine = OnnxRuntimeEngine(recurrent["path"])
    engine.run()  # first run may set up ORT's own arena
    domain = np.lib.tracemalloc_domain
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot().filter_traces([tracemalloc.DomainFilter(True, domain)])
        for _ in range(50):
            engine.run()
        after = tracemalloc.take_snapshot().filter_traces([tracemalloc.DomainFilter(True, domain)])
    finally:
        tracemalloc.stop()
    grown = [s for s in after.compare_to(before, "traceback") if s.size_diff > 0]
    assert grown == [], f"numpy data allocated during run(): {grown[:3]}"


def test_inputs_written_in_place_are_seen(recurrent):
    engine = OnnxRuntimeEngine(recurrent["path"])
    x = engine.inputs["x"]
    x[...] = 0.0
    engine.run()
    zero_out = engine.outputs["y"].copy()
    x[0, 3] = 2.0  # a single element, through the caller's own reference
    engine.run()
    assert not np.allclose(engine.outputs["y"], zero_out)
    y_ref, _ = numpy_recurrent(recurrent["model"], x.copy(), np.zeros((1, 1, 6), np.float32))
    np.testing.assert_allclose(engine.outputs["y"], y_ref, atol=1e-5)


def test_infer_convenience_and_errors(recurrent):
    engine = OnnxRuntimeEngine(recurrent["path"])
    out = engine.infer(x=np.ones((1, 8), np.float32))
    assert out["y"] is not engine.outputs["y"]  # copies, not the live buffers
    with pytest.raises(EngineMismatchError, match="unknown input 'z'"):
        engine.infer(z=np.ones((1, 8)))
    with pytest.raises(EngineMismatchError, match=r"got shape \[8\], engine expects \[1, 8\]"):
        engine.infer(x=np.ones(8))
    engine.close()
    engine.close()  # idempotent
    with pytest.raises(EngineClosedError):
        engine.run()


def test_config_validation_and_missing_cuda_provider(recurrent, tmp_path):
    with pytest.raises(ValueError, match="device 'gpu'"):
        OnnxRuntimeConfig(device="gpu")
    with pytest.raises(ValueError, match="intra_op_threads must be >= 1"):
        OnnxRuntimeConfig(intra_op_threads=0)
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(EngineError, match="no CUDAExecutionProvider"):
            OnnxRuntimeEngine(recurrent["path"], OnnxRuntimeConfig(device="cuda"))
        # "auto" falls back to the CPU quietly.
        with OnnxRuntimeEngine(recurrent["path"], OnnxRuntimeConfig(device="auto")) as engine:
            assert engine.providers == ("CPUExecutionProvider",)
    with pytest.raises(EngineError, match="does not exist"):
        OnnxRuntimeEngine(tmp_path / "missing.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(EngineError, match="could not load"):
        OnnxRuntimeEngine(tmp_path / "bad.onnx")


def test_dynamic_batch_dimension_is_resolved_by_shapes(tmp_path):
    torch = pytest.importorskip("torch")
    from tests.engine_backends.engine_models import export_onnx

    model = torch.nn.Linear(4, 2)
    path = tmp_path / "dyn.onnx"
    with torch.no_grad():
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.zeros(1, 4),), str(path), input_names=["a"],
                              output_names=["b"], dynamic_axes={"a": {0: "n"}, "b": {0: "n"}},
                              dynamo=False)
    engine = OnnxRuntimeEngine(path, shapes={"a": (3, 4), "b": (3, 2)})
    assert engine.model_input_specs[0].shape == (-1, 4)
    assert engine.inputs["a"].shape == (3, 4) and engine.outputs["b"].shape == (3, 2)
    engine.inputs["a"][...] = np.arange(12, dtype=np.float32).reshape(3, 4)
    engine.run()
    expected = engine.inputs["a"] @ model.weight.detach().numpy().T + model.bias.detach().numpy()
    np.testing.assert_allclose(engine.outputs["b"], expected, atol=1e-5)
    with pytest.raises(EngineMismatchError, match="does not fit"):
        OnnxRuntimeEngine(path, shapes={"a": (3, 5)})
    with pytest.raises(EngineError, match="unknown tensors"):
        OnnxRuntimeEngine(path, shapes={"q": (1,)})
    assert export_onnx  # the shared exporter stays importable for other tests

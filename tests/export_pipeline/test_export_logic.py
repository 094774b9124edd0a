"""The parts of the exporter that need neither TensorRT nor a GPU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from export.exporter import ExportError, ExportOptions, resolve_output
from export.parity import OutputParity, ParityReport, Tolerance, tolerance_for
from export.tensorrt_build import (
    TensorRTBuildOptions,
    choose_build_strategy,
    jetson_build_hint,
    parse_version,
    tensorrt_environment,
)


@pytest.mark.parametrize("version,precision,strong,flag,fp16_onnx,clear_tf32", [
    ("10.3.0.26", "fp16", False, True, False, False),    # JetPack 6.x
    ("10.3.0", "fp32", False, False, False, True),
    ("10.11.0.33", "fp16", False, True, False, False),
    ("10.12.0.36", "fp16", True, False, True, False),
    ("10.13.3", "fp32", True, False, False, True),
    ("11.0.0", "fp16", True, False, True, False),
])
def test_build_strategy_by_version(version, precision, strong, flag, fp16_onnx, clear_tf32):
    s = choose_build_strategy(version, precision)
    assert (s.strongly_typed, s.fp16_flag, s.fp16_onnx, s.clear_tf32) == \
        (strong, flag, fp16_onnx, clear_tf32)
    assert version.split(".")[0] in s.reason


def test_build_strategy_refusals():
    with pytest.raises(ValueError, match="too old"):
        choose_build_strategy("8.6.1", "fp16")
    with pytest.raises(ValueError, match="not a TensorRT version"):
        choose_build_strategy("banana", "fp16")
    with pytest.raises(ValueError, match="precision 'int8'"):
        choose_build_strategy("10.3.0", "int8")


def test_parse_version():
    assert parse_version("10.3.0.26") == (10, 3, 0)
    assert parse_version("10.12") == (10, 12, 0)
    assert parse_version(" 11.1.2+cuda13 ") == (11, 1, 2)


def test_build_options_validation():
    options = TensorRTBuildOptions("fp32", optimization_level=5, workspace_mib=256)
    assert options.workspace_bytes == 256 * 1024 * 1024
    with pytest.raises(ValueError, match="optimization_level"):
        TensorRTBuildOptions(optimization_level=7)
    with pytest.raises(ValueError, match="precision"):
        TensorRTBuildOptions("bf16")


def test_environment_probe_here():
    env = tensorrt_environment()
    if env.usable:
        assert env.version and env.device_name
    else:
        assert "tensorrt" in env.reason.lower() or "cuda" in env.reason.lower(), env.reason


def test_jetson_hint():
    hint = jetson_build_hint(Path("/x/model_3000.pt"), "go2", "fp16", "no module")
    assert "krabby-export --checkpoint model_3000.pt --robot go2 --precision fp16" in hint
    assert "krabby-build-engine model_3000.onnx --precision fp16" in hint
    assert "no module" in hint and "JetPack" in hint


def test_tolerances():
    assert tolerance_for("onnxruntime", "fp32") == Tolerance(1e-5, 1e-5)
    assert tolerance_for("tensorrt", "fp16").atol > tolerance_for("tensorrt", "fp32").atol
    with pytest.raises(ValueError, match="no parity tolerance"):
        tolerance_for("tvm", "fp32")


def test_output_parity_math():
    p = OutputParity("actions", Tolerance(atol=1e-3, rtol=1e-2))
    p.update(np.array([[1.0, -4.0]]), np.array([[1.0, -4.03]]))   # error 0.03, scale 4
    assert p.max_abs == pytest.approx(0.03) and p.scale == 4.0
    assert p.max_rel == pytest.approx(0.0075)
    assert p.allowed == pytest.approx(1e-3 + 0.04)
    assert p.passed
    p.update(np.array([[0.0, 0.0]]), np.array([[0.05, 0.0]]))    # error 0.05 > 0.041
    assert not p.passed and "0.05" in p.describe()
    q = OutputParity("x", Tolerance(1.0, 1.0))
    q.update(np.zeros(3), np.array([0.0, np.nan, 0.0]))
    assert not q.passed and q.to_dict()["non_finite"] == 1
    assert not OutputParity("empty", Tolerance(1, 1)).passed  # no samples, no pass
    report = ParityReport("onnxruntime", "fp32", {"actor": {"actions": p}, "depth": {"x": q}})
    assert not report.passed and len(report.failures()) == 2
    json.dumps(report.to_dict())


def test_resolve_output(tmp_path):
    ckpt = tmp_path / "model_3000.pt"
    assert resolve_output(ckpt, None) == (tmp_path.resolve(), "model_3000")
    assert resolve_output(tmp_path / "model.v2.pt", None)[1] == "model_v2"
    assert resolve_output(ckpt, tmp_path) == (tmp_path.resolve(), "model_3000")
    assert resolve_output(ckpt, f"{tmp_path}/new/") == ((tmp_path / "new").resolve(), "model_3000")
    assert resolve_output(ckpt, tmp_path / "run7") == (tmp_path.resolve(), "run7")
    with pytest.raises(ExportError, match="must not contain"):
        resolve_output(ckpt, tmp_path / "run7.onnx")
    with pytest.raises(ExportError, match="does not exist"):
        resolve_output(ckpt, tmp_path / "nope" / "run7")


def test_export_options_validation():
    with pytest.raises(ExportError, match="--precision"):
        ExportOptions(precision="int8")
    with pytest.raises(ExportError, match="--optimization-level"):
        ExportOptions(optimization_level=9)
    assert ExportOptions().precision == "fp16"


def test_manifest_writer_refuses_invalid_content(tmp_path):
    from engines.manifest import ManifestError
    from export.manifest_writer import write_manifest

    with pytest.raises(ManifestError):
        write_manifest({"format_version": 1, "robot": {}}, tmp_path / "model.json")
    assert list(tmp_path.iterdir()) == []


def test_fp16_conversion_keeps_io_float32_and_stays_close(tmp_path):
    torch = pytest.importorskip("torch")
    onnx = pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    from compute.parkour.checkpoint import load_checkpoint
    from compute.parkour.synthetic import write_synthetic_checkpoint
    from export.onnx_export import convert_to_fp16, export_graph, graph_tensors
    from hal.robot import load_robot

    robot = load_robot("go2")
    policy = load_checkpoint(write_synthetic_checkpoint(tmp_path / "m.pt", robot, seed=9), robot)
    rng = np.random.default_rng(0)
    for graph, module in (("actor", policy.actor_step), ("depth", policy.depth_step)):
        tensors = graph_tensors(policy.arch, graph)
        fp32, fp16 = tmp_path / f"{graph}.onnx", tmp_path / f"{graph}.fp16.onnx"
        export_graph(module, tensors, fp32)
        convert_to_fp16(fp32, fp16)
        model = onnx.load(str(fp16))
        f32, f16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16
        assert all(v.type.tensor_type.elem_type == f32 for v in (*model.graph.input,
                                                                  *model.graph.output))
        assert {i.data_type for i in model.graph.initializer} <= {f16, onnx.TensorProto.INT64}
        feeds = {name: rng.uniform(-0.5, 0.5, shape).astype(np.float32)
                 for name, shape in tensors.inputs}
        got = ReferenceEvaluator(model).run(None, feeds)
        with torch.no_grad():
            want = module(*[torch.from_numpy(feeds[n]) for n in tensors.input_names])
        want = want if isinstance(want, tuple) else (want,)
        for g, w in zip(got, want):
            assert g.dtype == np.float32
            np.testing.assert_allclose(g, w.numpy(), atol=2e-2, rtol=0)


def test_fp16_conversion_of_an_output_that_also_feeds_a_node(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    from export.onnx_export import convert_to_fp16

    # hidden = tanh(x W); y = hidden * 2: `hidden` is a graph output and feeds the Mul.
    w = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["pre"]), helper.make_node("Tanh", ["pre"], ["hidden"]),
         helper.make_node("Mul", ["hidden", "two"], ["y"])],
        "feeds_back",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, [1, 4]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(np.array(2.0, np.float32), "two")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    src, dst = tmp_path / "m.onnx", tmp_path / "m.fp16.onnx"
    onnx.save(model, str(src))
    convert_to_fp16(src, dst)
    x = np.array([[0.3, -0.7, 0.2]], np.float32)
    hidden, y = ReferenceEvaluator(onnx.load(str(dst))).run(None, {"x": x})
    want = np.tanh(x.astype(np.float64) @ w.astype(np.float64))  # independent: numpy in float64
    np.testing.assert_allclose(hidden, want, atol=2e-3)
    np.testing.assert_allclose(y, 2 * want, atol=4e-3)
    assert hidden.dtype == y.dtype == np.float32

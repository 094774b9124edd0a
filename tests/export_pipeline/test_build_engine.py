"""krabby-build-engine on a fake Jetson (fake TensorRT + cuda-python, tests/fakes): plans from the
ONNX files and the manifest, parity against ONNX Runtime, the manifest updated, nothing changed
on failure, a plan built elsewhere registered, and no torch needed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engines import open_engine
from engines.manifest import load_manifest
from export.build_engine import main
from tests.fakes import install_gpu

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def student(tmp_path, student_export) -> Path:
    out = tmp_path / "export"
    shutil.copytree(student_export, out)
    return out / "student.onnx"


def test_strongly_typed_build_keeps_the_fp16_graph_and_updates_the_manifest(student, go2, monkeypatch):
    _, trt = install_gpu(monkeypatch, trt_version="10.13.0.35")
    assert main([str(student), "--quiet", "--parity-samples", "4"]) == 0
    directory = student.parent
    raw = json.loads((directory / "student.json").read_text())
    record = raw["tensorrt"]
    assert (record["version"], record["device_name"], record["compute_capability"], record["sm_count"]) == \
        ("10.13.0.35", "Orin", "8.7", 16)
    assert {"l4t_release", "power_mode", "gpu_clock_mhz"} <= set(record)
    assert record["built_by"] == "krabby-build-engine" and record["strongly_typed"]
    assert raw["precision"] == "fp16" and raw["versions"]["tensorrt"] == "10.13.0.35"
    assert raw["parity"]["tensorrt"]["passed"] and raw["parity"]["tensorrt"]["reference"].startswith("onnxruntime")
    assert raw["parity"]["onnxruntime"]["passed"]  # krabby-export's report is kept
    assert raw["graphs"]["actor"]["files"] == {"onnx": "student.onnx", "tensorrt": "student.plan",
                                               "onnx_fp16": "student.fp16.onnx"}
    assert raw["graphs"]["depth"]["files"]["onnx_fp16"] == "student.depth.fp16.onnx"
    assert [b["strongly_typed"] for b in trt.builds] == [True, True]
    manifest = load_manifest(directory / "student.json")
    for name in ("student.plan", "student.depth.plan", "student.fp16.onnx", "student.depth.fp16.onnx"):
        manifest.verify_file(directory / name)
    assert (directory / "krabby.timing.cache").read_bytes().startswith(b"fake-timing-cache|10.13.0.35|")
    # The runtime opens the plan through the updated manifest (platform check included).
    with open_engine(directory / "student.plan", robot=go2) as engine, \
            open_engine(directory / "student.onnx", robot=go2) as reference:
        rng = np.random.default_rng(1)
        for name in engine.inputs:
            value = rng.uniform(-1, 1, engine.inputs[name].shape).astype(np.float32)
            engine.inputs[name][...] = value
            reference.inputs[name][...] = value
        engine.run()
        reference.run()
        np.testing.assert_allclose(engine.outputs["actions"], reference.outputs["actions"], atol=2e-2)


def test_weakly_typed_build_uses_the_fp16_flag_and_no_fp16_graph(student, monkeypatch):
    _, trt = install_gpu(monkeypatch, trt_version="10.3.0.30")
    assert main([str(student), "--quiet", "--parity-samples", "2"]) == 0
    raw = json.loads((student.parent / "student.json").read_text())
    assert "onnx_fp16" not in raw["graphs"]["actor"]["files"]
    assert not (student.parent / "student.fp16.onnx").exists()
    assert [b["fp16_flag"] for b in trt.builds] == [True, True]


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def test_a_failed_check_changes_nothing(student, monkeypatch, capsys):
    install_gpu(monkeypatch, trt_version="10.13.0.35")
    assert main([str(student), "--quiet", "--parity-samples", "2"]) == 0
    before = _snapshot(student.parent)
    from export import parity

    monkeypatch.setattr(parity, "tolerance_for", lambda backend, precision: parity.Tolerance(0.0, 0.0))
    assert main([str(student), "--quiet", "--parity-samples", "2"]) == 1
    assert "parity check failed (tensorrt, fp16)" in capsys.readouterr().err
    assert _snapshot(student.parent) == before  # plans, fp16 graphs, timing cache, manifest
    assert not [p for p in student.parent.iterdir() if p.name.startswith(".krabby-build-")]


def test_a_plan_built_elsewhere_is_registered(student, tmp_path, monkeypatch):
    install_gpu(monkeypatch, trt_version="10.13.0.35")
    assert main([str(student), "--quiet", "--parity-samples", "2"]) == 0
    made_by_trtexec = tmp_path / "trtexec.plan"
    shutil.copyfile(student.parent / "student.plan", made_by_trtexec)
    (student.parent / "student.plan").unlink()
    assert main([str(student), "--quiet", "--parity-samples", "2", "--register", str(made_by_trtexec)]) == 0
    raw = json.loads((student.parent / "student.json").read_text())
    assert raw["tensorrt"]["graphs"]["actor"]["registered_from"] == "trtexec.plan"
    assert (student.parent / "student.plan").read_bytes() == made_by_trtexec.read_bytes()


def test_bad_input_and_missing_tensorrt_are_one_line_errors(student, monkeypatch, capsys):
    install_gpu(monkeypatch, trt_version=None)
    assert main([str(student), "--quiet"]) == 1
    assert "cannot build TensorRT engines here: the tensorrt Python module is not installed" in capsys.readouterr().err
    with open(student, "ab") as f:
        f.write(b"\0")
    assert main([str(student), "--quiet"]) == 2
    assert "sha256" in capsys.readouterr().err
    assert main([str(student.with_name("nope.onnx"))]) == 2


def test_builds_without_torch(student):
    """In a fresh interpreter where torch cannot be imported."""
    code = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
sys.modules["torch"] = None
from tests.fakes.cuda import CudaScript, make_cuda_python
from tests.fakes.tensorrt import TrtScript, make_tensorrt
modules = make_cuda_python(CudaScript())
sys.modules.update(modules)
sys.modules["pycuda"] = sys.modules["pycuda.driver"] = None
sys.modules["tensorrt"] = make_tensorrt(TrtScript("10.13.0.35"), modules["cuda.bindings.runtime"].fake_launch)
from export.build_engine import main
rc = main([{str(student)!r}, "--quiet", "--parity-samples", "2"])
print("rc", rc)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0 and "rc 0" in out.stdout, out.stderr[-2000:]

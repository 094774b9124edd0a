"""The extras resolve to what a JetPack 6 Jetson can run (pyproject.toml)."""

from __future__ import annotations

from pathlib import Path

from packaging.requirements import Requirement

from hal.toml_compat import tomllib

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _extra(name: str) -> list[Requirement]:
    data = tomllib.loads(PYPROJECT.read_text())
    return [Requirement(r) for r in data["project"]["optional-dependencies"][name]]


def test_cuda_python_stays_on_cuda_12_with_cuda_bindings():
    (cuda,) = [r for r in _extra("jetson") if r.name == "cuda-python"]
    # 13.x needs a CUDA 13 driver (JetPack 6 has 12.6); before 12.6.1 there is no cuda.bindings.
    assert not cuda.specifier.contains("13.0.0") and not cuda.specifier.contains("13.0.1")
    assert not cuda.specifier.contains("12.6.0") and not cuda.specifier.contains("12.0.0")
    assert cuda.specifier.contains("12.6.1") and cuda.specifier.contains("12.9.2")


def test_the_registry_tensorrt_is_never_installed_on_a_jetson():
    (trt,) = _extra("tensorrt")
    assert trt.marker is not None
    assert not trt.marker.evaluate({"platform_machine": "aarch64"})
    assert trt.marker.evaluate({"platform_machine": "x86_64"})


def test_build_engine_console_script_and_its_onnx_dependency():
    data = tomllib.loads(PYPROJECT.read_text())
    assert data["project"]["scripts"]["krabby-build-engine"] == "export.build_engine:main"
    assert any(r.name == "onnx" for r in _extra("jetson"))
    assert not any(r.name == "torch" for r in _extra("jetson"))

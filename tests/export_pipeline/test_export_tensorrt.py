"""TensorRT builds and parity (run only where TensorRT and a CUDA GPU are present)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from export.tensorrt_build import tensorrt_environment  # noqa: E402

ENV = tensorrt_environment()
pytestmark = [pytest.mark.tensorrt,
              pytest.mark.skipif(not ENV.usable, reason=f"TensorRT engines: {ENV.reason}")]


@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_engine_build_and_parity(tmp_path, checkpoints, go2, precision):
    from engines import open_engine
    from engines.manifest import load_manifest
    from export.cli import main

    assert main(["--checkpoint", str(checkpoints["student"]), "--output", f"{tmp_path}/",
                 "--precision", precision, "--require-engine", "--parity-samples", "8",
                 "--quiet"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert {"student.plan", "student.depth.plan", "student.json", "krabby.timing.cache"} <= set(names)
    raw = json.loads((tmp_path / "student.json").read_text())
    assert raw["precision"] == precision
    assert raw["tensorrt"]["version"] == ENV.version
    assert raw["tensorrt"]["device_name"] == ENV.device_name
    assert raw["versions"]["tensorrt"] == ENV.version
    report = raw["parity"]["tensorrt"]
    assert report["passed"] and report["precision"] == precision
    assert set(report["graphs"]["depth"]) >= {"latent_yaw_rollout", "hidden_rollout"}
    manifest = load_manifest(tmp_path / "student.json")
    assert manifest.graph("actor").files["tensorrt"] == "student.plan"
    with open_engine(tmp_path / "student.plan", robot=go2) as actor:
        actor.run()
    # A second build reuses the timing cache beside the engines.
    cache_size = (tmp_path / "krabby.timing.cache").stat().st_size
    assert main(["--checkpoint", str(checkpoints["student"]), "--output", f"{tmp_path}/",
                 "--precision", precision, "--require-engine", "--parity-samples", "2",
                 "--quiet"]) == 0
    assert (tmp_path / "krabby.timing.cache").stat().st_size >= cache_size

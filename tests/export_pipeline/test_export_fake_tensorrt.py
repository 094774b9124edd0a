"""krabby-export's TensorRT path on a fake Jetson (fake TensorRT + cuda-python, tests/fakes): the
platform record, one TensorRT logger, and a timing cache that changes only when everything passed."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")

from engines import open_engine  # noqa: E402
from export.exporter import ExportError, ExportOptions, export_checkpoint  # noqa: E402
from tests.fakes import install_gpu  # noqa: E402


@pytest.mark.parametrize("version, strongly_typed", [("10.3.0.30", False), ("10.13.0.35", True)])
def test_fp16_export_records_the_full_platform_and_the_plan_opens(tmp_path, checkpoints, go2, monkeypatch,
                                                                     version, strongly_typed):
    _, trt = install_gpu(monkeypatch, trt_version=version)
    result = export_checkpoint(checkpoints["teacher"], ExportOptions(output=f"{tmp_path}/", parity_samples=4,
                                                                     require_engine=True))
    raw = json.loads(result.manifest_path.read_text())
    record = raw["tensorrt"]
    assert (record["version"], record["device_name"], record["compute_capability"], record["sm_count"]) == \
        (version, "Orin", "8.7", 16)
    assert [b["strongly_typed"] for b in trt.builds] == [strongly_typed]
    assert [b["fp16_flag"] for b in trt.builds] == [not strongly_typed]
    assert raw["parity"]["tensorrt"]["passed"]
    # One logger for the builder and the runtimes: TensorRT would warn about a second one.
    assert len({id(lg) for lg in trt.loggers_seen}) == 1 and not trt.warnings
    with open_engine(tmp_path / "teacher.plan", robot=go2) as engine, \
            open_engine(tmp_path / "teacher.onnx", robot=go2) as reference:
        obs = np.random.default_rng(0).standard_normal(engine.inputs["obs"].shape).astype(np.float32)
        for e in (engine, reference):
            e.inputs["obs"][...] = obs
            e.run()
        # The strongly typed fake engine computes the float16 graph; the weakly typed one the fp32 graph.
        atol = 2e-2 if strongly_typed else 1e-6
        np.testing.assert_allclose(engine.outputs["actions"], reference.outputs["actions"], atol=atol)
        assert strongly_typed == (not np.array_equal(engine.outputs["actions"], reference.outputs["actions"]))


def test_a_failed_parity_check_leaves_the_timing_cache_untouched(tmp_path, checkpoints, monkeypatch):
    install_gpu(monkeypatch)
    options = ExportOptions(output=f"{tmp_path}/", parity_samples=2, require_engine=True)
    export_checkpoint(checkpoints["teacher"], options)
    cache = tmp_path / "krabby.timing.cache"
    before = cache.read_bytes()
    assert before.startswith(b"fake-timing-cache|10.3.0.30|")

    from export import parity

    strict = parity.Tolerance(atol=0.0, rtol=0.0)
    monkeypatch.setattr(parity, "tolerance_for", lambda backend, precision: strict
                        if backend == "tensorrt" else parity.TOLERANCES[(backend, precision)])
    with pytest.raises(ExportError, match="parity check failed \\(tensorrt"):
        export_checkpoint(checkpoints["teacher"], options)
    assert cache.read_bytes() == before


def test_a_failed_build_leaves_the_timing_cache_untouched(tmp_path, checkpoints, monkeypatch):
    _, trt = install_gpu(monkeypatch)
    options = ExportOptions(output=f"{tmp_path}/", parity_samples=2, require_engine=True)
    export_checkpoint(checkpoints["teacher"], options)
    cache = tmp_path / "krabby.timing.cache"
    before = cache.read_bytes()
    trt.fail_build = True
    with pytest.raises(ExportError, match="failed to build"):
        export_checkpoint(checkpoints["teacher"], options)
    assert cache.read_bytes() == before

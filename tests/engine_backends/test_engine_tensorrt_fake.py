"""TensorRTEngine on a fake Jetson (fake TensorRT 10 + cuda-python with the real call shapes,
tests/fakes): buffers bound once by address, the stream's native handle, zero-copy and copies,
CUDA graph replay, one TensorRT logger, and the platform check before deserialising."""

from __future__ import annotations

import warnings

import pytest
from tests.engine_backends.engine_models import assert_recurrent_rollout_matches

from engines.base import EngineError, EngineMismatchError
from engines.onnxruntime_engine import OnnxRuntimeEngine
from engines.tensorrt_engine import TensorRTConfig, TensorRTEngine, platform_record
from engines.cuda.base import DeviceInfo
from tests.fakes import install_gpu

AGX_ORIN = DeviceInfo(0, "Orin", (8, 7), True, True, 8 << 30, multiprocessor_count=16)


def _plan(tmp_path, onnx_path, version="10.13.0.35"):
    """A plan as the fake TensorRT serialises it (see tests/fakes/tensorrt.py)."""
    import json

    plan = tmp_path / "recurrent.plan"
    plan.write_text(json.dumps({"fake_tensorrt": version, "onnx": onnx_path.read_bytes().hex(), "fp16": False}))
    return plan


@pytest.mark.parametrize("use_graph", [True, False], ids=["cuda-graph", "enqueue"])
@pytest.mark.parametrize("zero_copy", ["off", "auto"])
def test_fake_tensorrt_engine_matches_onnxruntime(recurrent, tmp_path, monkeypatch, use_graph, zero_copy):
    install_gpu(monkeypatch, trt_version="10.13.0.35", binding_version="13.0.1", driver_version=13000)
    plan = _plan(tmp_path, recurrent["path"])
    ref = OnnxRuntimeEngine(recurrent["path"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # no int(cudaStream_t) on cuda-python 13
        engine = TensorRTEngine(plan, TensorRTConfig(use_cuda_graph=use_graph, zero_copy=zero_copy),
                                built=platform_record("10.13.0.35", AGX_ORIN))
    assert engine.uses_cuda_graph == use_graph
    assert engine.zero_copy == (zero_copy == "auto")  # the fake Orin is integrated and maps memory
    assert_recurrent_rollout_matches(engine, ref, atol=1e-6)
    engine.close()


def test_engines_share_one_tensorrt_logger(recurrent, tmp_path, monkeypatch):
    _, trt = install_gpu(monkeypatch, trt_version="10.3.0.30")
    plan = _plan(tmp_path, recurrent["path"], "10.3.0.30")
    built = platform_record("10.3.0.30", AGX_ORIN)
    engines = [TensorRTEngine(plan, built=built, config=TensorRTConfig(log_level=level))
               for level in ("warning", "verbose", "error")]
    assert len(trt.loggers_seen) == 3 and len({id(lg) for lg in trt.loggers_seen}) == 1
    assert not [w for w in trt.warnings if "logger" in w]
    assert int(trt.loggers_seen[0].min_severity) == 4  # the most verbose request wins
    for e in engines:
        e.close()


def test_platform_is_checked_before_deserialising(recurrent, tmp_path, monkeypatch):
    install_gpu(monkeypatch, trt_version="10.3.0.30", multiprocessor_count=8)  # an Orin NX
    plan = _plan(tmp_path, recurrent["path"], "10.3.0.30")
    with pytest.raises(EngineMismatchError, match="16 SMs, this one has 8"):
        TensorRTEngine(plan, built=platform_record("10.3.0.30", AGX_ORIN))


def test_a_plan_from_another_tensorrt_build_fails_to_deserialise_clearly(recurrent, tmp_path, monkeypatch):
    install_gpu(monkeypatch, trt_version="10.3.0.30")
    plan = _plan(tmp_path, recurrent["path"], "10.3.0.26")
    with pytest.raises(EngineError, match="could not deserialise"):
        TensorRTEngine(plan, TensorRTConfig(check_platform=False))

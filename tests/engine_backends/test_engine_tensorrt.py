"""TensorRT engine: platform checks run everywhere; building and running plans needs TensorRT + GPU."""

from __future__ import annotations

import pytest

from engines.base import EngineMismatchError
from engines.cuda.base import DeviceInfo
from engines.cuda_memory import cuda_available
from engines.tensorrt_engine import (
    TensorRTConfig, TensorRTEngine, check_plan_platform, platform_record, same_tensorrt_version,
)
from hal.optional import MissingDependencyError, available


AGX_ORIN = DeviceInfo(0, "Orin", (8, 7), True, True, 64 << 30, multiprocessor_count=16)
ORIN_NX = DeviceInfo(0, "Orin", (8, 7), True, True, 16 << 30, multiprocessor_count=8)
H100 = DeviceInfo(0, "NVIDIA H100 80GB HBM3", (9, 0), False, True, 80 << 30, multiprocessor_count=132)


def test_tensorrt_versions_compare_with_the_build_number():
    assert same_tensorrt_version("10.3.0.30", "10.3.0.30")
    assert same_tensorrt_version("10.3", "10.3.0.0")
    assert not same_tensorrt_version("10.3.0.26", "10.3.0.30")  # TensorRT refuses such a plan
    assert not same_tensorrt_version("10.3.0", "10.3.0.30")
    assert not same_tensorrt_version("10.3.0.30", "10.7.0.23")


def test_plan_from_another_platform_is_refused_with_a_rebuild_hint():
    built = platform_record("10.3.0.30", AGX_ORIN)
    assert built == {"version": "10.3.0.30", "device_name": "Orin", "compute_capability": "8.7", "sm_count": 16}
    check_plan_platform("model.plan", built, "10.3.0.30", AGX_ORIN)  # same platform: accepted
    with pytest.raises(EngineMismatchError) as info:
        check_plan_platform("model.plan", built, "10.7.0.23", H100)
    message = str(info.value)
    assert "model.plan cannot run here" in message
    assert "TensorRT 10.3.0.30 built it, this machine runs TensorRT 10.7.0.23" in message
    assert "built on 'Orin', this GPU is 'NVIDIA H100 80GB HBM3'" in message
    assert "compute capability 8.7, this GPU has 9.0" in message
    assert "krabby-build-engine" in message
    with pytest.raises(EngineMismatchError, match="does not record the version, device_name"):
        check_plan_platform("model.plan", None, "10.3.0.30", AGX_ORIN)


def test_every_orin_is_named_orin_but_the_sm_count_tells_them_apart():
    built = platform_record("10.3.0.30", AGX_ORIN)
    with pytest.raises(EngineMismatchError, match="16 SMs, this one has 8"):
        check_plan_platform("model.plan", built, "10.3.0.30", ORIN_NX)
    with pytest.raises(EngineMismatchError, match="TensorRT 10.3.0.30 built it, this machine runs TensorRT 10.3.0.26"):
        check_plan_platform("model.plan", built, "10.3.0.26", AGX_ORIN)
    old_manifest = {"version": "10.3.0", "device_name": "Orin"}
    with pytest.raises(EngineMismatchError, match="compute_capability, sm_count"):
        check_plan_platform("model.plan", old_manifest, "10.3.0.30", AGX_ORIN)


def test_config_validation():
    with pytest.raises(ValueError, match="zero_copy 'maybe'"):
        TensorRTConfig(zero_copy="maybe")
    with pytest.raises(ValueError, match="log_level 'loud'"):
        TensorRTConfig(log_level="loud")


@pytest.mark.skipif(available("tensorrt"), reason="TensorRT is installed")
def test_missing_tensorrt_says_how_to_install(tmp_path):
    plan = tmp_path / "model.plan"
    plan.write_bytes(b"\0" * 16)
    with pytest.raises(MissingDependencyError, match="TensorRT comes with JetPack"):
        TensorRTEngine(plan)


# -- real TensorRT ----------------------------------------------------------------------------------

needs_trt = pytest.mark.skipif(not (available("tensorrt") and cuda_available()),
                               reason="needs TensorRT and a CUDA device")


def build_plan(onnx_path, plan_path):
    """Build an fp32 plan from an ONNX file (what krabby-export does on the robot)."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(onnx_path.read_bytes()), [parser.get_error(i) for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    serialized = builder.build_serialized_network(network, config)
    assert serialized is not None
    plan_path.write_bytes(bytes(serialized))
    return plan_path


@pytest.fixture(scope="module")
def recurrent_plan(recurrent, tmp_path_factory):
    if not (available("tensorrt") and cuda_available()):
        pytest.skip("needs TensorRT and a CUDA device")
    return build_plan(recurrent["path"], tmp_path_factory.mktemp("trt") / "recurrent.plan")


@pytest.mark.tensorrt
@needs_trt
@pytest.mark.parametrize("use_graph", [True, False], ids=["cuda-graph", "enqueue"])
@pytest.mark.parametrize("zero_copy", ["off", "auto"])
def test_tensorrt_matches_onnxruntime(recurrent, recurrent_plan, use_graph, zero_copy):
    from tests.engine_backends.engine_models import assert_recurrent_rollout_matches
    from engines.onnxruntime_engine import OnnxRuntimeEngine

    ref = OnnxRuntimeEngine(recurrent["path"])
    engine = TensorRTEngine(recurrent_plan, TensorRTConfig(use_cuda_graph=use_graph,
                                                           zero_copy=zero_copy))
    assert engine.describe().inputs == ref.describe().inputs
    if use_graph and engine._device.backend.supports_graphs:
        assert engine.uses_cuda_graph
    assert_recurrent_rollout_matches(engine, ref, atol=1e-4)
    engine.close()


@pytest.mark.tensorrt
@needs_trt
def test_open_engine_refuses_a_plan_from_another_tensorrt(recurrent_plan, go2):
    import json

    import tensorrt as trt
    from tests.engine_backends.engine_models import sha256
    from engines import open_engine

    manifest = recurrent_plan.with_name("recurrent.json")
    f = "float32"
    manifest.write_text(json.dumps({
        "format_version": 1, "robot": go2.summary(),
        "graphs": {"actor": {"inputs": {"x": {"shape": [1, 8], "dtype": f},
                                        "hidden_in": {"shape": [1, 1, 6], "dtype": f}},
                             "outputs": {"y": {"shape": [1, 3], "dtype": f},
                                         "hidden_out": {"shape": [1, 1, 6], "dtype": f}},
                             "files": {"tensorrt": recurrent_plan.name}}},
        "files": {recurrent_plan.name: {"sha256": sha256(recurrent_plan)}},
        "tensorrt": {"version": "9.0.0.1", "device_name": "Orin", "compute_capability": "8.7",
                     "sm_count": 16}}))
    with pytest.raises(EngineMismatchError, match=f"this machine runs TensorRT {trt.__version__}"):
        open_engine(recurrent_plan)

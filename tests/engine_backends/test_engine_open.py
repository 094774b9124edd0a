"""open_engine: backend by file type, opened through the manifest, mismatches refused clearly."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")  # builds the models under test (engine_models)

from tests.engine_backends.engine_models import (  # noqa: E402
    TinyActor,
    actor_graph,
    export_onnx,
    write_manifest,
)
from compute.parkour.graphs import load_policy_manifest  # noqa: E402
from engines import EngineError, EngineMismatchError, open_engine  # noqa: E402
from engines.manifest import ManifestError, load_manifest, manifest_path_for  # noqa: E402
from engines.onnxruntime_engine import OnnxRuntimeConfig, OnnxRuntimeEngine  # noqa: E402


def test_manifest_path_convention(tmp_path):
    assert manifest_path_for(tmp_path / "model.onnx") == tmp_path / "model.json"
    assert manifest_path_for(tmp_path / "model.depth.onnx") == tmp_path / "model.json"
    assert manifest_path_for(tmp_path / "model.depth.plan") == tmp_path / "model.json"
    assert manifest_path_for(tmp_path / "run7.plan") == tmp_path / "run7.json"


def test_opens_through_a_matching_manifest(tiny_actor_dir, go2):
    write_manifest(tiny_actor_dir, go2, {"actor": actor_graph()})
    with open_engine(tiny_actor_dir / "model.onnx", robot=go2) as engine:
        assert isinstance(engine, OnnxRuntimeEngine)
        assert engine.inputs["obs"].shape == (1, 753)
        assert engine.outputs["actions"].shape == (1, 12)
        engine.inputs["obs"][...] = 0.1
        engine.run()
        assert np.isfinite(engine.outputs["actions"]).all()


def test_manifest_with_other_shapes_is_refused_naming_the_difference(tiny_actor_dir, go2):
    graph = actor_graph(obs_dim=700)
    graph["outputs"]["actions"]["dtype"] = "float16"
    write_manifest(tiny_actor_dir, go2, {"actor": graph})
    with pytest.raises(EngineMismatchError) as info:
        open_engine(tiny_actor_dir / "model.onnx")
    message = str(info.value)
    assert "model.json" in message and "model.onnx" in message
    assert "input 'obs': engine shape [1, 753] != expected [1, 700]" in message
    assert "output 'actions': engine dtype float32 != expected float16" in message


def test_manifest_with_missing_or_extra_tensors_is_refused(tiny_actor_dir, go2):
    graph = actor_graph()
    del graph["inputs"]["depth_latent"]
    graph["inputs"]["history"] = {"shape": [1, 530], "dtype": "float32"}
    write_manifest(tiny_actor_dir, go2, {"actor": graph})
    with pytest.raises(EngineMismatchError) as info:
        open_engine(tiny_actor_dir / "model.onnx")
    assert "input 'history' expected" in str(info.value)
    assert "engine input 'depth_latent'" in str(info.value)


def test_manifest_for_another_robot_is_refused(tiny_actor_dir, go2, a1):
    write_manifest(tiny_actor_dir, a1, {"actor": actor_graph()})
    with pytest.raises(EngineMismatchError) as info:
        open_engine(tiny_actor_dir / "model.onnx", robot=go2)
    message = str(info.value)
    assert "exported for robot 'a1'" in message and "robot 'go2'" in message
    assert "name: manifest 'a1' != robot 'go2'" in message


def test_manifest_with_another_joint_order_is_refused(tiny_actor_dir, go2):
    path = write_manifest(tiny_actor_dir, go2, {"actor": actor_graph()})
    data = json.loads(path.read_text())
    order = data["robot"]["joint_names_policy"]
    order[0], order[3] = order[3], order[0]
    path.write_text(json.dumps(data))
    with pytest.raises(EngineMismatchError, match="joint_names_policy: manifest"):
        open_engine(tiny_actor_dir / "model.onnx", robot=go2)


def test_replaced_model_file_is_refused_by_sha256(tiny_actor_dir, go2):
    import torch

    write_manifest(tiny_actor_dir, go2, {"actor": actor_graph()})
    torch.manual_seed(99)  # same shapes, other weights: only the digest tells them apart
    export_onnx(TinyActor(), (torch.zeros(1, 753), torch.zeros(1, 32)),
                tiny_actor_dir / "model.onnx", ["obs", "depth_latent"], ["actions"])
    with pytest.raises(EngineMismatchError, match="sha256 .* replaced or corrupted"):
        open_engine(tiny_actor_dir / "model.onnx")
    open_engine(tiny_actor_dir / "model.onnx", verify_sha256=False).close()


def test_file_not_listed_in_its_manifest_is_refused(tiny_actor_dir, go2):
    graph = actor_graph(onnx="other.onnx")
    write_manifest(tiny_actor_dir, go2, {"actor": graph})
    with pytest.raises(EngineMismatchError, match="model.onnx is not listed"):
        open_engine(tiny_actor_dir / "model.onnx")


def test_without_manifest_the_expected_shapes_still_check(tiny_actor_dir):
    engine = open_engine(tiny_actor_dir / "model.onnx", expected_shapes={"obs": (1, -1)})
    engine.close()
    with pytest.raises(EngineMismatchError,
                       match=r"expected_shapes: tensor 'obs' has shape \[1, 753\], expected \[1, 800\]"):
        open_engine(tiny_actor_dir / "model.onnx", expected_shapes={"obs": (1, 800)})


def test_backend_selection_errors(tiny_actor_dir, tmp_path):
    with pytest.raises(EngineError, match="unknown model file type '.tflite'"):
        open_engine(tmp_path / "model.tflite")
    with pytest.raises(EngineError, match="does not exist"):
        open_engine(tmp_path / "absent.onnx")
    with pytest.raises(TypeError, match="pass a OnnxRuntimeConfig"):
        from engines.torch_engine import TorchConfig

        open_engine(tiny_actor_dir / "model.onnx", config=TorchConfig())
    engine = open_engine(tiny_actor_dir / "model.onnx", config=OnnxRuntimeConfig(intra_op_threads=2))
    assert engine.describe().details["intra_op_threads"] == 2
    engine.close()
    # A checkpoint is no file type of its own here: the code that builds its modules loads it.
    (tmp_path / "model.pt").write_bytes(b"x")
    with pytest.raises(EngineError, match=r"unknown model file type '.pt'; valid: .engine, .onnx"):
        open_engine(tmp_path / "model.pt", manifest=None)


def test_a_loader_opens_other_file_types_through_the_manifest(tiny_actor_dir, go2, tmp_path):
    from tests.engine_backends.engine_models import TinyActor
    from engines.base import TensorSpec
    from engines.torch_engine import TorchEngine

    write_manifest(tiny_actor_dir, go2, {"actor": actor_graph()})
    weights = tiny_actor_dir / "model.pt"
    weights.write_bytes(b"not listed in the manifest: checkpoints are not exported files")
    seen = []

    def loader(path, graph, config):
        seen.append((path, graph, config))
        specs = [TensorSpec("obs", (1, obs_dim), np.float32),
                 TensorSpec("depth_latent", (1, 32), np.float32)]
        return TorchEngine(TinyActor(obs_dim=obs_dim), specs, ["actions"])

    obs_dim = 753
    with open_engine(weights, graph="actor", loaders={".pt": loader}, config="cfg") as engine:
        assert engine.outputs["actions"].shape == (1, 12)
    assert seen == [(weights, "actor", "cfg")]
    obs_dim = 700  # the manifest still decides what the loaded engine must look like
    with pytest.raises(EngineMismatchError, match=r"input 'obs': engine shape \[1, 700\] != "
                                                  r"expected \[1, 753\]"):
        open_engine(weights, graph="actor", loaders={".pt": loader})
    with pytest.raises(EngineMismatchError, match="does not say which graph model.pt holds"):
        open_engine(weights, loaders={".pt": loader})


# -- the manifest reader ----------------------------------------------------------------------------

def test_manifest_reader_names_the_bad_field(tmp_path, go2):
    path = write_manifest(tmp_path, go2, {"actor": actor_graph()})
    good = json.loads(path.read_text())
    manifest = load_manifest(path)
    assert manifest.graph("actor").inputs[0].shape == (1, 753)
    assert manifest.graph_for_file("model.onnx") == "actor"

    def broken(mutate) -> str:
        data = json.loads(json.dumps(good))
        mutate(data)
        path.write_text(json.dumps(data))
        with pytest.raises(ManifestError) as info:
            load_manifest(path)
        return str(info.value)

    assert "format_version 9 is not supported" in broken(lambda d: d.update(format_version=9))
    assert "missing field 'robot'" in broken(lambda d: d.pop("robot"))
    assert "graphs.actor.inputs.obs.shape: expected a list of integers" in broken(
        lambda d: d["graphs"]["actor"]["inputs"]["obs"].update(shape=[1, "x"]))
    assert "'float33' is not a numpy dtype" in broken(
        lambda d: d["graphs"]["actor"]["inputs"]["obs"].update(dtype="float33"))
    # engines know no policy: any graph name reads, unless the caller names its graphs
    data = json.loads(json.dumps(good))
    data["graphs"]["policy"] = data["graphs"]["actor"]
    path.write_text(json.dumps(data))
    assert set(load_manifest(path).graphs) == set(good["graphs"]) | {"policy"}
    with pytest.raises(ManifestError, match=r"graphs\.policy: unknown graph; valid: \['actor', 'depth'\]"):
        load_manifest(path, graphs=("actor", "depth"))
    with pytest.raises(ManifestError, match=r"graphs\.policy: unknown graph"):
        load_policy_manifest(path)  # the policy side names its own graphs
    path.write_text("{not json")
    with pytest.raises(ManifestError, match="not a readable JSON manifest"):
        load_manifest(path)
    with pytest.raises(ManifestError, match="does not exist"):
        load_manifest(tmp_path / "nope.json")

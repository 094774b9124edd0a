"""The real deploy graphs of a (synthetic, untrained) parkour policy through every backend here.

The checkpoint comes from ``compute.parkour.synthetic``; the ONNX files are the two exported
graphs of docs/architecture.md#the-policy-graphs-and-the-manifest (``model.onnx``,
``model.depth.onnx``) with their tensor names. ONNX Runtime must agree with the torch reference
within 1e-5 on both, over several recurrent depth steps.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from compute.parkour.graphs import open_policy_graph, torch_engine_from_policy  # noqa: E402
from compute.parkour.layout import ObservationLayout  # noqa: E402
from engines.onnxruntime_engine import OnnxRuntimeEngine  # noqa: E402
from engines.torch_engine import TorchConfig, TorchEngine  # noqa: E402

ATOL = 1e-5


def _export_graphs(policy, directory: Path) -> tuple[Path, Path]:
    """The two deploy graphs as ONNX, named as krabby-export names them."""
    arch = policy.arch
    actor, depth = directory / "model.onnx", directory / "model.depth.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(policy.actor_step, (torch.zeros(1, arch.obs_dim),
                                              torch.zeros(1, arch.depth_latent_dim)),
                          str(actor), input_names=["obs", "depth_latent"],
                          output_names=["actions"], dynamo=False)
        torch.onnx.export(policy.depth_step, (torch.zeros(1, arch.depth_height, arch.depth_width),
                                              torch.zeros(1, arch.num_prop),
                                              torch.zeros(1, 1, arch.depth_hidden_dim)),
                          str(depth), input_names=["depth", "proprio", "hidden_in"],
                          output_names=["latent_yaw", "hidden_out"], dynamo=False)
    return actor, depth


@pytest.fixture(scope="module")
def exported(tmp_path_factory, go2):
    from compute.parkour.checkpoint import load_checkpoint
    from compute.parkour.synthetic import write_synthetic_checkpoint

    directory = tmp_path_factory.mktemp("policy")
    checkpoint = write_synthetic_checkpoint(directory / "model.pt", go2, seed=7)
    policy = load_checkpoint(checkpoint, go2)
    actor, depth = _export_graphs(policy, directory)
    return {"checkpoint": checkpoint, "policy": policy, "actor": actor, "depth": depth}


def _observation(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.clip(rng.standard_normal((1, n)), -100, 100).astype(np.float32)


@pytest.mark.parametrize("jit_trace", [False, True], ids=["eager", "torchscript"])
def test_actor_step_onnxruntime_matches_torch(exported, go2, jit_trace):
    ref = torch_engine_from_policy(exported["policy"], "actor", TorchConfig(jit_trace=jit_trace))
    ort_engine = open_policy_graph(exported["actor"], go2, manifest=None)
    assert isinstance(ort_engine, OnnxRuntimeEngine)
    assert ort_engine.describe().inputs == ref.describe().inputs
    assert ort_engine.describe().outputs == ref.describe().outputs
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(8):
        obs = _observation(rng, ObservationLayout.from_robot(go2).obs_dim)
        latent = np.tanh(rng.standard_normal((1, 32))).astype(np.float32)
        for engine in (ref, ort_engine):
            engine.inputs["obs"][...] = obs
            engine.inputs["depth_latent"][...] = latent
            engine.run()
        worst = max(worst, float(np.abs(ref.outputs["actions"] - ort_engine.outputs["actions"]).max()))
    assert worst <= ATOL, f"max |torch - onnxruntime| = {worst:.2e}"
    assert np.abs(ref.outputs["actions"]).max() > 0  # a real, non-trivial output


def test_depth_step_onnxruntime_matches_torch_over_recurrent_steps(exported, go2):
    ref = torch_engine_from_policy(exported["policy"], "depth")
    ort_engine = open_policy_graph(exported["depth"], go2, manifest=None)
    assert ort_engine.inputs["hidden_in"].shape == (1, 1, 512)
    rng = np.random.default_rng(1)
    worst = {"latent_yaw": 0.0, "hidden_out": 0.0}
    for _ in range(5):
        depth = rng.uniform(-0.5, 0.5, (1, 58, 87)).astype(np.float32)
        proprio = _observation(rng, ObservationLayout.from_robot(go2).proprio_dim)
        proprio[0, 6:8] = 0.0
        for engine in (ref, ort_engine):
            engine.inputs["depth"][...] = depth
            engine.inputs["proprio"][...] = proprio
            engine.run()
            engine.inputs["hidden_in"][...] = engine.outputs["hidden_out"]  # the GRU state loop
        for name in worst:
            worst[name] = max(worst[name], float(np.abs(ref.outputs[name] -
                                                        ort_engine.outputs[name]).max()))
    assert max(worst.values()) <= ATOL, f"max |torch - onnxruntime| per output: {worst}"
    assert np.abs(ref.inputs["hidden_in"]).max() > 0


def test_checkpoint_opens_as_the_torch_reference(exported, go2):
    actor = open_policy_graph(exported["checkpoint"], go2, graph="actor")
    depth = open_policy_graph(exported["checkpoint"], go2, graph="depth")
    assert isinstance(actor, TorchEngine) and isinstance(depth, TorchEngine)
    assert [s.name for s in actor.input_specs] == ["obs", "depth_latent"]
    assert [s.name for s in depth.output_specs] == ["latent_yaw", "hidden_out"]
    assert depth.outputs["latent_yaw"].shape == (1, 34)
    actor.inputs["obs"][...] = 0.5
    actor.run()
    expected = exported["policy"].actor_step(torch.full((1, ObservationLayout.from_robot(go2).obs_dim), 0.5),
                                              torch.zeros(1, 32)).detach().numpy()
    np.testing.assert_allclose(actor.outputs["actions"], expected, atol=1e-6)


def test_teacher_checkpoint_has_no_depth_graph(tmp_path, go2):
    from compute.parkour.synthetic import write_synthetic_checkpoint
    from engines import EngineError

    teacher = write_synthetic_checkpoint(tmp_path / "teacher.pt", go2, seed=1, teacher=True)
    actor = open_policy_graph(teacher, go2)
    assert [s.name for s in actor.input_specs] == ["obs"]
    with pytest.raises(EngineError, match="teacher checkpoint has no depth step"):
        open_policy_graph(teacher, go2, graph="depth")


def test_checkpoint_for_another_robot_is_refused(exported):
    from pathlib import Path as _P

    from engines import EngineError
    from hal.robot import load_robot

    hexapod = load_robot(_P(__file__).resolve().parents[1] / "data" / "hexapod18.toml")
    with pytest.raises(EngineError, match="does not fit robot"):
        open_policy_graph(exported["checkpoint"], hexapod)


def test_the_robot_checks_the_tensor_sizes_without_a_manifest(tiny_actor_dir, go2):
    from engines import EngineMismatchError
    from hal.robot import load_robot

    with open_policy_graph(tiny_actor_dir / "model.onnx", go2, expected_shapes={"obs": (1, -1)}) as e:
        assert e.inputs["obs"].shape == (1, ObservationLayout.from_robot(go2).obs_dim)
    hexapod = load_robot(Path(__file__).resolve().parents[1] / "data" / "hexapod18.toml")
    with pytest.raises(EngineMismatchError, match=r"robot '.*': tensor 'obs' has shape \[1, 753\], "
                                                   rf"expected \[1, {ObservationLayout.from_robot(hexapod).obs_dim}\]"):
        open_policy_graph(tiny_actor_dir / "model.onnx", hexapod)


def test_the_depth_graph_is_picked_by_name(tiny_actor_dir, go2):
    from tests.engine_backends.engine_models import actor_graph, write_manifest
    from engines.manifest import ManifestError

    # A file named *.depth.onnx is checked against the manifest's depth graph.
    (tiny_actor_dir / "model.onnx").rename(tiny_actor_dir / "model.depth.onnx")
    write_manifest(tiny_actor_dir, go2, {"actor": actor_graph()})
    with pytest.raises(ManifestError, match="no 'depth' graph"):
        open_policy_graph(tiny_actor_dir / "model.depth.onnx", go2)


def test_unknown_graph_and_unreadable_checkpoint_are_refused(tiny_actor_dir, tmp_path, go2):
    from engines import EngineError

    with pytest.raises(EngineError, match=r"graph 'policy' is not one of \['actor', 'depth'\]"):
        open_policy_graph(tiny_actor_dir / "model.onnx", go2, graph="policy")
    (tmp_path / "model.pt").write_bytes(b"x")
    with pytest.raises(EngineError, match="model.pt"):
        open_policy_graph(tmp_path / "model.pt", go2, manifest=None)


# -- through krabby-export: the real artefacts and their manifest -----------------------------------

@pytest.fixture(scope="module")
def krabby_exported(tmp_path_factory, go2):
    exporter = pytest.importorskip("export.exporter")
    from compute.parkour.synthetic import write_synthetic_checkpoint

    directory = tmp_path_factory.mktemp("krabby_export")
    checkpoint = write_synthetic_checkpoint(directory / "model.pt", go2, seed=2)
    result = exporter.export_checkpoint(checkpoint, exporter.ExportOptions(parity_samples=2))
    return {"checkpoint": checkpoint, "manifest": result.manifest_path,
            "actor": directory / "model.onnx", "depth": directory / "model.depth.onnx"}


@pytest.mark.slow
def test_exported_graphs_open_through_their_manifest_and_match_torch(krabby_exported, go2):
    ort_actor = open_policy_graph(krabby_exported["actor"], go2)
    ort_depth = open_policy_graph(krabby_exported["depth"], go2)
    ref_actor = open_policy_graph(krabby_exported["checkpoint"], go2, graph="actor")
    ref_depth = open_policy_graph(krabby_exported["checkpoint"], go2, graph="depth")
    assert isinstance(ort_depth, OnnxRuntimeEngine) and isinstance(ref_depth, TorchEngine)
    rng = np.random.default_rng(3)
    worst = 0.0
    for _ in range(4):
        depth = rng.uniform(-0.5, 0.5, (1, 58, 87)).astype(np.float32)
        proprio = _observation(rng, ObservationLayout.from_robot(go2).proprio_dim)
        obs = _observation(rng, ObservationLayout.from_robot(go2).obs_dim)
        for d_engine, a_engine in ((ref_depth, ref_actor), (ort_depth, ort_actor)):
            # The deploy data flow: depth step → latent into the actor, GRU state fed back.
            d_engine.inputs["depth"][...] = depth
            d_engine.inputs["proprio"][...] = proprio
            d_engine.run()
            d_engine.inputs["hidden_in"][...] = d_engine.outputs["hidden_out"]
            a_engine.inputs["obs"][...] = obs
            a_engine.inputs["depth_latent"][...] = d_engine.outputs["latent_yaw"][:, :32]
            a_engine.run()
        for ref, got in ((ref_actor, ort_actor), (ref_depth, ort_depth)):
            for name in ref.outputs:
                worst = max(worst, float(np.abs(ref.outputs[name] - got.outputs[name]).max()))
    assert worst <= ATOL, f"max |torch - onnxruntime| = {worst:.2e}"


@pytest.mark.slow
def test_exported_manifest_refuses_another_robot_and_edited_shapes(krabby_exported, go2, a1):
    import json

    from engines import EngineMismatchError

    with pytest.raises(EngineMismatchError, match="exported for robot 'go2'"):
        open_policy_graph(krabby_exported["actor"], a1)
    path = krabby_exported["manifest"]
    original = path.read_text()
    try:
        data = json.loads(original)
        data["graphs"]["depth"]["inputs"]["hidden_in"]["shape"] = [1, 1, 256]
        path.write_text(json.dumps(data))
        with pytest.raises(EngineMismatchError,
                           match=r"input 'hidden_in': engine shape \[1, 1, 512\] != expected "
                                 r"\[1, 1, 256\]"):
            open_policy_graph(krabby_exported["depth"], go2)
    finally:
        path.write_text(original)

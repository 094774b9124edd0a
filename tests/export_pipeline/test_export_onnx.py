"""Exported graphs: layout, manifest, and ONNX Runtime against torch on fresh inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from compute.parkour.checkpoint import load_checkpoint  # noqa: E402
from engines import open_engine  # noqa: E402
from engines.manifest import load_manifest  # noqa: E402

pytestmark = pytest.mark.slow  # exports whole policies

ATOL = 1e-5


def io_of(path):
    model = onnx.load(str(path))

    def shape(v):
        return [d.dim_value for d in v.type.tensor_type.shape.dim]

    return ({i.name: shape(i) for i in model.graph.input},
            {o.name: shape(o) for o in model.graph.output},
            {o.domain or "ai.onnx": o.version for o in model.opset_import})


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def test_student_files_and_tensors(student_export):
    names = sorted(p.name for p in student_export.iterdir())
    assert names == ["student.depth.onnx", "student.json", "student.onnx"]
    inputs, outputs, opsets = io_of(student_export / "student.onnx")
    assert inputs == {"obs": [1, 753], "depth_latent": [1, 32]}
    assert outputs == {"actions": [1, 12]}
    assert opsets["ai.onnx"] == 17
    inputs, outputs, _ = io_of(student_export / "student.depth.onnx")
    assert inputs == {"depth": [1, 58, 87], "proprio": [1, 53], "hidden_in": [1, 1, 512]}
    assert outputs == {"latent_yaw": [1, 34], "hidden_out": [1, 1, 512]}
    for name in ("student.onnx", "student.depth.onnx"):
        onnx.checker.check_model(onnx.load(str(student_export / name)), full_check=True)
        # Constant folding and the explicit GRU cell leave no shape computations in the graph.
        ops = {n.op_type for n in onnx.load(str(student_export / name)).graph.node}
        assert not ops & {"Shape", "GRU", "Loop"}, ops


def test_manifest_contents(student_export, go2, checkpoints):
    manifest = load_manifest(student_export / "student.json")
    manifest.check_robot(go2)
    for name in ("student.onnx", "student.depth.onnx"):
        manifest.verify_file(student_export / name)
    raw = json.loads((student_export / "student.json").read_text())
    assert raw["robot"]["joint_names_policy"] == list(go2.joint_names_policy)
    assert raw["robot"]["default_angles"] == pytest.approx(list(go2.default_angles))
    assert raw["robot"]["action_scale"] == 0.25
    assert raw["observation_layout"]["blocks"]["priv_explicit"] == [185, 194]
    assert raw["observation_layout"]["blocks"]["history"] == [223, 753]
    assert raw["versions"]["torch"].startswith("2.") and raw["versions"]["onnxruntime"]
    assert raw["versions"]["onnx"] and raw["versions"]["tensorrt"] is None
    assert raw["tensorrt"] is None and raw["precision"] == "fp32"
    assert raw["source"]["synthetic"] is True and raw["kind"] == "student"
    assert raw["export"]["opset"] == 17 and raw["export"]["requested_precision"] == "fp16"
    report = raw["parity"]["onnxruntime"]
    assert report["passed"] and raw["parity"]["rollout_steps"] == 50
    for graph, outputs in (("actor", ["actions"]),
                           ("depth", ["latent_yaw", "hidden_out", "latent_yaw_rollout",
                                      "hidden_rollout"])):
        for name in outputs:
            entry = report["graphs"][graph][name]
            assert entry["max_abs"] <= ATOL and entry["passed"], (graph, name, entry)
            assert {"max_rel", "scale", "atol", "rtol", "samples"} <= entry.keys()
    graph = manifest.graph("depth")
    assert [s.name for s in graph.inputs] == ["depth", "proprio", "hidden_in"]
    assert graph.files == {"onnx": "student.depth.onnx"}


def test_onnxruntime_matches_torch_on_fresh_inputs(student_export, checkpoints, go2):
    policy = load_checkpoint(checkpoints["student"], go2)
    actor = session(student_export / "student.onnx")
    depth = session(student_export / "student.depth.onnx")
    rng = np.random.default_rng(12345)  # not the export's parity seed
    with torch.no_grad():
        for _ in range(20):
            obs = rng.uniform(-3, 3, (1, 753)).astype(np.float32)
            latent = rng.uniform(-1, 1, (1, 32)).astype(np.float32)
            (got,) = actor.run(None, {"obs": obs, "depth_latent": latent})
            want = policy.actor_step(torch.from_numpy(obs), torch.from_numpy(latent)).numpy()
            np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)
        # 50-step GRU rollout: ORT and torch each carry their own hidden state.
        h_ort = np.zeros((1, 1, 512), np.float32)
        h_torch = torch.zeros(1, 1, 512)
        for step in range(50):
            image = rng.uniform(-0.5, 0.5, (1, 58, 87)).astype(np.float32)
            proprio = rng.normal(0, 1, (1, 53)).astype(np.float32)
            proprio[:, 6:8] = 0
            out_ort, h_ort = depth.run(None, {"depth": image, "proprio": proprio, "hidden_in": h_ort})
            out_torch, h_torch = policy.depth_step(torch.from_numpy(image),
                                                   torch.from_numpy(proprio), h_torch)
            np.testing.assert_allclose(out_ort, out_torch.numpy(), atol=ATOL, rtol=0,
                                       err_msg=f"step {step}")
            np.testing.assert_allclose(h_ort, h_torch.numpy(), atol=ATOL, rtol=0,
                                       err_msg=f"step {step}")
    assert np.abs(h_ort).max() > 0.05  # the state is really carried


def test_runtime_opens_the_export_through_its_manifest(student_export, go2):
    with open_engine(student_export / "student.onnx", robot=go2) as actor:
        assert [s.name for s in actor.input_specs] == ["obs", "depth_latent"]
        actor.run()
    with open_engine(student_export / "student.depth.onnx", robot=go2) as depth:
        assert depth.outputs["hidden_out"].shape == (1, 1, 512)


def test_teacher_export(teacher_export, checkpoints, go2):
    assert sorted(p.name for p in teacher_export.iterdir()) == ["teacher.json", "teacher.onnx"]
    inputs, outputs, _ = io_of(teacher_export / "teacher.onnx")
    assert inputs == {"obs": [1, 753]} and outputs == {"actions": [1, 12]}
    raw = json.loads((teacher_export / "teacher.json").read_text())
    assert raw["kind"] == "teacher" and set(raw["graphs"]) == {"actor"}
    policy = load_checkpoint(checkpoints["teacher"], go2)
    actor = session(teacher_export / "teacher.onnx")
    rng = np.random.default_rng(7)
    with torch.no_grad():
        for _ in range(10):
            obs = rng.normal(0, 2, (1, 753)).astype(np.float32)
            (got,) = actor.run(None, {"obs": obs})
            np.testing.assert_allclose(got, policy.actor_step(torch.from_numpy(obs)).numpy(),
                                       atol=ATOL, rtol=0)


def test_hexapod_export(tmp_path, checkpoints, hexapod_toml):
    from export.cli import main

    assert main(["--checkpoint", str(checkpoints["hexapod"]), "--robot", str(hexapod_toml),
                 "--output", str(tmp_path / "hex"), "--parity-samples", "2", "--quiet"]) == 0
    inputs, outputs, _ = io_of(tmp_path / "hex.onnx")
    assert inputs == {"obs": [1, 973], "depth_latent": [1, 32]} and outputs == {"actions": [1, 18]}
    inputs, _, _ = io_of(tmp_path / "hex.depth.onnx")
    assert inputs["proprio"] == [1, 73]
    manifest = load_manifest(tmp_path / "hex.json")
    assert manifest.robot["name"] == "hexapod18"
    assert manifest.extra["observation_layout"]["obs_dim"] == 973  # the policy's facts, not the robot's

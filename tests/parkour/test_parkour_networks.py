"""Module layout against the upstream checkpoint table, and the deploy graphs against a
functional re-implementation that reads the checkpoint tensors directly."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from compute.parkour.checkpoint import load_checkpoint  # noqa: E402
from compute.parkour.networks import (  # noqa: E402
    ActorCritic,
    Estimator,
    PolicyArchitecture,
    RecurrentDepthEncoder,
)
from compute.parkour.synthetic import make_synthetic_checkpoint, write_synthetic_checkpoint  # noqa: E402

# The upstream layout (docs/architecture.md#the-checkpoint), written out by hand for the 12-joint
# robot (P = 53, 753 observations).
UPSTREAM_ACTOR = {
    "priv_encoder.0.weight": (64, 29), "priv_encoder.0.bias": (64,),
    "priv_encoder.2.weight": (20, 64), "priv_encoder.2.bias": (20,),
    "history_encoder.encoder.0.weight": (30, 53), "history_encoder.encoder.0.bias": (30,),
    "history_encoder.conv_layers.0.weight": (20, 30, 4), "history_encoder.conv_layers.0.bias": (20,),
    "history_encoder.conv_layers.2.weight": (10, 20, 2), "history_encoder.conv_layers.2.bias": (10,),
    "history_encoder.linear_output.0.weight": (20, 30), "history_encoder.linear_output.0.bias": (20,),
    "scan_encoder.0.weight": (128, 132), "scan_encoder.0.bias": (128,),
    "scan_encoder.2.weight": (64, 128), "scan_encoder.2.bias": (64,),
    "scan_encoder.4.weight": (32, 64), "scan_encoder.4.bias": (32,),
    "actor_backbone.0.weight": (512, 114), "actor_backbone.0.bias": (512,),
    "actor_backbone.2.weight": (256, 512), "actor_backbone.2.bias": (256,),
    "actor_backbone.4.weight": (128, 256), "actor_backbone.4.bias": (128,),
    "actor_backbone.6.weight": (12, 128), "actor_backbone.6.bias": (12,),
}
UPSTREAM_ESTIMATOR = {
    "estimator.0.weight": (128, 53), "estimator.0.bias": (128,),
    "estimator.2.weight": (64, 128), "estimator.2.bias": (64,),
    "estimator.4.weight": (9, 64), "estimator.4.bias": (9,),
}
UPSTREAM_DEPTH = {
    "base_backbone.image_compression.0.weight": (32, 1, 5, 5),
    "base_backbone.image_compression.0.bias": (32,),
    "base_backbone.image_compression.3.weight": (64, 32, 3, 3),
    "base_backbone.image_compression.3.bias": (64,),
    "base_backbone.image_compression.6.weight": (128, 62400),
    "base_backbone.image_compression.6.bias": (128,),
    "base_backbone.image_compression.8.weight": (32, 128),
    "base_backbone.image_compression.8.bias": (32,),
    "combination_mlp.0.weight": (128, 85), "combination_mlp.0.bias": (128,),
    "combination_mlp.2.weight": (32, 128), "combination_mlp.2.bias": (32,),
    "rnn.weight_ih_l0": (1536, 32), "rnn.weight_hh_l0": (1536, 512),
    "rnn.bias_ih_l0": (1536,), "rnn.bias_hh_l0": (1536,),
    "output_mlp.0.weight": (34, 512), "output_mlp.0.bias": (34,),
}


def shapes(module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_state_dict_keys_match_upstream_layout(go2):
    arch = PolicyArchitecture.from_robot(go2)
    with torch.device("meta"):
        ac, est, enc = ActorCritic(arch), Estimator(arch), RecurrentDepthEncoder(arch)
    ac_shapes = shapes(ac)
    assert {k[len("actor."):]: v for k, v in ac_shapes.items() if k.startswith("actor.")} \
        == UPSTREAM_ACTOR
    assert ac_shapes["std"] == (12,)
    assert ac_shapes["critic.0.weight"] == (512, 753)
    assert shapes(est) == UPSTREAM_ESTIMATOR
    assert shapes(enc) == UPSTREAM_DEPTH
    assert arch.obs_dim == 753


def test_hexapod_dimensions_follow_the_robot(hexapod):
    arch = PolicyArchitecture.from_robot(hexapod)
    assert (arch.num_prop, arch.num_actions, arch.obs_dim) == (73, 18, 973)
    with torch.device("meta"):
        ac, est, enc = ActorCritic(arch), Estimator(arch), RecurrentDepthEncoder(arch)
    s = shapes(ac)
    assert s["actor.history_encoder.encoder.0.weight"] == (30, 73)
    assert s["actor.actor_backbone.0.weight"] == (512, 73 + 32 + 9 + 20)
    assert s["actor.actor_backbone.6.weight"] == (18, 128)
    assert shapes(est)["estimator.0.weight"] == (128, 73)
    assert shapes(enc)["combination_mlp.0.weight"] == (128, 32 + 73)


# ---- independent functional reference, reading checkpoint tensors by name ------------------------

def ref_actor(actor_sd, prefix, est_sd, obs, scan_latent, P=53, n_scan=132, n_hist=10):
    def lin(x, name):
        return F.linear(x, actor_sd[f"{prefix}{name}.weight"], actor_sd[f"{prefix}{name}.bias"])

    proprio = obs[:, :P]
    e = F.elu(F.linear(proprio, est_sd["estimator.0.weight"], est_sd["estimator.0.bias"]))
    e = F.elu(F.linear(e, est_sd["estimator.2.weight"], est_sd["estimator.2.bias"]))
    priv_explicit = F.linear(e, est_sd["estimator.4.weight"], est_sd["estimator.4.bias"])
    if scan_latent is None:
        s = F.elu(lin(obs[:, P:P + n_scan], "scan_encoder.0"))
        s = F.elu(lin(s, "scan_encoder.2"))
        scan_latent = torch.tanh(lin(s, "scan_encoder.4"))
    frames = obs[0, obs.shape[1] - n_hist * P:].reshape(n_hist, P)
    proj = F.elu(lin(frames, "history_encoder.encoder.0"))          # [T, 30]
    x = proj.t().unsqueeze(0)                                        # [1, 30, T]
    x = F.elu(F.conv1d(x, actor_sd[f"{prefix}history_encoder.conv_layers.0.weight"],
                       actor_sd[f"{prefix}history_encoder.conv_layers.0.bias"], stride=2))
    x = F.elu(F.conv1d(x, actor_sd[f"{prefix}history_encoder.conv_layers.2.weight"],
                       actor_sd[f"{prefix}history_encoder.conv_layers.2.bias"], stride=1))
    hist_latent = F.elu(lin(x.flatten(1), "history_encoder.linear_output.0"))
    h = torch.cat([proprio, scan_latent, priv_explicit, hist_latent], dim=1)
    for i in (0, 2, 4):
        h = F.elu(lin(h, f"actor_backbone.{i}"))
    return lin(h, "actor_backbone.6")


def ref_depth(sd, depth, proprio, hidden):
    def lin(x, name):
        return F.linear(x, sd[f"{name}.weight"], sd[f"{name}.bias"])

    ic = "base_backbone.image_compression"
    x = F.conv2d(depth.unsqueeze(1), sd[f"{ic}.0.weight"], sd[f"{ic}.0.bias"])
    x = F.elu(F.max_pool2d(x, 2, 2))
    x = F.elu(F.conv2d(x, sd[f"{ic}.3.weight"], sd[f"{ic}.3.bias"]))
    x = F.elu(lin(x.flatten(1), f"{ic}.6"))
    x = F.elu(lin(x, f"{ic}.8"))
    x = lin(F.elu(lin(torch.cat([x, proprio], 1), "combination_mlp.0")), "combination_mlp.2")
    gru = torch.nn.GRU(32, 512, batch_first=True)
    gru.load_state_dict({k[len("rnn."):]: v for k, v in sd.items() if k.startswith("rnn.")})
    out, hidden = gru(x[:, None, :], hidden)
    return torch.tanh(lin(out[:, 0], "output_mlp.0")), hidden


@pytest.fixture(scope="module")
def student_data(go2):
    return make_synthetic_checkpoint(go2, seed=11)


def test_student_actor_step_matches_reference(student_data, student_path, go2, tmp_path):
    path = tmp_path / "s.pt"
    torch.save(student_data, path)
    policy = load_checkpoint(path, go2)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(5):
            obs = torch.randn(1, 753, generator=gen)
            latent = torch.rand(1, 32, generator=gen) * 2 - 1
            got = policy.actor_step(obs, latent)
            want = ref_actor(student_data["depth_actor_state_dict"], "",
                             student_data["estimator_state_dict"], obs, latent)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
            # The deploy actor is the depth actor, not the teacher actor of model_state_dict.
            teacher = ref_actor(student_data["model_state_dict"], "actor.",
                                student_data["estimator_state_dict"], obs, latent)
            assert (got - teacher).abs().max() > 1e-4
            # obs[185:194] is replaced by the estimator: its input values do not matter.
            changed = obs.clone()
            changed[:, 185:194] = 50.0
            torch.testing.assert_close(policy.actor_step(changed, latent), got)


def test_teacher_actor_step_runs_scan_encoder(teacher_path, go2):
    from compute.parkour.checkpoint import read_checkpoint

    data = read_checkpoint(teacher_path)
    policy = load_checkpoint(teacher_path, go2)
    assert policy.depth_step is None and not policy.is_student
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        obs = torch.randn(1, 753, generator=gen)
        got = policy.actor_step(obs)
        want = ref_actor(data["model_state_dict"], "actor.", data["estimator_state_dict"], obs, None)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_depth_step_matches_gru_reference_over_rollout(student_data, go2, tmp_path):
    path = tmp_path / "s.pt"
    torch.save(student_data, path)
    policy = load_checkpoint(path, go2)
    sd = student_data["depth_encoder_state_dict"]
    gen = torch.Generator().manual_seed(2)
    hidden_step = hidden_ref = torch.zeros(1, 1, 512)
    with torch.no_grad():
        for _ in range(20):
            depth = torch.rand(1, 58, 87, generator=gen) - 0.5
            proprio = torch.randn(1, 53, generator=gen)
            out, hidden_step = policy.depth_step(depth, proprio, hidden_step)
            want, hidden_ref = ref_depth(sd, depth, proprio, hidden_ref)
            torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(hidden_step, hidden_ref, rtol=1e-5, atol=1e-6)
    assert out.shape == (1, 34) and hidden_step.shape == (1, 1, 512)
    assert hidden_step.abs().max() > 0.01  # the state really evolves


def test_hexapod_checkpoint_loads_and_runs(hexapod, tmp_path):
    path = write_synthetic_checkpoint(tmp_path / "hex.pt", hexapod, seed=5)
    policy = load_checkpoint(path, hexapod)
    with torch.no_grad():
        actions = policy.actor_step(torch.randn(1, 973), torch.zeros(1, 32))
        latent_yaw, hidden = policy.depth_step(torch.zeros(1, 58, 87), torch.zeros(1, 73),
                                               policy.initial_hidden())
    assert actions.shape == (1, 18)
    assert latent_yaw.shape == (1, 34) and hidden.shape == (1, 1, 512)


def test_synthetic_checkpoint_is_seeded_and_small(go2):
    a = make_synthetic_checkpoint(go2, seed=7)
    b = make_synthetic_checkpoint(go2, seed=7)
    c = make_synthetic_checkpoint(go2, seed=8)
    key = "base_backbone.image_compression.6.weight"
    assert torch.equal(a["depth_encoder_state_dict"][key], b["depth_encoder_state_dict"][key])
    assert not torch.equal(a["depth_encoder_state_dict"][key], c["depth_encoder_state_dict"][key])
    assert a["infos"]["krabby_synthetic"] is True
    obs = torch.randn(64, 753, generator=torch.Generator().manual_seed(0))
    actions = ref_actor(a["depth_actor_state_dict"], "", a["estimator_state_dict"], obs[:1],
                        torch.zeros(1, 32))
    assert actions.abs().max() < 0.5  # far inside the ±4.8 clip

"""An Isaac Lab ordered policy round-trips to the same motor targets as its legged_gym twin.

The twin is made here, independently of the runtime's reordering: the synthetic legged_gym
checkpoint's weights are permuted into Isaac Lab's joint and foot order (every layer that reads the
proprio frame gets its joint and foot columns permuted; the action layer its rows). Exported once
per convention and run through the same hardware observations, both must command the motors alike.
"""

from __future__ import annotations

import numpy as np
import pytest

from compute.parkour.observation import PolicyCommand

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

LEGGED_GYM = [f"{leg}_{part}_joint" for leg in ("FR", "FL", "RR", "RL")
              for part in ("hip", "thigh", "calf")]
ISAAC_LAB = [f"{leg}_{part}_joint" for part in ("hip", "thigh", "calf")
             for leg in ("FL", "FR", "RL", "RR")]
FEET_LG = ["FR", "FL", "RR", "RL"]
FEET_IL = ["FL", "FR", "RL", "RR"]


def proprio_permutation() -> list[int]:
    """new_proprio[i] = old_proprio[perm[i]] for the 53-value frame (13 + 3 × 12 + 4)."""
    perm = list(range(13))
    for block in (13, 25, 37):
        perm += [block + LEGGED_GYM.index(name) for name in ISAAC_LAB]
    perm += [49 + FEET_LG.index(foot) for foot in FEET_IL]
    return perm


def isaac_twin(checkpoint: dict) -> dict:
    perm = torch.tensor(proprio_permutation())
    actions = torch.tensor([LEGGED_GYM.index(name) for name in ISAAC_LAB])
    twin = {key: value for key, value in checkpoint.items()}
    model = dict(checkpoint["model_state_dict"])
    key = "actor.history_encoder.encoder.0.weight"
    model[key] = model[key][:, perm].clone()
    key = "actor.actor_backbone.0.weight"
    weight = model[key].clone()
    weight[:, :53] = model[key][:, :53][:, perm]
    model[key] = weight
    for key in ("actor.actor_backbone.6.weight", "actor.actor_backbone.6.bias", "std"):
        model[key] = model[key][actions].clone()
    twin["model_state_dict"] = model
    estimator = dict(checkpoint["estimator_state_dict"])
    estimator["estimator.0.weight"] = estimator["estimator.0.weight"][:, perm].clone()
    twin["estimator_state_dict"] = estimator
    return twin


def test_isaac_lab_twin_commands_the_same_targets(tmp_path, go2):
    from compute.parkour.policy import ParkourPolicy
    from compute.parkour.policy_engines import open_policy_engines
    from compute.parkour.synthetic import make_synthetic_checkpoint
    from export.cli import main as export_main

    checkpoint = make_synthetic_checkpoint(go2, seed=5, teacher=True)
    torch.save(checkpoint, tmp_path / "lg.pt")
    torch.save(isaac_twin(checkpoint), tmp_path / "il.pt")
    assert export_main(["--checkpoint", str(tmp_path / "lg.pt"), "--parity-samples", "2",
                        "--quiet"]) == 0
    assert export_main(["--checkpoint", str(tmp_path / "il.pt"), "--joint-order", "isaac_lab",
                        "--parity-samples", "2", "--quiet"]) == 0
    policies, engines = [], []
    for name in ("lg", "il"):
        opened = open_policy_engines(go2, engine=tmp_path / f"{name}.onnx")
        engines.append(opened)
        policies.append(ParkourPolicy(opened.robot, opened.actor))
    assert policies[1].robot.joint_names_policy[0] == "FL_hip_joint"
    rng = np.random.default_rng(0)
    default_hw = np.asarray(go2.to_hardware(go2.default_angles), np.float32)
    heights = rng.uniform(0.1, 0.5, 132).astype(np.float32)
    try:
        for step in range(12):
            class Hw:
                joint_position_rad = default_hw + rng.normal(0, 0.1, 12).astype(np.float32)
                joint_velocity_rad_s = rng.normal(0, 1.0, 12).astype(np.float32)
                imu_quaternion_wxyz = np.array([0.999, 0.02, -0.03, 0.01], np.float32)
                imu_angular_velocity_rad_s = rng.normal(0, 0.3, 3).astype(np.float32)
                foot_force_n = rng.choice([0.0, 60.0], 4).astype(np.float32)  # FR, FL, RR, RL

            if step == 0:
                for policy in policies:
                    policy.reset(Hw)
            targets = [policy.actor_step(Hw, PolicyCommand(0.7), engaged=step > 2,
                                         height_scan_m=heights).copy() for policy in policies]
            np.testing.assert_allclose(targets[1], targets[0], atol=2e-5)
            assert np.abs(targets[0] - default_hw).max() > 1e-3  # the policy does something
    finally:
        for opened in engines:
            opened.close()

"""The training contract: built from a robot definition or a run's training config, carried in the
manifest, applied to the robot the runtime runs, and checked against the HAL's control rate."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from hal.toml_compat import tomllib
from compute.parkour.contract import (
    ContractError,
    TrainingContract,
    command_interval_ticks,
    joint_order_for,
)
from compute.parkour.train_config import load_train_config

ROBOTS = Path(__file__).resolve().parents[2] / "hal" / "robots"


def toml_joints(name: str) -> dict[str, dict]:
    """The robot file's joints by name, read with tomllib (not through hal.robot)."""
    data = tomllib.loads((ROBOTS / f"{name}.toml").read_text())
    return {joint["name"]: joint for joint in data["joint"]}


def test_contract_from_the_robot_definition_round_trips(go2):
    contract = TrainingContract.from_robot(go2)
    assert contract.policy_rate_hz == 50.0
    assert contract.joint_order_convention == "legged_gym"
    joints = toml_joints("go2")
    for name, default in zip(contract.joint_names_policy, contract.default_angles_rad):
        assert default == joints[name]["default"]
    again = TrainingContract.from_dict(json.loads(json.dumps(contract.to_dict())))
    assert again == contract


@pytest.mark.parametrize("key", ["policy_rate_hz", "camera", "kp"])
def test_a_manifest_contract_missing_a_key_is_refused_by_name(go2, key):
    data = TrainingContract.from_robot(go2).to_dict()
    del data[key]
    with pytest.raises(ContractError, match=key):
        TrainingContract.from_dict(data)


def test_isaac_lab_order_groups_joints_by_type(go2):
    joints, feet = joint_order_for("isaac_lab", go2)
    assert joints[:4] == ("FL_hip_joint", "FR_hip_joint", "RL_hip_joint", "RR_hip_joint")
    assert joints[4:8] == ("FL_thigh_joint", "FR_thigh_joint", "RL_thigh_joint", "RR_thigh_joint")
    assert joints[8:] == ("FL_calf_joint", "FR_calf_joint", "RL_calf_joint", "RR_calf_joint")
    assert feet == ("FL_foot", "FR_foot", "RL_foot", "RR_foot")
    robot = TrainingContract.from_robot(go2, "isaac_lab").apply(go2)
    table = toml_joints("go2")
    for i, name in enumerate(robot.joint_names_policy):
        assert robot.default_angles[i] == table[name]["default"]
        assert robot.position_lower[i] == table[name]["lower"]
        assert robot.torque_limit[i] == table[name]["torque"]
    # Sensor feet stay in the robot's order; the policy's contact terms use the contract's.
    assert robot.foot_names == go2.foot_names
    assert [robot.foot_names[i] for i in robot.feet_hardware_to_policy] == list(feet)


@pytest.mark.parametrize("control, policy, interval", [(100, 50, 2), (200, 50, 4), (50, 50, 1),
                                                       (150, 50, 3)])
def test_command_interval_is_the_whole_ratio(control, policy, interval):
    assert command_interval_ticks(control, policy) == interval


@pytest.mark.parametrize("control", [75.0, 49.0, 20.0, 125.0])
def test_a_control_rate_that_is_no_multiple_is_refused_naming_both(control):
    with pytest.raises(ContractError) as info:
        command_interval_ticks(control, 50.0)
    assert f"{control:g} Hz" in str(info.value) and "50 Hz" in str(info.value)


def test_legged_gym_config_dump(tmp_path, go2):
    config = {
        "sim": {"dt": 0.005}, "control": {"decimation": 4, "stiffness": {"joint": 30.0},
                                         "damping": {"joint": 0.6}, "action_scale": 0.25},
        "normalization": {"clip_actions": 1.2},
        "init_state": {"default_joint_angles": {
            f"{leg}_{part}_joint": value for leg in ("FL", "FR", "RL", "RR")
            for part, value in (("hip", 0.1 if leg[1] == "L" else -0.1),
                                ("thigh", 0.8 if leg[0] == "F" else 1.0), ("calf", -1.5))}},
        "commands": {"ranges": {"lin_vel_x": [0.3, 1.2]}},
        "depth": {"position": [0.35, 0.0, 0.06], "angle": [20, 24], "original": [106, 60],
                  "horizontal_fov": [86, 90], "near_clip": 0.0, "far_clip": 2.0,
                  "update_interval": 5},
    }
    path = tmp_path / "env_cfg.json"
    path.write_text(json.dumps(config))
    contract = load_train_config(path, go2)
    assert contract.policy_rate_hz == pytest.approx(50.0)
    assert contract.kp == (30.0,) * 12 and contract.kd == (0.6,) * 12
    assert contract.action_clip == pytest.approx(1.2 / 0.25)
    assert contract.forward_speed_range_m_s == (0.3, 1.2)
    assert contract.camera.pitch_deg == pytest.approx(22.0)
    assert contract.camera.horizontal_fov_deg == pytest.approx(88.0)
    assert contract.camera.position_m == (0.35, 0.0, 0.06)
    assert contract.camera.depth_type == "z_depth"
    assert contract.joint_names_policy[:3] == ("FR_hip_joint", "FR_thigh_joint", "FR_calf_joint")
    assert contract.default_angles_rad[:3] == (-0.1, 0.8, -1.5)


ISAAC_ENV_YAML = """\
decimation: 4
sim:
  dt: 0.005
scene:
  robot:
    init_state:
      joint_pos:
        .*L_hip_joint: 0.1
        .*R_hip_joint: -0.1
        F[L,R]_thigh_joint: 0.8
        R[L,R]_thigh_joint: 1.0
        .*_calf_joint: -1.5
    actuators:
      base_legs:
        joint_names_expr: [".*_hip_joint", ".*_thigh_joint", ".*_calf_joint"]
        stiffness: 25.0
        damping: 0.5
        effort_limit: 23.5
  depth_camera:
    offset:
      pos: !!python/tuple [0.33, 0.0, 0.08]
      rot: !!python/tuple [{w}, 0.0, {y}, 0.0]
      convention: world
    data_types: [distance_to_camera]
    max_distance: 2.0
    update_period: 0.1
    pattern_cfg:
      width: 106
      height: 60
      focal_length: 1.0
      horizontal_aperture: {aperture}
actions:
  joint_pos:
    scale: 0.25
commands:
  base_velocity:
    ranges:
      lin_vel_x: !!python/tuple [0.0, 1.0]
"""


def test_isaac_lab_env_yaml(tmp_path, go2):
    pytest.importorskip("yaml")
    pitch = math.radians(20.0)
    aperture = 2.0 * math.tan(math.radians(87.0) / 2.0)
    path = tmp_path / "env.yaml"
    path.write_text(ISAAC_ENV_YAML.format(w=math.cos(pitch / 2), y=math.sin(pitch / 2),
                                          aperture=aperture))
    contract = load_train_config(path, go2)
    assert contract.joint_order_convention == "isaac_lab"
    assert contract.policy_rate_hz == pytest.approx(50.0)
    assert contract.kp == (25.0,) * 12 and contract.torque_limits_nm == (23.5,) * 12
    # Rotating the camera's forward axis about +y by 20 degrees points it 20 degrees down.
    assert contract.camera.pitch_deg == pytest.approx(20.0)
    assert contract.camera.horizontal_fov_deg == pytest.approx(87.0)
    assert contract.camera.depth_type == "distance_to_camera"
    assert contract.camera.update_interval_steps == 5
    table = toml_joints("go2")
    for name, default in zip(contract.joint_names_policy, contract.default_angles_rad):
        assert default == table[name]["default"], name
    assert contract.forward_speed_range_m_s == (0.0, 1.0)


def test_a_config_of_neither_kind_is_refused(tmp_path, go2):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"runner": {}}))
    with pytest.raises(ContractError, match="neither a legged_gym"):
        load_train_config(path, go2)


def test_export_writes_the_contract_and_the_runtime_applies_it(tmp_path, go2):
    pytest.importorskip("torch")
    from compute.parkour.policy_engines import open_policy_engines
    from compute.parkour.synthetic import write_synthetic_checkpoint
    from export.cli import main as export_main

    checkpoint = write_synthetic_checkpoint(tmp_path / "teacher.pt", go2, seed=1, teacher=True)
    assert export_main(["--checkpoint", str(checkpoint), "--joint-order", "isaac_lab",
                        "--parity-samples", "2", "--quiet"]) == 0
    manifest = json.loads((tmp_path / "teacher.json").read_text())
    contract = manifest["training_contract"]
    assert contract["joint_order_convention"] == "isaac_lab"
    assert contract["joint_names_policy"][0] == "FL_hip_joint"
    assert manifest["robot"]["joint_names_policy"] == contract["joint_names_policy"]
    policy = open_policy_engines(go2, engine=tmp_path / "teacher.onnx")
    try:
        assert policy.robot.joint_names_policy == tuple(contract["joint_names_policy"])
        assert policy.robot.policy_rate_hz == contract["policy_rate_hz"]
        np.testing.assert_array_equal(policy.robot.default_angles, contract["default_angles_rad"])
    finally:
        policy.close()

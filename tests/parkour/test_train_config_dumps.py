"""``--train-config`` on training config dumps as this family writes them.

Fixtures (tests/data/train_configs/, see its README.md for the sources):

- ``extreme_parkour_a1_env_cfg.json``: chengxuxin/extreme-parkour@dcb2447 ``A1ParkourCfg``
  (``legged_gym/legged_gym/envs/a1/a1_parkour_config.py`` over
  ``envs/base/legged_robot_config.py``) written out as legged_gym's ``class_to_dict`` + JSON would.
  Camera: ``depth.angle`` [-5, 5] degrees, scalar ``horizontal_fov``, list ``position``.
- ``go2_fork_random_box_env_cfg.json``: Tang29Zx/extreme-parkour-go2@1003bd0e
  ``legged_gym/logs/parkour_A100/607-02-16/traced/config_go2_random_box.json`` (a Go2 fork's dump).
  Camera: ``depth.rotation`` lower/upper in radians, ``depth.position`` {mean, std},
  ``horizontal_fov`` [86, 90], and an unused ``depth.angle`` [0, 1].
- ``isaaclab_parkour_go2_student_env.yaml``: the ``params/env.yaml`` Isaac Lab writes for the
  Isaaclab_Parkour Go2 student task (``parkour_tasks/default_cfg.py`` CAMERA_CFG,
  ``config/go2/parkour_mdp_cfg.py``, ``parkour_student_cfg.py``), with ``!!python/tuple`` and
  ``!!python/object/apply:builtins.slice`` tags.

Every expected value below was read by hand from the fixture (the arithmetic is in the comments),
not produced by the parser.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest

from compute.parkour.config_dump import dump_kind, read_config_dump
from compute.parkour.contract import ContractError
from compute.parkour.train_camera import CameraOverrides, parse_position
from compute.parkour.train_config import (
    contract_from_isaac_lab,
    contract_from_legged_gym,
    load_train_config,
)
from hal.robot import load_robot

CONFIGS = Path(__file__).resolve().parents[1] / "data" / "train_configs"
A1_DUMP = CONFIGS / "extreme_parkour_a1_env_cfg.json"
GO2_DUMP = CONFIGS / "go2_fork_random_box_env_cfg.json"
ISAAC_YAML = CONFIGS / "isaaclab_parkour_go2_student_env.yaml"

# init_state.default_joint_angles of both legged_gym dumps, in the legged_gym order
# FR, FL, RR, RL x (hip, thigh, calf): right hips -0.1, left 0.1, front thighs 0.8, rear 1.0.
LEGGED_GYM_DEFAULTS = (-0.1, 0.8, -1.5, 0.1, 0.8, -1.5, -0.1, 1.0, -1.5, 0.1, 1.0, -1.5)


@pytest.fixture(scope="module")
def a1():
    return load_robot("a1")


def test_extreme_parkour_a1_dump(a1):
    contract = load_train_config(A1_DUMP, a1)
    assert contract.policy_rate_hz == pytest.approx(50.0)  # 1 / (sim.dt 0.005 x decimation 4)
    assert contract.joint_order_convention == "legged_gym"
    assert contract.joint_names_policy[:3] == ("FR_hip_joint", "FR_thigh_joint", "FR_calf_joint")
    assert contract.kp == (40.0,) * 12  # control.stiffness {"joint": 40.0}
    assert contract.kd == (1.0,) * 12  # control.damping {"joint": 1}
    assert contract.action_scale == 0.25
    assert contract.action_clip == pytest.approx(4.8)  # clip_actions 1.2 rad / action_scale 0.25
    assert contract.forward_speed_range_m_s == (0.0, 1.5)  # commands.ranges, not max_ranges
    assert contract.default_angles_rad == LEGGED_GYM_DEFAULTS
    camera = contract.camera
    assert camera.pitch_deg == pytest.approx(0.0)  # middle of depth.angle [-5, 5]
    assert camera.horizontal_fov_deg == 87.0
    assert camera.position_m == (0.27, 0.0, 0.03)
    assert (camera.width, camera.height) == (106, 60)
    assert (camera.near_m, camera.far_m) == (0.0, 2.0)
    assert camera.update_interval_steps == 5 and camera.depth_type == "z_depth"
    assert any("depth.angle [-5, 5]" in note and "middle" in note for note in contract.notes)
    assert any("torque limits from the robot definition" in note for note in contract.notes)


def test_go2_fork_dump_reads_the_rotation_its_training_code_used(go2, caplog):
    with caplog.at_level(logging.WARNING):
        contract = load_train_config(GO2_DUMP, go2)
    assert contract.policy_rate_hz == pytest.approx(50.0)
    assert contract.kp == (40.0,) * 12 and contract.kd == (1.0,) * 12
    assert contract.action_clip == pytest.approx(4.8)
    assert contract.forward_speed_range_m_s == (0.5, 0.5)
    # init_state, not the unused init_state_slope (FL_thigh 1.0, RL_calf -0.9 ...)
    assert contract.default_angles_rad == LEGGED_GYM_DEFAULTS
    camera = contract.camera
    # depth.rotation pitch lower 0.349066, upper 0.436332 rad: middle 0.392699 rad = 22.5 degrees,
    # positive = looking down (the bug this guards against: 0.5 from depth.angle [0, 1]).
    assert camera.pitch_deg == pytest.approx(22.5, abs=1e-3)
    assert camera.horizontal_fov_deg == pytest.approx(88.0)  # middle of [86, 90]
    assert camera.position_m == (0.355, 0.0, 0.065)  # depth.position.mean
    ambiguous = [note for note in contract.notes if "ambiguous" in note]
    assert len(ambiguous) == 1
    assert "depth.angle [0, 1]" in ambiguous[0] and "0.5" in ambiguous[0]
    assert "depth.rotation" in ambiguous[0] and "--camera-pitch-deg" in ambiguous[0]
    assert any("depth.angle [0, 1]" in r.getMessage() for r in caplog.records
               if r.levelno == logging.WARNING)


def test_without_depth_rotation_the_angle_is_read_in_degrees(go2):
    data = read_config_dump(GO2_DUMP)
    del data["depth"]["rotation"]
    contract = contract_from_legged_gym(data, go2)
    assert contract.camera.pitch_deg == pytest.approx(0.5)  # middle of depth.angle [0, 1]
    assert not any("ambiguous" in note for note in contract.notes)


def test_a_rotation_that_is_not_a_range_leaves_the_camera_level(go2):
    data = read_config_dump(GO2_DUMP)
    data["depth"]["rotation"] = None  # the fork's attach_camera then sets no rotation
    contract = contract_from_legged_gym(data, go2)
    assert contract.camera.pitch_deg == 0.0
    assert any("ambiguous" in note and "0.5" in note for note in contract.notes)


def test_depth_randomisation_fork_reads_domain_rand_ranges(a1):
    data = read_config_dump(A1_DUMP)
    data["domain_rand"].update(randomize_camera=True, camera_angle_range=[25, 35],
                               camera_fov_range=[80, 90], camera_pos_range=0.05)
    contract = contract_from_legged_gym(data, a1)
    assert contract.camera.pitch_deg == pytest.approx(30.0)  # middle of [25, 35]
    assert contract.camera.horizontal_fov_deg == pytest.approx(85.0)  # middle of [80, 90]
    assert contract.camera.position_m == (0.27, 0.0, 0.03)  # camera_pos_range is symmetric
    notes = " | ".join(contract.notes)
    assert "depth.angle [-5, 5] would give 0" in notes
    assert "depth.horizontal_fov 87 would give 87" in notes


def test_position_spelt_as_two_corners_or_per_axis_ranges(a1):
    data = read_config_dump(A1_DUMP)
    del data["depth"]["position"]
    data["depth"].update(position1=[0.25, -0.01, 0.03], position2=[0.29, 0.01, 0.05])
    # x, y: middle of the corners; z stays position1's (training copies position1 first)
    assert contract_from_legged_gym(data, a1).camera.position_m == pytest.approx((0.27, 0.0, 0.03))
    del data["depth"]["position1"], data["depth"]["position2"]
    data["depth"]["position"] = [[0.26, 0.28], 0.0, [0.02, 0.04]]
    assert contract_from_legged_gym(data, a1).camera.position_m == pytest.approx((0.27, 0.0, 0.03))


def test_isaac_lab_parkour_env_yaml(go2):
    pytest.importorskip("yaml")
    contract = load_train_config(ISAAC_YAML, go2)
    assert contract.joint_order_convention == "isaac_lab"
    assert contract.joint_names_policy[:4] == ("FL_hip_joint", "FR_hip_joint", "RL_hip_joint",
                                               "RR_hip_joint")
    assert contract.policy_rate_hz == pytest.approx(50.0)  # 1 / (sim.dt 0.005 x decimation 4)
    assert contract.kp == (40.0,) * 12 and contract.kd == (1.0,) * 12
    # effort_limit {.*_hip_joint: 35, .*_thigh_joint: 40, .*_calf_joint: 40}, hips first
    assert contract.torque_limits_nm == (35.0,) * 4 + (40.0,) * 8
    assert contract.action_scale == 0.25
    assert contract.action_clip == 4.8  # actions.joint_pos.clip {.*: (-4.8, 4.8)}
    assert contract.forward_speed_range_m_s == (0.3, 0.8)
    # hips FL 0.1, FR -0.1, RL 0.1, RR -0.1; thighs F 0.8, R 1.0; calves -1.5
    assert contract.default_angles_rad == (0.1, -0.1, 0.1, -0.1, 0.8, 0.8, 1.0, 1.0,
                                           -1.5, -1.5, -1.5, -1.5)
    camera = contract.camera
    # rot = quat_from_euler_xyz(180, 70, -90 deg) in the ros convention: the optical axis is
    # 70 degrees from straight down, i.e. 20 degrees below the horizon; the startup pitch noise
    # [-5, 5] has its middle at 0.
    assert camera.pitch_deg == pytest.approx(20.0, abs=1e-3)
    # 2 atan(20.955 / (2 x 11.041)) = 2 atan(0.94896) = 2 x 43.50 = 87.0 degrees
    assert camera.horizontal_fov_deg == pytest.approx(87.0, abs=0.01)
    assert camera.position_m == (0.33, 0.0, 0.08)
    assert (camera.width, camera.height) == (106, 60)
    assert camera.far_m == 2.0 and camera.depth_type == "distance_to_camera"
    assert camera.update_interval_steps == 5  # update_period 0.1 s x 50 Hz
    assert any("rot_noise_range.pitch [-5, 5]" in note for note in contract.notes)


def test_isaac_lab_pitch_noise_with_an_off_centre_middle(go2):
    pytest.importorskip("yaml")
    data = read_config_dump(ISAAC_YAML)
    offset = data["scene"]["depth_camera"]["offset"]
    # world convention, a rotation of 20 degrees about +y: (cos 10°, 0, sin 10°, 0)
    offset.update(convention="world", rot=[0.984807753, 0.0, 0.173648178, 0.0])
    data["events"]["random_camera_position"]["params"]["rot_noise_range"]["pitch"] = [0, 1]
    contract = contract_from_isaac_lab(data, go2)
    assert contract.camera.pitch_deg == pytest.approx(20.5, abs=1e-3)  # 20 + middle of [0, 1]


def test_user_overrides_replace_the_reading_and_are_noted(go2):
    overrides = CameraOverrides(pitch_deg=25.0, horizontal_fov_deg=87.0,
                                position_m=parse_position("0.3,0,0.07"))
    contract = load_train_config(GO2_DUMP, go2, overrides)
    assert contract.camera.pitch_deg == 25.0
    assert contract.camera.horizontal_fov_deg == 87.0
    assert contract.camera.position_m == (0.3, 0.0, 0.07)
    assert any("--camera-pitch-deg" in note and "22.5" in note for note in contract.notes)
    assert any("--camera-position" in note for note in contract.notes)


@pytest.mark.parametrize("overrides, fragment", [
    (CameraOverrides(pitch_deg=float("nan")), "--camera-pitch-deg nan"),
    (CameraOverrides(pitch_deg=120.0), "--camera-pitch-deg 120"),
    (CameraOverrides(horizontal_fov_deg=200.0), "horizontal FOV"),
])
def test_bad_overrides_are_refused_by_name(go2, overrides, fragment):
    with pytest.raises(ContractError, match=fragment):
        load_train_config(GO2_DUMP, go2, overrides)


@pytest.mark.parametrize("text", ["0.3,0", "a,b,c", "0.3,0,inf", ""])
def test_a_bad_camera_position_is_refused_naming_it(text):
    with pytest.raises(ContractError, match="--camera-position"):
        parse_position(text)


def test_the_loader_returns_the_dump_as_data(tmp_path):
    data = read_config_dump(GO2_DUMP)
    assert dump_kind(data) == "legged_gym"
    assert data["domain_rand"]["friction_range"] == [0.7, 1.3]
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ContractError, match="not valid JSON"):
        read_config_dump(broken)
    listing = tmp_path / "list.json"
    listing.write_text(json.dumps([1, 2]))
    with pytest.raises(ContractError, match="mapping at the top level"):
        read_config_dump(listing)
    with pytest.raises(ContractError, match="no such file"):
        read_config_dump(tmp_path / "missing.json")


def test_the_yaml_loader_reads_python_tags():
    pytest.importorskip("yaml")
    data = read_config_dump(ISAAC_YAML)
    assert dump_kind(data) == "isaac_lab"
    assert data["scene"]["depth_camera"]["offset"]["pos"] == [0.33, 0.0, 0.08]
    assert data["events"]["physics_material"]["params"]["friction_range"] == [0.6, 2.0]
    sensor = data["events"]["random_camera_position"]["params"]["sensor_cfg"]
    assert sensor["joint_ids"] == [None, None, None]  # !!python/object/apply:builtins.slice
    assert math.isclose(data["sim"]["dt"], 0.005)


def test_a_dump_wrapping_the_env_config_one_level_down(tmp_path, go2):
    wrapped = tmp_path / "run_config.json"
    wrapped.write_text(json.dumps({"train_cfg": {"runner": {"max_iterations": 50000}},
                                   "env_cfg": read_config_dump(GO2_DUMP)}))
    contract = load_train_config(wrapped, go2)
    assert contract.camera.pitch_deg == pytest.approx(22.5, abs=1e-3)
    assert contract.source.endswith("[env_cfg]")

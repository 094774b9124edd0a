"""The generated MJCF matches the robot definition and Go2's published dimensions."""

from __future__ import annotations

import math

import numpy as np
import pytest

mujoco = pytest.importorskip("mujoco")  # the [sim] extra

from hal.robot import load_robot  # noqa: E402
from hal.sim.mjcf import ASSET_SCENES, GO2_GEOMETRY, asset_path, build_mjcf  # noqa: E402
from hal.sim.scenes import PARKOUR_COURSE, SceneBox  # noqa: E402


def _model(robot, **kwargs):
    return mujoco.MjModel.from_xml_string(build_mjcf(robot, **kwargs))


@pytest.mark.parametrize("name", ["go2", "a1"])
def test_joints_limits_and_motors_match_the_robot_definition(name):
    robot = load_robot(name)
    m = _model(robot)
    assert m.nu == 12 and m.nq == 7 + 12
    for i, jname in enumerate(robot.joint_names_policy):
        j = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, jname)
        assert j >= 0, jname
        np.testing.assert_allclose(m.jnt_range[j], [robot.position_lower[i], robot.position_upper[i]])
        assert m.jnt_limited[j]
    # Actuator k drives hardware joint k, with ctrlrange = ± its torque limit.
    torque_hw = robot.to_hardware(robot.torque_limit)
    for k, jname in enumerate(robot.joint_names_hardware):
        assert m.joint(int(m.actuator_trnid[k, 0])).name == jname
        np.testing.assert_allclose(m.actuator_ctrlrange[k], [-torque_hw[k], torque_hw[k]])
        assert m.actuator_ctrllimited[k]
    for foot in robot.foot_names:
        assert mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, foot) >= 0
        assert mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, foot) >= 0


def test_go2_masses_and_link_lengths_are_the_published_ones(go2):
    m = _model(go2)
    published = 6.921 + 4 * (0.678 + 1.152 + 0.154 + 0.04)
    assert float(np.sum(m.body_mass)) == pytest.approx(published, rel=1e-9)
    assert m.body("trunk").mass[0] == pytest.approx(6.921)
    # Forward kinematics at zero joint angles: the foot hangs thigh + calf below the thigh joint,
    # which sits at the published hip (0.1934, ∓0.0465) and thigh (∓0.0955) offsets.
    d = mujoco.MjData(m)
    d.qpos[:7] = [0, 0, 1, 1, 0, 0, 0]
    d.qpos[7:] = 0.0
    mujoco.mj_kinematics(m, d)
    for leg, sx, sy in (("FR", 1, -1), ("FL", 1, 1), ("RR", -1, -1), ("RL", -1, 1)):
        expected = [sx * 0.1934, sy * (0.0465 + 0.0955), 1.0 - 0.213 - 0.213]
        np.testing.assert_allclose(d.site(f"{leg}_foot").xpos, expected, atol=1e-9)
    assert m.geom("FR_foot").size[0] == pytest.approx(GO2_GEOMETRY.foot_radius_m)


def test_default_pose_kinematics_matches_planar_leg_geometry(go2):
    """The foot's height below the hip at the default angles, from the 2-link formula."""
    m = _model(go2)
    d = mujoco.MjData(m)
    d.qpos[:7] = [0, 0, 1, 1, 0, 0, 0]
    for i, name in enumerate(go2.joint_names_policy):
        d.qpos[m.jnt_qposadr[m.joint(name).id]] = go2.default_angles[i]
    mujoco.mj_kinematics(m, d)
    for leg in ("FR", "RL"):
        i = go2.joint_names_policy.index(f"{leg}_hip_joint")
        hip, thigh, calf = go2.default_angles[i:i + 3]
        x = -0.213 * math.sin(thigh) - 0.213 * math.sin(thigh + calf)
        r = 0.213 * math.cos(thigh) + 0.213 * math.cos(thigh + calf)  # in the leg plane
        y_off = -0.0955 if leg[1] == "R" else 0.0955
        # Hip roll turns the (y_off, -r) pair about x.
        y = y_off * math.cos(hip) + r * math.sin(hip)
        z = y_off * math.sin(hip) - r * math.cos(hip)
        hip_pos = d.body(f"{leg}_hip").xpos
        np.testing.assert_allclose(d.site(f"{leg}_foot").xpos - hip_pos, [x, y, z], atol=1e-9)


def test_parkour_scene_has_the_course_and_flat_has_only_the_floor(go2):
    flat = _model(go2, scene="flat")
    parkour = _model(go2, scene="parkour")
    assert mujoco.mj_name2id(flat, mujoco.mjtObj.mjOBJ_GEOM, "box_step") == -1
    step = parkour.geom("box_step")
    top = step.pos[2] + step.size[2]
    assert top == pytest.approx(PARKOUR_COURSE.step_height_m)
    landing = parkour.geom("landing_slab")
    gap = (landing.pos[0] - landing.size[0]) - (step.pos[0] + step.size[0])
    assert gap == pytest.approx(PARKOUR_COURSE.gap_length_m)


def test_extra_boxes_are_added_to_the_scene(go2):
    m = _model(go2, extra_boxes=(SceneBox("wall", (1.0, 0.0, 0.2), (0.05, 0.5, 0.2)),))
    np.testing.assert_allclose(m.geom("wall").size, [0.05, 0.5, 0.2])
    with pytest.raises(ValueError, match="positive"):
        SceneBox("bad", (0, 0, 0), (0.1, -1, 0.1))


def test_bad_scene_and_bad_robot_are_refused_with_the_valid_values(go2, tmp_path):
    with pytest.raises(ValueError, match="flat, parkour"):
        build_mjcf(go2, scene="moon")
    text = (asset_path("go2", "flat").parents[2] / "robots" / "go2.toml").read_text()
    path = tmp_path / "bot.toml"
    path.write_text(text.replace("FR_hip_joint", "front_right_hip"))
    with pytest.raises(ValueError, match="FR_hip_joint"):
        build_mjcf(load_robot(path))


@pytest.mark.parametrize("scene", ASSET_SCENES)
def test_committed_assets_are_up_to_date(go2, scene):
    committed = asset_path("go2", scene).read_text()
    assert committed == build_mjcf(go2, scene), "regenerate with: python -m hal.sim --write-assets"
    mujoco.MjModel.from_xml_string(committed)


def test_cli_prints_a_model_and_refuses_an_unknown_robot(capsys):
    from hal.sim.__main__ import main

    assert main(["--robot", "a1", "--scene", "parkour"]) == 0
    text = capsys.readouterr().out
    assert mujoco.MjModel.from_xml_string(text).nu == 12 and "krabby_a1_parkour" in text
    with pytest.raises(SystemExit) as exc:
        main(["--robot", "no_such_robot"])
    assert exc.value.code == 2
    assert "not a shipped robot" in capsys.readouterr().err


def test_a_robot_without_a_simulator_body_is_refused_naming_what_is_missing(tmp_path):
    """A robot TOML the simulator has no body for is refused (it once got the Go2's silently);
    ``[robot] sim_body`` borrows a body the simulator has."""
    text = (asset_path("go2", "flat").parents[2] / "robots" / "go2.toml").read_text()
    path = tmp_path / "mybot.toml"
    path.write_text(text.replace('name = "go2"', 'name = "mybot"', 1))
    robot = load_robot(path)
    with pytest.raises(ValueError) as refused:
        build_mjcf(robot)
    message = str(refused.value)
    for named in ("'mybot'", "sim_body", "'a1'", "'go2'", "QuadrupedGeometry"):
        assert named in message, named
    path.write_text(text.replace('name = "go2"', 'name = "mybot"\nsim_body = "hexapod"', 1))
    with pytest.raises(ValueError, match="sim_body = 'hexapod'"):
        build_mjcf(load_robot(path))
    path.write_text(text.replace('name = "go2"', 'name = "mybot"\nsim_body = "go2"', 1))
    borrowed = load_robot(path)
    assert borrowed.sim_body == "go2"
    go2 = load_robot("go2")
    ours = mujoco.MjModel.from_xml_string(build_mjcf(borrowed))
    theirs = mujoco.MjModel.from_xml_string(build_mjcf(go2))
    assert np.array_equal(ours.body_mass, theirs.body_mass)  # the Go2's body
    assert np.array_equal(ours.geom_size, theirs.geom_size)


def test_the_sim_server_refuses_a_robot_without_a_body_in_one_line(tmp_path, capsys):
    """krabby-hal-server-sim names what is missing in one line (exit 2), not a traceback."""
    from hal.server.sim.main import main as sim_main

    text = (asset_path("go2", "flat").parents[2] / "robots" / "go2.toml").read_text()
    path = tmp_path / "mybot.toml"
    path.write_text(text.replace('name = "go2"', 'name = "mybot"', 1))
    assert sim_main(["--robot", str(path), "--no-client", "--duration", "1", "--fast",
                     "--no-keyboard", "--no-status", "--estop-bind", "none",
                     "--flight-recorder-s", "0"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: robot 'mybot'") and "sim_body" in last, last

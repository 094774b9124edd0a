"""Training's domain randomisation: ranges read from a config dump, drawn within them,
reproducible by seed."""

from __future__ import annotations

import json
import numpy as np
import pytest

from compute.parkour.domain_rand import ranges_from_legged_gym, ranges_from_train_config
from hal.sim.randomization import (
    DEFAULT_RANGES,
    RandomizationRanges,
    draw_episode,
    ranges_from_dict,
)


def test_draws_stay_within_the_ranges_and_follow_the_seed():
    r = DEFAULT_RANGES
    draws = [draw_episode(r, seed) for seed in range(200)]
    for d in draws:
        assert 0.7 <= d.friction <= 1.3 and -0.5 <= d.added_mass_kg <= 1.5
        assert all(-0.03 <= c <= 0.03 for c in d.com_offset_m)
        assert all(0.9 <= m <= 1.1 for m in d.motor_strength)
        assert d.action_delay_steps in (0, 1, 2)
        assert 20.0 <= d.camera_pitch_deg <= 25.0 and 86.0 <= d.camera_hfov_deg <= 90.0
        assert all(-0.3 <= v <= 0.3 for v in d.start_xy_m) and abs(d.start_yaw_rad) <= 0.05
        assert all(abs(v) <= 0.2 for push in d.pushes_m_s for v in push)
    assert {d.action_delay_steps for d in draws} == {0, 1, 2}  # the whole range is drawn
    assert min(d.friction for d in draws) < 0.75 and max(d.friction for d in draws) > 1.25
    assert draw_episode(r, 7) == draw_episode(r, 7)
    assert draw_episode(r, 7) != draw_episode(r, 8)


def test_fixed_ranges_give_the_nominal_values():
    fixed = RandomizationRanges(friction=(1.0, 1.0), added_mass_kg=(0.0, 0.0),
                                com_offset_m=(0.0, 0.0), motor_strength=(1.0, 1.0),
                                push_interval_s=0.0, action_delay_steps=(0, 0),
                                camera_position_std_m=(0.0, 0.0, 0.0), start_xy_m=(0.0, 0.0),
                                start_yaw_rad=(0.0, 0.0))
    d = draw_episode(fixed, 3)
    assert (d.friction, d.added_mass_kg, d.motor_strength, d.action_delay_steps) == \
        (1.0, 0.0, (1.0, 1.0), 0)
    assert d.pushes_m_s == () and d.start_xy_m == (0.0, 0.0)


def test_ranges_from_a_legged_gym_dump(tmp_path):
    dump = {
        "control": {}, "init_state": {},
        "domain_rand": {"randomize_friction": True, "friction_range": [0.7, 1.3],
                        "randomize_base_mass": True, "added_mass_range": [-0.5, 1.5],
                        "randomize_base_com": False, "added_com_range": [-0.2, 0.2],
                        "push_robots": True, "push_interval_s": 8, "max_push_vel_xy": 0.2,
                        "randomize_motor": True, "motor_strength_range": [0.9, 1.1],
                        "action_delay": True, "action_curr_step": [1, 0, 2]},
        "depth": {"angle": [20, 25], "horizontal_fov": [86, 90],
                  "position": {"mean": [0.35, 0, 0.06], "std": [0.015, 0.01, 0.015]}},
        "env": {"randomize_start_pos": False, "randomize_start_yaw": True, "rand_yaw_range": 0.5},
    }
    ranges = ranges_from_legged_gym(dump)
    assert ranges == {
        "friction": [0.7, 1.3], "added_mass_kg": [-0.5, 1.5], "com_offset_m": [0.0, 0.0],
        "motor_strength": [0.9, 1.1], "push_interval_s": 8.0, "max_push_vel_xy_m_s": 0.2,
        "action_delay_steps": [0, 2], "camera_pitch_deg": [20.0, 25.0],
        "camera_hfov_deg": [86.0, 90.0], "camera_position_std_m": [0.015, 0.01, 0.015],
        "start_xy_m": [0.0, 0.0], "start_yaw_rad": [-0.5, 0.5]}
    path = tmp_path / "env.json"
    path.write_text(json.dumps(dump))
    from_file = ranges_from_train_config(path)
    built = ranges_from_dict(from_file, source="test")
    assert built.friction == (0.7, 1.3) and built.action_delay_steps == (0, 2)
    assert built.camera_hfov_deg == (86.0, 90.0)
    assert ranges_from_train_config_isaac(tmp_path) is None


def ranges_from_train_config_isaac(tmp_path):
    path = tmp_path / "env.yaml"
    path.write_text("scene: {}\ndecimation: 4\n")
    pytest.importorskip("yaml")
    return ranges_from_train_config(path)


def test_bad_ranges_are_refused_by_name():
    with pytest.raises(ValueError, match="unknown keys \\['gravity'\\]"):
        ranges_from_dict({"gravity": [9, 10]}, source="x")
    with pytest.raises(ValueError, match="friction"):
        ranges_from_dict({"friction": [1.3, 0.7]}, source="x")


def test_ranges_from_a_real_go2_dump():
    """tests/data/train_configs/go2_fork_random_box_env_cfg.json, values read by hand."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "data" / "train_configs" / \
        "go2_fork_random_box_env_cfg.json"
    ranges = ranges_from_train_config(path)
    assert ranges.pop("source") == "legged_gym config go2_fork_random_box_env_cfg.json"
    pitch = ranges.pop("camera_pitch_deg")  # depth.rotation pitch 0.349066 .. 0.436332 rad
    assert pitch == pytest.approx([20.0, 25.0], abs=1e-4)
    assert ranges == {
        "friction": [0.7, 1.3], "added_mass_kg": [-0.5, 1.5], "com_offset_m": [-0.03, 0.03],
        "motor_strength": [0.9, 1.1], "push_interval_s": 8.0, "max_push_vel_xy_m_s": 0.2,
        "action_delay_steps": [0, 2], "camera_hfov_deg": [86.0, 90.0],
        "camera_position_std_m": [0.015, 0.01, 0.015], "depth_noise_std_m": 0.01,
        "start_xy_m": [-0.3, 0.3], "start_yaw_rad": [-0.05, 0.05]}


def test_camera_latency_publishes_a_frame_later_stamped_at_capture(go2):
    """A frame captured at t is published at t + latency with t's timestamp."""
    from hal.sim import MujocoWorld, MujocoWorldConfig

    base = dict(scene="flat", camera_fps=10.0, settle_s=0.0, clock_origin_ns=0)
    prompt = MujocoWorld(go2, MujocoWorldConfig(**base))
    late = MujocoWorld(go2, MujocoWorldConfig(**base, camera_latency_s=0.03))
    seqs = {}
    for world in (prompt, late):
        seqs[id(world)] = [world.depth_frame_seq]
        for _ in range(15):  # 10 ms ticks: a frame captured at 100 ms
            world.advance(0.01)
            seqs[id(world)].append(world.depth_frame_seq)
    start_prompt, start_late = seqs[id(prompt)][0], seqs[id(late)][0]
    assert seqs[id(prompt)].index(start_prompt + 1) == 10  # published at 100 ms
    assert seqs[id(late)].index(start_late + 1) == 13  # published at 130 ms
    out = np.empty(late._raycaster.frame_shape, np.float32)
    assert late.read_depth_into(out).timestamp_ns == 100_000_000  # stamped at capture


def test_a_randomised_lens_keeps_the_nominal_intrinsics(go2):
    """Training randomised the camera's FOV without telling the policy: the simulated lens renders
    with the drawn FOV while its frames carry the nominal intrinsics, so the policy's crop to the
    training camera always succeeds (a narrower lens once made it raise and stall the episode)."""
    import math

    from compute.parkour.depth import DepthPreprocessor
    from hal.sim import MujocoWorld, MujocoWorldConfig

    base = dict(scene="step:0.8", camera_fps=10.0, settle_s=0.0, clock_origin_ns=0)
    nominal = MujocoWorld(go2, MujocoWorldConfig(**base))
    narrow = MujocoWorld(go2, MujocoWorldConfig(**base, camera_lens_hfov_deg=80.0))
    fx = 106 / (2 * math.tan(math.radians(87.0) / 2))  # the Go2 file's 87° over 106 pixels
    for world in (nominal, narrow):
        assert world.camera_intrinsics.fx == pytest.approx(fx)
    frames = []
    for world in (nominal, narrow):
        frame = np.empty((60, 106), np.float32)
        world.read_depth_into(frame)
        frames.append(frame)
        DepthPreprocessor(world.camera_intrinsics, go2.depth_camera).process(frame)
    # The narrower lens sees less of the ground: its edge rays point closer to the axis.
    finite = np.isfinite(frames[0]) & np.isfinite(frames[1])
    assert finite.sum() > 100
    assert not np.allclose(frames[0][finite], frames[1][finite])

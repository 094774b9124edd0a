"""Fixtures for krabby-eval: the demo checkpoint exported (a depth student), and a teacher
exported with a legged_gym training config (its manifest carries randomisation ranges)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo_engine(tmp_path_factory) -> Path:
    """krabby-make-checkpoint + krabby-export, as ``krabby-hal-server-sim --demo`` does."""
    for extra in ("torch", "onnx"):
        pytest.importorskip(extra)
    from hal.server.sim.main import prepare_demo

    return prepare_demo(tmp_path_factory.mktemp("demo"), "go2")


LEGGED_GYM_DUMP = {
    "sim": {"dt": 0.005},
    "control": {"decimation": 4, "stiffness": {"joint": 40.0}, "damping": {"joint": 1.0},
                "action_scale": 0.25},
    "normalization": {"clip_actions": 1.2},
    "init_state": {"default_joint_angles": {
        f"{leg}_{part}_joint": value for leg in ("FL", "FR", "RL", "RR")
        for part, value in (("hip", 0.1 if leg[1] == "L" else -0.1),
                            ("thigh", 0.8 if leg[0] == "F" else 1.0), ("calf", -1.5))}},
    "commands": {"ranges": {"lin_vel_x": [0.0, 1.5]}},
    "depth": {"position": [0.355, 0.0, 0.065], "angle": [20, 25], "original": [106, 60],
              "horizontal_fov": 87, "near_clip": 0.0, "far_clip": 2.0, "update_interval": 5},
    "domain_rand": {"randomize_friction": True, "friction_range": [0.8, 0.9],
                    "randomize_base_mass": False, "added_mass_range": [0.0, 3.0],
                    "push_robots": False, "randomize_motor": True,
                    "motor_strength_range": [0.95, 1.05], "action_delay": False},
}


@pytest.fixture(scope="session")
def teacher_engine(tmp_path_factory) -> Path:
    for extra in ("torch", "onnx"):
        pytest.importorskip(extra)
    from compute.parkour.synthetic import write_synthetic_checkpoint
    from export.cli import main as export_main
    from hal.robot import load_robot

    directory = tmp_path_factory.mktemp("teacher")
    checkpoint = write_synthetic_checkpoint(directory / "teacher.pt", load_robot("go2"), seed=4,
                                            teacher=True)
    config = directory / "env_cfg.json"
    config.write_text(json.dumps(LEGGED_GYM_DUMP))
    assert export_main(["--checkpoint", str(checkpoint), "--train-config", str(config),
                        "--parity-samples", "2", "--quiet"]) == 0
    return directory / "teacher.onnx"

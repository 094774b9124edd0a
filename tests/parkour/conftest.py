"""Shared fixtures for the parkour policy tests: robots and synthetic checkpoints on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from hal.robot import RobotConfig, load_robot

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="session")
def go2() -> RobotConfig:
    return load_robot("go2")


@pytest.fixture(scope="session")
def shuffled() -> RobotConfig:
    """Go2 whose hardware joint order differs from the policy order."""
    return load_robot(DATA / "go2_shuffled.toml")


@pytest.fixture(scope="session")
def hexapod() -> RobotConfig:
    return load_robot(DATA / "hexapod18.toml")


@pytest.fixture(scope="session")
def student_path(tmp_path_factory, go2) -> Path:
    from compute.parkour.synthetic import write_synthetic_checkpoint

    return write_synthetic_checkpoint(tmp_path_factory.mktemp("ckpt") / "student.pt", go2, seed=3)


@pytest.fixture(scope="session")
def teacher_path(tmp_path_factory, go2) -> Path:
    from compute.parkour.synthetic import write_synthetic_checkpoint

    return write_synthetic_checkpoint(tmp_path_factory.mktemp("ckpt") / "teacher.pt", go2,
                                      seed=4, teacher=True)

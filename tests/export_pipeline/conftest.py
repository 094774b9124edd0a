"""Synthetic checkpoints and one export of each per session (exports take a few seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hal.robot import load_robot

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="session")
def go2():
    return load_robot("go2")


@pytest.fixture(scope="session")
def hexapod_toml() -> Path:
    return DATA / "hexapod18.toml"


@pytest.fixture(scope="session")
def hexapod(hexapod_toml):
    return load_robot(hexapod_toml)


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory, go2, hexapod) -> dict[str, Path]:
    pytest.importorskip("torch")  # the [export] extra writes the checkpoints
    from compute.parkour.synthetic import write_synthetic_checkpoint

    directory = tmp_path_factory.mktemp("checkpoints")
    return {
        "student": write_synthetic_checkpoint(directory / "student.pt", go2, seed=21),
        "teacher": write_synthetic_checkpoint(directory / "teacher.pt", go2, seed=22, teacher=True),
        "hexapod": write_synthetic_checkpoint(directory / "hexapod.pt", hexapod, seed=23),
    }


def _export(tmp_path_factory, checkpoint: Path, *extra: str) -> Path:
    from export.cli import main

    out = tmp_path_factory.mktemp("export")
    assert main(["--checkpoint", str(checkpoint), "--output", f"{out}/", "--parity-samples", "8",
                 "--quiet", *extra]) == 0
    return out


@pytest.fixture(scope="session")
def student_export(tmp_path_factory, checkpoints) -> Path:
    return _export(tmp_path_factory, checkpoints["student"])


@pytest.fixture(scope="session")
def teacher_export(tmp_path_factory, checkpoints) -> Path:
    return _export(tmp_path_factory, checkpoints["teacher"], "--precision", "fp32")

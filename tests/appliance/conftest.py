"""Fixtures for whole-appliance tests: one exported synthetic policy per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from hal.robot import load_robot


@pytest.fixture(scope="session")
def go2():
    return load_robot("go2")


@pytest.fixture(scope="session")
def exported_policy(tmp_path_factory) -> Path:
    """A synthetic depth-student checkpoint exported with krabby-export (ONNX + manifest)."""
    for extra in ("torch", "onnx"):  # the [export] extra writes and exports the checkpoint
        pytest.importorskip(extra)
    from compute.parkour.synthetic import main as make_checkpoint
    from export.cli import main as export_main

    directory = tmp_path_factory.mktemp("policy")
    checkpoint = directory / "model.pt"
    assert make_checkpoint(["--output", str(checkpoint), "--robot", "go2", "--seed", "3"]) == 0
    assert export_main(["--checkpoint", str(checkpoint), "--robot", "go2",
                        "--parity-samples", "4"]) == 0
    onnx = directory / "model.onnx"
    assert onnx.is_file() and (directory / "model.depth.onnx").is_file()
    return onnx

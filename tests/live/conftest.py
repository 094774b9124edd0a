"""Fixtures for the live view tests: an exported synthetic student policy (ONNX)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def live_policy(tmp_path_factory) -> Path:
    for extra in ("torch", "onnx", "mujoco"):
        pytest.importorskip(extra)
    from compute.parkour.synthetic import main as make_checkpoint
    from export.cli import main as export_main

    directory = tmp_path_factory.mktemp("live_policy")
    checkpoint = directory / "model.pt"
    assert make_checkpoint(["--output", str(checkpoint), "--robot", "go2", "--seed", "5"]) == 0
    assert export_main(["--checkpoint", str(checkpoint), "--robot", "go2", "--parity-samples", "4",
                        "--quiet"]) == 0
    return directory / "model.onnx"

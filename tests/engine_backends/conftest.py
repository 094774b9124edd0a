"""Fixtures for the engine tests: small torch models exported to ONNX, robots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hal.robot import RobotConfig, load_robot

# torch builds the test models; tests that need none (CUDA memory, TensorRT's absence) run
# without it, the others skip through these fixtures.


@pytest.fixture(scope="session")
def recurrent(tmp_path_factory) -> dict[str, Any]:
    torch = pytest.importorskip("torch")
    from tests.engine_backends.engine_models import RecurrentModel, export_onnx

    torch.manual_seed(11)
    model = RecurrentModel().eval()
    path = export_onnx(model, (torch.zeros(1, 8), torch.zeros(1, 1, 6)),
                       tmp_path_factory.mktemp("recurrent") / "recurrent.onnx",
                       ["x", "hidden_in"], ["y", "hidden_out"])
    return {"model": model, "path": path}


@pytest.fixture(scope="session")
def go2() -> RobotConfig:
    return load_robot("go2")


@pytest.fixture(scope="session")
def a1() -> RobotConfig:
    return load_robot("a1")


@pytest.fixture
def tiny_actor_dir(tmp_path) -> Path:
    """A directory holding ``model.onnx``: a tiny actor with the go2 actor's tensor shapes."""
    torch = pytest.importorskip("torch")
    from tests.engine_backends.engine_models import TinyActor, export_onnx

    torch.manual_seed(5)
    export_onnx(TinyActor(), (torch.zeros(1, 753), torch.zeros(1, 32)), tmp_path / "model.onnx",
                ["obs", "depth_latent"], ["actions"])
    return tmp_path

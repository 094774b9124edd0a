"""Models and manifest writers shared by the engine tests (imported by name; not a conftest).

The models are built here, not taken from the code under test, so the engines are checked
against an independent computation: :func:`numpy_recurrent` evaluates the recurrent model with
numpy from its weights.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# A test module importing these helpers is skipped, not broken, where torch (the [export] extra)
# is missing.
torch = pytest.importorskip("torch")

from hal.robot import RobotConfig  # noqa: E402


class RecurrentModel(torch.nn.Module):
    """Linear → ELU → GRU cell → Linear, with the hidden state as explicit input and output."""

    def __init__(self, n_in: int = 8, n_hidden: int = 16, n_state: int = 6, n_out: int = 3) -> None:
        super().__init__()
        self.inp = torch.nn.Linear(n_in, n_hidden)
        self.cell = torch.nn.GRUCell(n_hidden, n_state)
        self.out = torch.nn.Linear(n_state, n_out)

    def forward(self, x: Any, hidden_in: Any) -> tuple[Any, Any]:
        h = self.cell(torch.nn.functional.elu(self.inp(x)), hidden_in[0])
        return self.out(h), h.unsqueeze(0)


class TinyActor(torch.nn.Module):
    """Same tensor names and shapes as the exported actor step of a 12-joint robot."""

    def __init__(self, obs_dim: int = 753, latent_dim: int = 32, n_actions: int = 12) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(obs_dim + latent_dim, 64), torch.nn.ELU(),
                                       torch.nn.Linear(64, n_actions))

    def forward(self, obs: Any, depth_latent: Any) -> Any:
        return self.net(torch.cat([obs, depth_latent], dim=1))


def export_onnx(module: Any, args: tuple, path: Path, inputs: list[str], outputs: list[str]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(module.eval(), args, str(path), input_names=inputs, output_names=outputs,
                          dynamo=False)
    return path


def numpy_recurrent(model: RecurrentModel, x: np.ndarray,
                    h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The model's forward in float64 numpy, from its weights (PyTorch's GRUCell equations)."""
    p = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    a = x.astype(np.float64) @ p["inp.weight"].T + p["inp.bias"]
    a = np.where(a > 0, a, np.expm1(a))
    hid = h[0].astype(np.float64)
    gi = a @ p["cell.weight_ih"].T + p["cell.bias_ih"]
    gh = hid @ p["cell.weight_hh"].T + p["cell.bias_hh"]
    n = hid.shape[1]
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    r = sig(gi[:, :n] + gh[:, :n])
    z = sig(gi[:, n:2 * n] + gh[:, n:2 * n])
    cand = np.tanh(gi[:, 2 * n:] + r * gh[:, 2 * n:])
    h_new = (1 - z) * cand + z * hid
    return h_new @ p["out.weight"].T + p["out.bias"], h_new[None]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(directory: Path, robot: RobotConfig, graphs: dict[str, dict[str, Any]],
                   stem: str = "model", **extra: Any) -> Path:
    """Write a manifest in the format :mod:`engines.manifest` reads, hashing the listed files."""
    files = {}
    for graph in graphs.values():
        for filename in graph.get("files", {}).values():
            target = directory / filename
            if target.is_file():
                files[filename] = {"sha256": sha256(target), "bytes": target.stat().st_size}
    data = {"format_version": 1, "robot": robot.summary(), "precision": "fp32", "graphs": graphs,
            "files": files, "versions": {"torch": torch.__version__}, "tensorrt": None,
            "parity": {}, **extra}
    path = directory / f"{stem}.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def actor_graph(obs_dim: int = 753, latent_dim: int = 32, n_actions: int = 12,
                onnx: str = "model.onnx") -> dict[str, Any]:
    f = "float32"
    return {"inputs": {"obs": {"shape": [1, obs_dim], "dtype": f},
                       "depth_latent": {"shape": [1, latent_dim], "dtype": f}},
            "outputs": {"actions": {"shape": [1, n_actions], "dtype": f}},
            "files": {"onnx": onnx}}


def assert_recurrent_rollout_matches(engine: Any, reference: Any, atol: float, steps: int = 5) -> None:
    """Run the recurrent model ``steps`` times on both engines, each feeding its own hidden state
    back, and compare the outputs; the engines' buffers must stay where they were bound."""
    pointers = [a.ctypes.data for a in (*engine.inputs.values(), *engine.outputs.values())]
    rng = np.random.default_rng(4)
    for _ in range(steps):
        x = rng.standard_normal((1, 8)).astype(np.float32)
        for e in (reference, engine):
            e.inputs["x"][...] = x
            e.run()
            e.inputs["hidden_in"][...] = e.outputs["hidden_out"]
        np.testing.assert_allclose(engine.outputs["y"], reference.outputs["y"], atol=atol)
    assert [a.ctypes.data for a in (*engine.inputs.values(), *engine.outputs.values())] == pointers

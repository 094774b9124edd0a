"""The seed README's promises for the Jetson server: module paths, entry points and flags.

The hardware run itself is gated on pyzed and a camera (and a robot); the recorded-camera run of
the same server is in tests/appliance/test_jetson_recorded.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hal.optional import available

SEED_FLAGS = ("--checkpoint", "--action_dim", "--obs_dim", "--control_rate", "--device",
              "--observation_bind", "--command_bind")


def test_seed_module_paths_import():
    from compute.parkour.inference_client import ParkourInferenceClient
    from hal.server.jetson import JetsonHalServer
    from hal.server.jetson.main import main

    from hal.server.base import HalServer

    assert callable(main) and issubclass(JetsonHalServer, HalServer)
    assert callable(ParkourInferenceClient.start) and callable(ParkourInferenceClient.stop)


def test_seed_underscore_flags_are_aliases_of_the_dashed_ones():
    from compute.parkour.client_main import ClientRunConfig
    from compute.parkour.client_main import build_parser as client_parser
    from hal.config import parse_config
    from hal.server.jetson.main import JetsonApplianceConfig, build_parser
    from hal.server.sim.main import SimApplianceConfig
    from hal.server.sim.main import build_parser as sim_parser

    seed = ["--checkpoint", "m.pt", "--action_dim", "12", "--obs_dim", "753", "--control_rate",
            "200.0", "--device", "cpu", "--observation_bind", "tcp://*:5555", "--command_bind",
            "tcp://*:5556", "--latency_budget_ms", "3", "--estop_bind", "none", "--no-client",
            "--insecure"]
    dashed = [flag.replace("_", "-") if flag.startswith("--") else flag for flag in seed]
    for root, parser in ((JetsonApplianceConfig, build_parser()),
                         (SimApplianceConfig, sim_parser())):
        old, new = parse_config(root, seed, parser), parse_config(root, dashed, parser)
        assert old == new
        assert (new.policy.action_dim, new.policy.obs_dim, new.loop.control_rate_hz) == (
            12, 753, 200.0)
        assert (new.loop.observation_bind, new.loop.estop_bind) == ("tcp://*:5555", "none")
    camera = parse_config(SimApplianceConfig, ["--camera_fps", "5"], sim_parser())
    assert camera.sim_camera.camera_fps == 5.0
    client = ["--observation_endpoint", "tcp://r:1", "--command_endpoint", "tcp://r:2"]
    old = parse_config(ClientRunConfig, client, client_parser())
    assert old == parse_config(ClientRunConfig, [f.replace("_", "-") for f in client],
                               client_parser())
    assert (old.client.observation_endpoint, old.client.command_endpoint) == ("tcp://r:1",
                                                                              "tcp://r:2")


@pytest.mark.parametrize("command", [["krabby-hal-server-jetson"],
                                     [sys.executable, "-m", "hal.server.jetson.main"]])
def test_seed_entry_points_accept_the_seed_flags(command):
    if command[0] == "krabby-hal-server-jetson":  # the console script beside this interpreter
        script = Path(sys.executable).parent / "krabby-hal-server-jetson"
        if not script.is_file():
            pytest.skip("krabby is not installed as a distribution here (no console scripts)")
        command = [str(script)]
    out = subprocess.run(command + ["--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for flag in SEED_FLAGS + ("--engine", "--robot", "--latency_budget_ms", "--speed", "--mode",
                              "--report", "--duration"):
        assert flag in out.stdout, flag
    assert "(default cuda)" in out.stdout  # --device defaults to cuda on the Jetson


def test_seed_command_with_wrong_dims_fails_before_any_device(tmp_path):
    """--obs_dim (the seed's spelling of --obs-dim) that disagrees with the robot is a one-line
    error, exit 2, no traceback, and no device is opened (the Go2 SDK is not installed here, so
    opening it would fail differently)."""
    pytest.importorskip("torch")  # writes the checkpoint
    from compute.parkour.synthetic import main as make_checkpoint

    checkpoint = tmp_path / "model.pt"
    assert make_checkpoint(["--output", str(checkpoint), "--robot", "go2"]) == 0
    out = subprocess.run([sys.executable, "-m", "hal.server.jetson.main", "--checkpoint",
                          str(checkpoint), "--action_dim", "12", "--obs_dim", "750",
                          "--control_rate", "100.0", "--device", "cpu"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "--obs-dim 750" in out.stderr and "753" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.skipif(not available("pyzed.sl"), reason="needs the ZED SDK (pyzed) and a ZED camera")
def test_zed_camera_streams_on_the_jetson():
    from hal.jetson.zed_camera import ZedConfig, ZedDepthCamera

    import numpy as np

    with ZedDepthCamera(ZedConfig()) as camera:
        frame = np.empty(camera.frame_shape, np.float32)
        info = camera.read_into(frame)
        assert info is not None and info.seq >= 1

"""Fixtures for the recorder tests: sim servers, two exported synthetic policies, one recorded run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from hal.robot import load_robot

from tests.appliance.recording import RecordingJoints

from .sim_helpers import make_sim_server


@pytest.fixture(scope="session")
def go2():
    return load_robot("go2")


def _export(directory: Path, seed: int) -> Path:
    for extra in ("torch", "onnx"):  # the [export] extra writes and exports the checkpoint
        pytest.importorskip(extra)
    from compute.parkour.synthetic import main as make_checkpoint
    from export.cli import main as export_main

    checkpoint = directory / "model.pt"
    assert make_checkpoint(["--output", str(checkpoint), "--robot", "go2", "--seed", str(seed)]) == 0
    assert export_main(["--checkpoint", str(checkpoint), "--robot", "go2", "--parity-samples", "4",
                        "--quiet"]) == 0
    onnx = directory / "model.onnx"
    assert onnx.is_file() and (directory / "model.depth.onnx").is_file()
    return onnx


@pytest.fixture(scope="session")
def exported_policy(tmp_path_factory) -> Path:
    """The policy the runs are recorded with (synthetic depth student, seed 3)."""
    return _export(tmp_path_factory.mktemp("policy_a"), seed=3)


@pytest.fixture(scope="session")
def other_policy(tmp_path_factory) -> Path:
    """A second export of a synthetic checkpoint with another seed, in another directory."""
    return _export(tmp_path_factory.mktemp("policy_b"), seed=4)


@dataclass
class RecordedRun:
    log_path: Path
    flight_path: Path
    joints: RecordingJoints
    ticks: list
    client_stats: dict
    report: dict


@pytest.fixture(scope="session")
def recorded_run(go2, exported_policy, tmp_path_factory) -> RecordedRun:
    """A 3 s real-time sim run of the exported policy with --record and a 1 s flight recorder,
    plus an on-demand flight dump at its end."""
    from compute.parkour.inference_client import InferenceClientConfig, ParkourInferenceClient
    from compute.parkour.policy_engines import open_policy_engines
    from hal.recorder import RecordingSession

    out = tmp_path_factory.mktemp("recorded")
    server, joints = make_sim_server(go2)
    ticks: list = []
    server.tick_listeners.append(lambda record: ticks.append(
        (record.seq, None if record.command is None else record.command.message.raw_action.copy())))
    policy = open_policy_engines(go2, engine=exported_policy)
    client = ParkourInferenceClient(go2, policy.actor, policy.depth, InferenceClientConfig(
        server.config.observation_endpoint, server.config.command_endpoint, forward_speed_m_s=0.5))
    session = RecordingSession(out / "run.mcap", flight_window_s=1.0, flight_dir=out / "flight")
    try:
        server.start()
        client.start()
        session.attach(server, client)
        server.safety.request_start()
        server.run(duration_s=3.0)
        flight_path = session.dump_now("test")
    finally:
        client.stop()
        server.close()
        policy.close()
        session.close()
    assert flight_path is not None
    return RecordedRun(out / "run.mcap", flight_path, joints, ticks, client.stats(),
                       session.report())

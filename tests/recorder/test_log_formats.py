"""``krabby-replay`` reproduces the actions of logs written before and after the Foxglove messages
(the depth images, ``/sim/tf``, ``/sim/scene``) moved to foxglove-sdk's protobuf encoding (log
format 1 → 2). The replay reads the depth steps' images, so both image encodings are exercised.

``tests/data/sim_record_before_foxglove_sdk.mcap`` was written by the code before that change
(commit 66479c4: ``krabby-hal-server-sim --engine model.onnx --fast --duration 3.2
--control_rate 50 --latency_budget_ms 16 --scene parkour --record ... --flight-recorder-s 0``,
the synthetic student of seed 3 exported by ``krabby-export``), so ``/sim/tf`` there is one JSON
``foxglove.FrameTransform`` per tick. The export is deterministic: the ``exported_policy`` fixture
(seed 3) is the engine that recorded it. Its images are JSON ``foxglove.RawImage`` (base64).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from hal.optional import available

if not available("mujoco"):
    pytest.skip("needs mujoco", allow_module_level=True)

OLD_LOG = Path(__file__).resolve().parents[1] / "data" / "sim_record_before_foxglove_sdk.mcap"


def _replays(log_path: Path, go2, engine: Path) -> None:
    from compute.parkour.policy_engines import open_policy_engines
    from hal.recorder.reader import read_log
    from hal.recorder.replay import replay_log

    log = read_log(log_path)
    assert len(log.actor) > 20 and len(log.depth) > 2
    policy = open_policy_engines(go2, engine=engine)
    try:
        result = replay_log(log, go2, policy.actor, policy.depth, tolerance=1e-5)
    finally:
        policy.close()
    assert result.steps == len(log.actor) and result.depth_steps == len(log.depth)
    assert result.action_max_abs <= 1e-5 and result.passed


def test_log_written_before_the_sdk_reads_and_replays(go2, exported_policy):
    from mcap.reader import make_reader

    from hal.recorder.plot import pose_track
    from hal.recorder.reader import read_log

    with open(OLD_LOG, "rb") as stream:
        summary = make_reader(stream).get_summary()
    encodings = {c.topic: c.message_encoding for c in summary.channels.values()}
    assert encodings["/sim/tf"] == encodings["/policy/depth_input"] == "json"  # hand-written
    log = read_log(OLD_LOG)
    assert log.run["format_version"] == 1
    first = log.extra["/sim/tf"][0][2]
    assert first["child_frame_id"] == "base" and "transforms" not in first
    track = pose_track(log)
    assert len(track["x"]) == len(log.ticks) and np.all(np.isfinite(track["yaw"]))
    _replays(OLD_LOG, go2, exported_policy)


@pytest.mark.slow
def test_log_written_through_the_sdk_replays(go2, exported_policy, tmp_path, monkeypatch):
    pytest.importorskip("foxglove")
    from mcap.reader import make_reader

    from hal.server.cli import run_appliance
    from hal.server.sim.main import config_from_argv, plan_from_config

    monkeypatch.chdir(tmp_path)
    log_path = tmp_path / "new.mcap"
    tag = f"fmt_{os.getpid()}_{time.monotonic_ns()}"
    config = config_from_argv([
        "--engine", str(exported_policy), "--fast", "--duration", "3.2", "--control_rate", "50",
        "--latency_budget_ms", "16", "--scene", "parkour", "--record", str(log_path),
        "--flight-recorder-s", "0", "--no-keyboard", "--estop_bind", "none",
        "--observation_bind", f"inproc://{tag}_o", "--command_bind", f"inproc://{tag}_c",
        "--log-level", "WARNING"])
    run_appliance(plan_from_config(config), config)
    with open(log_path, "rb") as stream:
        summary = make_reader(stream).get_summary()
    encodings = {c.topic: c.message_encoding for c in summary.channels.values()}
    assert encodings["/sim/tf"] == encodings["/sim/scene"] == "protobuf"
    assert encodings["/policy/depth_input"] == "protobuf"  # foxglove.RawImage through the SDK
    _replays(log_path, go2, exported_policy)

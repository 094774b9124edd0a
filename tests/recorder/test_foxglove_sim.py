"""``krabby-hal-server-sim --record``: the trunk pose (/sim/tf) and the robot's bodies
(/sim/scene) as Foxglove messages that pass Foxglove's published schemas, equal to the world's
own state tick by tick; ``krabby-replay --plot`` draws the track from them."""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np
import pytest

from hal.optional import available

if not available("mujoco"):
    pytest.skip("needs mujoco", allow_module_level=True)

from .foxglove_published import FRAME_TRANSFORM, SCENE_UPDATE, unknown_keys


def test_quaternion_from_matrix_matches_mujoco():
    import mujoco

    from hal.sim.foxglove_scene import quaternion_xyzw_from_matrix

    rng = np.random.default_rng(1)
    for _ in range(300):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        mat = np.zeros(9)
        mujoco.mju_quat2Mat(mat, q)
        x, y, z, w = quaternion_xyzw_from_matrix(mat)
        expected = q if q[0] >= 0 else -q
        np.testing.assert_allclose((w, x, y, z), expected, atol=1e-9)


@pytest.mark.slow
def test_recorded_pose_and_scene_pass_the_published_schemas(exported_policy, tmp_path,
                                                            monkeypatch):
    jsonschema = pytest.importorskip("jsonschema")
    from mcap.reader import make_reader

    from hal.recorder.plot import plot_summary, pose_track
    from hal.recorder.reader import read_log
    from hal.server.cli import run_appliance
    from hal.server.sim.main import build_parser, plan_from_args

    monkeypatch.chdir(tmp_path)
    log_path = tmp_path / "run.mcap"
    tag = f"fox_{os.getpid()}_{time.monotonic_ns()}"
    args = build_parser().parse_args([
        "--engine", str(exported_policy), "--fast", "--control_rate", "50",
        "--latency_budget_ms", "16", "--duration", "3", "--log-level", "WARNING",
        "--observation_bind", f"inproc://{tag}_o", "--command_bind", f"inproc://{tag}_c",
        "--estop_bind", "none", "--flight-recorder-s", "0", "--no-keyboard",
        "--scene", "parkour", "--record", str(log_path)])
    plan = plan_from_args(args)
    truth: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def watch(server, _client) -> None:
        world = server.devices.world
        server.tick_listeners.append(lambda r: truth.__setitem__(
            r.seq, (world.data.xpos[world._trunk].copy(), world.data.xquat[world._trunk].copy())))

    plan.on_started.append(watch)
    run_appliance(plan, args)

    schemas, messages = {}, {"/sim/tf": [], "/sim/scene": []}
    with open(log_path, "rb") as stream:
        reader = make_reader(stream)
        for schema, channel, message in reader.iter_messages(topics=list(messages)):
            schemas[channel.topic] = (schema.name, schema.encoding, channel.message_encoding)
            messages[channel.topic].append((message.sequence, message.log_time,
                                            json.loads(message.data)))
    assert schemas["/sim/tf"] == ("foxglove.FrameTransform", "jsonschema", "json")
    assert schemas["/sim/scene"] == ("foxglove.SceneUpdate", "jsonschema", "json")
    assert len(messages["/sim/tf"]) == len(truth) == 150
    for seq, log_time, msg in messages["/sim/tf"]:
        jsonschema.validate(msg, FRAME_TRANSFORM)
        assert unknown_keys(msg, FRAME_TRANSFORM) == []
        pos, quat = truth[seq]
        t = msg["translation"]
        np.testing.assert_allclose((t["x"], t["y"], t["z"]), pos, atol=1e-12)
        r = msg["rotation"]
        np.testing.assert_allclose((r["w"], r["x"], r["y"], r["z"]), quat, atol=1e-12)
        assert msg["timestamp"]["sec"] * 10**9 + msg["timestamp"]["nsec"] == log_time
        assert (msg["parent_frame_id"], msg["child_frame_id"]) == ("world", "base")
    # 10 Hz of simulated time over 3 s: frames at 0, 0.1, ..., 3.0 s (the first tick ends at 0.02).
    assert len(messages["/sim/scene"]) == 31
    for _, _, msg in messages["/sim/scene"]:
        jsonschema.validate(msg, SCENE_UPDATE)
        assert unknown_keys(msg, SCENE_UPDATE) == []
    robot, terrain = messages["/sim/scene"][-1][2]["entities"]
    assert robot["id"] == "robot" and terrain["id"] == "terrain"
    assert len(robot["spheres"]) >= 4 and robot["cubes"] and terrain["cubes"]  # feet, trunk, step
    for primitive in robot["spheres"] + robot["cubes"] + robot["cylinders"]:
        q = primitive["pose"]["orientation"]
        assert math.isclose(math.hypot(q["x"], q["y"], q["z"], q["w"]), 1.0, abs_tol=1e-9)

    log = read_log(log_path)
    track = pose_track(log)
    np.testing.assert_allclose(track["x"], [truth[s][0][0] for s in sorted(truth)], atol=1e-12)
    out = plot_summary(log, None, tmp_path / "run.png")
    assert out.stat().st_size > 10_000

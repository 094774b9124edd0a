"""``krabby-hal-server-sim --record``: the trunk pose and every link (/sim/tf,
``foxglove.FrameTransforms``) and the robot's bodies and the terrain (/sim/scene,
``foxglove.SceneUpdate``), written through foxglove-sdk's encoders with the protobuf schema the SDK
gives, decode with that schema to the world's own state tick by tick; ``krabby-replay --plot`` draws
the track from them."""

from __future__ import annotations

import math
import os
import time

import numpy as np
import pytest

from hal.optional import available

if not available("mujoco"):
    pytest.skip("needs mujoco", allow_module_level=True)

pytest.importorskip("foxglove")  # the [live] extra


def test_quaternion_from_matrix_matches_mujoco():
    import mujoco

    from hal.live.messages import quaternion_xyzw_from_matrix

    rng = np.random.default_rng(1)
    for _ in range(300):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        mat = np.zeros(9)
        mujoco.mju_quat2Mat(mat, q)
        x, y, z, w = quaternion_xyzw_from_matrix(mat)
        expected = q if q[0] >= 0 else -q
        np.testing.assert_allclose((w, x, y, z), expected, atol=1e-9)


def _decoder(schema):
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    pool = descriptor_pool.DescriptorPool()
    for proto in descriptor_pb2.FileDescriptorSet.FromString(schema.data).file:
        pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(schema.name))


@pytest.mark.slow
def test_recorded_pose_and_scene_decode_with_the_sdk_schemas(exported_policy, tmp_path,
                                                             monkeypatch):
    from mcap.reader import make_reader

    from hal.recorder.plot import plot_summary, pose_track
    from hal.recorder.reader import read_log
    from hal.server.cli import run_appliance
    from hal.server.sim.main import config_from_argv, plan_from_config

    monkeypatch.chdir(tmp_path)
    log_path = tmp_path / "run.mcap"
    tag = f"fox_{os.getpid()}_{time.monotonic_ns()}"
    config = config_from_argv([
        "--engine", str(exported_policy), "--fast", "--control_rate", "50",
        "--latency_budget_ms", "16", "--duration", "3", "--log-level", "WARNING",
        "--observation_bind", f"inproc://{tag}_o", "--command_bind", f"inproc://{tag}_c",
        "--estop_bind", "none", "--flight-recorder-s", "0", "--no-keyboard",
        "--scene", "parkour", "--record", str(log_path)])
    plan = plan_from_config(config)
    truth: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    names: list[str] = []

    def watch(server, _client) -> None:
        world = server.devices.world
        model = world.model
        names.extend(model.body(i).name for i in range(model.nbody))
        names[world._trunk] = "base"
        server.tick_listeners.append(lambda r: truth.__setitem__(
            r.seq, (world.data.xpos.copy(), world.data.xquat.copy())))

    plan.on_started.append(watch)
    run_appliance(plan, config)

    schemas, messages = {}, {"/sim/tf": [], "/sim/scene": []}
    with open(log_path, "rb") as stream:
        reader = make_reader(stream)
        classes = {}
        for schema, channel, message in reader.iter_messages(topics=list(messages)):
            schemas[channel.topic] = (schema.name, schema.encoding, channel.message_encoding)
            cls = classes.setdefault(channel.topic, _decoder(schema))
            messages[channel.topic].append((message.sequence, message.log_time,
                                            cls.FromString(message.data)))
    assert schemas["/sim/tf"] == ("foxglove.FrameTransforms", "protobuf", "protobuf")
    assert schemas["/sim/scene"] == ("foxglove.SceneUpdate", "protobuf", "protobuf")
    assert len(messages["/sim/tf"]) == len(truth) == 150
    trunk = names.index("base")
    for seq, log_time, msg in messages["/sim/tf"]:
        xpos, xquat = truth[seq]
        by_child = {t.child_frame_id: t for t in msg.transforms}
        assert len(by_child) == len(names) - 1  # every body but the world
        base = by_child["base"]
        assert base.parent_frame_id == "world"
        np.testing.assert_allclose((base.translation.x, base.translation.y, base.translation.z),
                                   xpos[trunk], atol=1e-12)
        r = base.rotation
        np.testing.assert_allclose((r.w, r.x, r.y, r.z), xquat[trunk], atol=1e-12)
        assert base.timestamp.seconds * 10**9 + base.timestamp.nanos == log_time
        # Each link's transform, composed down from the world, lands on MuJoCo's own body pose.
        for child, t in by_child.items():
            chain, frame = [], child
            while frame != "world":
                chain.append(by_child[frame])
                frame = by_child[frame].parent_frame_id
            pos, rot = np.zeros(3), np.eye(3)
            for link in reversed(chain):
                q = link.rotation
                pos = pos + rot @ np.array([link.translation.x, link.translation.y,
                                            link.translation.z])
                rot = rot @ _matrix(q.w, q.x, q.y, q.z)
            body = names.index(child)
            np.testing.assert_allclose(pos, xpos[body], atol=1e-9)
            np.testing.assert_allclose(rot, _matrix(*xquat[body]), atol=1e-9)
    # 1 Hz of simulated time over 3 s: updates at 0, 1, 2 and 3 s (the first tick ends at 0.02).
    assert len(messages["/sim/scene"]) == 4
    entities = {e.id: e for e in messages["/sim/scene"][-1][2].entities}
    terrain = entities.pop("terrain")
    assert terrain.frame_id == "world" and not terrain.frame_locked and terrain.cubes  # the step
    assert entities and all(e.frame_locked and e.id == f"robot/{e.frame_id}"
                            for e in entities.values())
    assert "robot/base" in entities and entities["robot/base"].cubes  # the trunk
    assert sum(len(e.spheres) for e in entities.values()) >= 4  # the feet
    for entity in [terrain, *entities.values()]:
        for primitive in [*entity.spheres, *entity.cubes, *entity.cylinders]:
            q = primitive.pose.orientation
            assert math.isclose(math.hypot(q.x, q.y, q.z, q.w), 1.0, abs_tol=1e-9)

    log = read_log(log_path)
    assert log.extra["/sim/tf"][0][2]["transforms"][0]["child_frame_id"] == "base"
    track = pose_track(log)
    np.testing.assert_allclose(track["x"], [truth[s][0][trunk][0] for s in sorted(truth)],
                               atol=1e-12)
    out = plot_summary(log, None, tmp_path / "run.png")
    assert out.stat().st_size > 10_000


def _matrix(w, x, y, z):
    """Rotation matrix of a unit quaternion, written out from its definition."""
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])

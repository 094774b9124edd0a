"""``krabby-hal-server-sim --live``: a real WebSocket client speaking Foxglove's protocol
(``foxglove.sdk.v1``) subscribes to the pose, the joints, the policy's depth image and the safety
mode, decodes them with the schemas the server advertised and finds the run's values, while the
loop holds its rate and meets its deadlines (within this shared machine's own noise; the paired
measurement with live off is benchmarks/live_appliance.py)."""

from __future__ import annotations

import numpy as np
import pytest

for _extra in ("foxglove", "websockets", "google.protobuf"):  # the [live] extra
    pytest.importorskip(_extra)

from .appliance import live_port, read_report, start_live_sim  # noqa: E402
from hal.live.client import SUBPROTOCOL, FoxgloveClient  # noqa: E402

RATE_HZ = 50.0
DURATION_S = 8.0


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_client_sees_what_the_policy_sees(live_policy, tmp_path):
    from hal.robot import load_robot

    report_path = tmp_path / "report.json"
    topics = ["/pose", "/tf", "/joints", "/policy/depth", "/camera/depth", "/safety/mode",
              "/policy/height_scan", "/policy/heading", "/latency", "/operator/command",
              "/scene", "/log", "/safety/transition"]
    with start_live_sim(live_policy, report_path, DURATION_S, rate_hz=RATE_HZ) as child:
        port = live_port(child)
        with FoxgloveClient(port) as client:
            assert client.subprotocol == SUBPROTOCOL
            assert client.server_info["op"] == "serverInfo"
            assert client.server_info["capabilities"] == []  # read-only: nothing to call or set
            assert set(topics) <= set(client.channels)
            schema_of = {t: (c["encoding"], c["schemaName"]) for t, c in client.channels.items()}
            assert schema_of["/pose"] == ("protobuf", "foxglove.PoseInFrame")
            assert schema_of["/policy/depth"] == ("protobuf", "foxglove.RawImage")
            assert schema_of["/joints"][0] == "json"
            client.subscribe(topics)
            client.pump(DURATION_S + 2.0)  # until the run ends and the server closes
        assert child.wait(60) == 0, child.output[-3000:]
    report = read_report(report_path)
    got = client.received

    # The loop held its rate and met its deadlines with a client subscribed to everything. A live
    # view that made the loop wait would miss most of them; this shared machine misses one now
    # and then with live off too (benchmarks/live_appliance.py measures both, same run), so the
    # bound is that noise: at most 1 % of the commands.
    assert report["deadline_misses"] <= 0.01 * report["cycles"], report["deadline_misses"]
    assert report["cycles"] >= 0.97 * RATE_HZ * DURATION_S
    assert report["live"]["errors"] == 0

    # Pose: ground truth of the simulated trunk, ending where the report's track ends.
    poses = [m for _, m in got["/pose"]]
    assert len(poses) > 2 * DURATION_S
    assert all(p.frame_id == "world" for p in poses)
    last = poses[-1].pose
    q = last.orientation
    assert abs(np.linalg.norm([q.x, q.y, q.z, q.w]) - 1.0) < 1e-6
    track = report["sim"]["track"]
    columns, final_row = track["columns"], track["rows"][-1]
    final = {name: final_row[columns.index(name)] for name in columns}
    assert abs(last.position.x - final["x_m"]) < 0.05
    assert abs(last.position.y - final["y_m"]) < 0.05
    assert report["sim"]["min_base_height_m"] - 0.02 <= last.position.z
    # /tf carries the base and the links.
    frames = {t.child_frame_id for t in got["/tf"][-1][1].transforms}
    assert "base" in frames and len(frames) > 4

    # Joints: the robot's joints in hardware order; the policy's target and the safe target.
    robot = load_robot("go2")
    joints = [m for _, m in got["/joints"]]
    assert joints[-1]["names"] == list(robot.joint_names_hardware)
    in_policy = [j for j in joints if j["mode"] == "policy" and None not in j["policy_target_rad"]]
    assert in_policy, "no joints message while the policy drove"
    for j in in_policy:
        assert len(j["measured_rad"]) == len(j["safe_target_rad"]) == robot.n_joints
        assert np.all(np.isfinite(j["safe_target_rad"]))
    # The joints are sent at the loop's rate (<= 100 Hz): about one per tick once subscribed.
    assert len(joints) >= 0.5 * RATE_HZ * DURATION_S
    assert any(j["new_command"] for j in in_policy)

    # The policy's depth image: 58x87 32FC1, finite, as the depth step saw it.
    images = [m for _, m in got["/policy/depth"]]
    assert images
    for image in images:
        assert (image.height, image.width, image.encoding) == (58, 87, "32FC1")
        assert image.step == 4 * 87 and len(image.data) == 58 * 87 * 4
        assert np.all(np.isfinite(np.frombuffer(image.data, dtype="<f4")))
    camera = got["/camera/depth"][-1][1]
    assert camera.encoding == "32FC1" and (camera.height, camera.width) != (58, 87)

    # The safety mode and its transitions, the scan, the heading, the command.
    modes = [m["mode"] for _, m in got["/safety/mode"]]
    assert "policy" in modes
    transitions = [(m["from"], m["to"]) for _, m in got["/safety/transition"]]
    assert ("ready", "policy") in transitions
    scan = got["/policy/height_scan"][-1][1]
    assert scan.point_stride == 12 and len(scan.data) == 132 * 12
    z = np.frombuffer(scan.data, dtype="<f4").reshape(132, 3)[:, 2]
    assert np.all(z < 0)  # the ground lies below the base
    heading = got["/policy/heading"][-1][1]
    assert np.isclose(heading["heading_error_rad"], heading["observation"][0] / 1.5)
    command = got["/operator/command"][-1][1]
    assert command["forward_speed_m_s"] == report["command"]["forward_speed_m_s"]
    assert any("policy" in m.message for _, m in got["/log"])

    # The README's picture is drawn from exactly these messages.
    from hal.live.snapshot import render_snapshot

    png = render_snapshot(got, tmp_path / "live_view.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000

"""``krabby-hal-server-jetson --live`` on the robot's own code path (recorded ZED frames, the MCU
emulator on a pty, ``--dry-run``): a client reads the pose (the IMU's orientation, no position),
the joints, both depth images and the safety mode."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

for _extra in ("foxglove", "websockets", "google.protobuf"):  # the [live] extra
    pytest.importorskip(_extra)

from hal.live.client import FoxgloveClient  # noqa: E402

RECORDING = Path(__file__).resolve().parents[1] / "data" / "sim_recording.npz"
TOPICS = ["/pose", "/tf", "/joints", "/safety/mode", "/policy/depth", "/camera/depth"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listen(port: int, out: dict, stop: threading.Event) -> None:
    deadline = time.monotonic() + 60
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            client = FoxgloveClient(port, timeout_s=2.0)
        except OSError:
            time.sleep(0.1)
            continue
        with client:
            client.subscribe([t for t in TOPICS if t in client.channels])
            out["channels"] = set(client.channels)
            while not stop.is_set():
                client.pump(0.2)
            out["received"] = client.received
        return


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_jetson_server_streams_live(live_policy, endpoints):
    from hal.server.jetson.main import main as jetson_main
    from hal.tools.mcu_emulator import McuEmulator, McuEmulatorConfig
    from hal.robot import load_robot

    go2 = load_robot("go2")
    port, out, stop = _free_port(), {}, threading.Event()
    listener = threading.Thread(target=_listen, args=(port, out, stop), daemon=True)
    listener.start()
    obs_ep, cmd_ep = endpoints
    start = tuple(float(v) for v in go2.to_hardware(go2.default_angles))
    try:
        with McuEmulator(McuEmulatorConfig(initial_position_rad=start)) as emulator:
            code = jetson_main([
                "--engine", str(live_policy), "--device", "cpu", "--control-rate", "50",
                "--duration", "5", "--camera", "recorded", "--recording", str(RECORDING),
                "--loop-recording", "--motors", "serial", "--serial-port", emulator.port,
                "--observation-bind", obs_ep, "--command-bind", cmd_ep, "--estop-bind", "none",
                "--dry-run", "--no-keyboard", "--flight-recorder-s", "0",
                "--live", f"127.0.0.1:{port}"])
    finally:
        stop.set()
        listener.join(20)
    assert code == 0
    assert "/scene" not in out["channels"]  # no simulator on the robot
    got = out["received"]
    assert {t for t in TOPICS if got.get(t)} == set(TOPICS), {t: len(got.get(t, ())) for t in TOPICS}
    pose = got["/pose"][-1][1].pose
    q = pose.orientation
    assert (pose.position.x, pose.position.y, pose.position.z) == (0.0, 0.0, 0.0)
    assert abs(np.linalg.norm([q.x, q.y, q.z, q.w]) - 1.0) < 1e-6
    joints = got["/joints"][-1][1]
    assert joints["names"] == list(go2.joint_names_hardware)
    assert "policy" in {m["mode"] for _, m in got["/safety/mode"]}
    image = got["/policy/depth"][-1][1]
    assert (image.height, image.width) == (58, 87)

"""Transport benchmark: observation out, command back, for the real observation sizes.

Cases, all measured in one run on the same sizes (a 12-joint state block plus a depth frame):

- ``inproc_slots``: our inproc path — header over ZMQ, arrays read in place from the slots;
- ``inproc_frames``: inproc, arrays serialised as raw frames (what a tcp client gets);
- ``tcp_frames``: the same over loopback tcp;
- ``naive_pickle`` / ``naive_json``: what a user writes first — a dict of arrays pickled or
  JSON-encoded over ZMQ.

The measured interval runs from the moment the HAL publishes to the moment it has received the
command answering that observation (the client reads every array once, as a policy would).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import numpy as np
import zmq

from benchmarks.common import ratio, stats_us
from benchmarks.naive import NaiveCodec, bind_server_sockets, connect_client_sockets
from hal.client import HalClient
from hal.devices.base import CameraIntrinsics
from hal.protocol import CommandMessage, StateLayout
from hal.transport import CommandReceiver, ObservationPublisher

__all__ = ["run"]

N_JOINTS, N_FEET = 12, 4


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _endpoints(kind: str, tag: str) -> tuple[str, str]:
    if kind == "tcp":
        return f"tcp://127.0.0.1:{_free_port()}", f"tcp://127.0.0.1:{_free_port()}"
    return f"inproc://bench_obs_{tag}", f"inproc://bench_cmd_{tag}"


def _krabby_case(kind: str, share_slots: bool, depth_shape: tuple[int, int], n: int) -> list[int]:
    ctx = zmq.Context.instance()
    obs_ep, cmd_ep = _endpoints(kind, f"{kind}_{share_slots}_{depth_shape[1]}")
    layout = StateLayout(N_JOINTS, N_FEET)
    pub = ObservationPublisher(obs_ep, layout, depth_shape, ctx, share_slots=share_slots)
    rcv = CommandReceiver(cmd_ep, N_JOINTS, ctx)
    intrinsics = CameraIntrinsics(depth_shape[1], depth_shape[0], 100.0, 100.0,
                                  depth_shape[1] / 2, depth_shape[0] / 2)
    stop = threading.Event()
    zeros = np.zeros(N_JOINTS, np.float32)

    def client_loop() -> None:
        with HalClient(obs_ep, cmd_ep, N_JOINTS, N_FEET, depth_shape, context=ctx) as client:
            while not stop.is_set():
                obs = client.poll(timeout_ms=50)
                if obs is None:
                    continue
                # Touch every array as a policy would (the depth step reads the whole frame).
                _ = float(obs.joint_position_rad[0]) + float(obs.depth_m[0, 0])
                client.send_command(CommandMessage(obs.seq, obs.joint_position_rad[:N_JOINTS].copy(),
                                                   zeros, zeros, zeros))

    thread = threading.Thread(target=client_loop, name="bench-client", daemon=True)
    thread.start()
    rng = np.random.default_rng(0)
    frame = rng.uniform(0.2, 3.0, depth_shape).astype(np.float32)
    samples = []
    time.sleep(0.3)
    try:
        for seq in range(1, n + 1):
            views = pub.begin_state()
            views["joint_position_rad"][...] = seq
            # A new depth frame every tick: the worst case for the copying transports.
            pub.begin_depth()[...] = frame
            pub.commit_depth(seq, time.monotonic_ns(), intrinsics)
            publish_ns = pub.commit_state_and_publish(seq, time.monotonic_ns())
            got = rcv.wait_for(seq, publish_ns + 200_000_000)
            if got is not None and seq > 20:  # skip warm-up
                samples.append(got.receive_ns - publish_ns)
            time.sleep(0.0005)
    finally:
        stop.set()
        thread.join(timeout=5)
        rcv.close()
        pub.close()
    return samples


def _naive_case(encoding: str, depth_shape: tuple[int, int], n: int) -> list[int]:
    ctx = zmq.Context.instance()
    obs_ep, cmd_ep = _endpoints("tcp", encoding)
    pub, pull = bind_server_sockets(ctx, obs_ep, cmd_ep, 200)
    codec = NaiveCodec(encoding)
    stop = threading.Event()

    def client_loop() -> None:
        sub, push = connect_client_sockets(ctx, obs_ep, cmd_ep, 50)
        try:
            while not stop.is_set():
                try:
                    msg = codec.decode(sub.recv())
                except zmq.Again:
                    continue
                depth = np.asarray(msg["depth"], dtype=np.float32)
                _ = float(depth[0, 0])
                push.send(codec.encode({"seq": msg["seq"],
                                        "target": np.asarray(msg["q"], np.float32)}))
        finally:
            sub.close(linger=0)
            push.close(linger=0)

    thread = threading.Thread(target=client_loop, daemon=True)
    thread.start()
    frame = np.random.default_rng(0).uniform(0.2, 3.0, depth_shape).astype(np.float32)
    samples = []
    time.sleep(0.3)
    try:
        for seq in range(1, n + 1):
            t0 = time.monotonic_ns()
            pub.send(codec.encode({"seq": seq, "q": np.full(N_JOINTS, seq, np.float32),
                                   "depth": frame}))
            while True:
                try:
                    reply = codec.decode(pull.recv())
                except zmq.Again:
                    break
                if reply["seq"] == seq:
                    if seq > 5:
                        samples.append(time.monotonic_ns() - t0)
                    break
            time.sleep(0.0005)
    finally:
        stop.set()
        thread.join(timeout=5)
        pub.close(linger=0)
        pull.close(linger=0)
    return samples


def run(quick: bool = True) -> dict[str, Any]:
    """Measure every case for the training-camera frame and a ZED VGA frame; ratios vs slots."""
    n = 300 if quick else 3000
    n_naive = 60 if quick else 500
    results: dict[str, Any] = {}
    for label, shape in (("depth_106x60", (60, 106)), ("depth_672x376", (376, 672))):
        cases = {
            "inproc_slots": stats_us(_krabby_case("inproc", True, shape, n)),
            "inproc_frames": stats_us(_krabby_case("inproc", False, shape, n)),
            "tcp_frames": stats_us(_krabby_case("tcp", False, shape, n)),
            "naive_pickle": stats_us(_naive_case("pickle", shape, n_naive)),
            # JSON of a VGA frame takes a third of a second a message: a few dozen are plenty.
            "naive_json": stats_us(_naive_case("json", shape, n_naive if shape[0] < 100 else 25)),
        }
        base = cases["inproc_slots"]
        ratios = {f"{name}_vs_inproc_slots_p50": ratio(c, base) for name, c in cases.items()
                  if name != "inproc_slots"}
        ratios.update({f"{name}_vs_inproc_slots_p99": ratio(c, base, "p99")
                       for name, c in cases.items() if name != "inproc_slots"})
        results[label] = {"shape_hw": list(shape), "cases": cases, "ratios": ratios}
    return results


if __name__ == "__main__":
    print(json.dumps(run(quick=True), indent=2))

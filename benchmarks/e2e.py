"""End-to-end benchmark in the simulator: obs_to_command and loop jitter, ours vs the naive loop.

Our cases run the real appliance in one process (HAL server on this thread, inference client on its
threads, ONNX Runtime engines, the MuJoCo robot stepped in real time):

- ``krabby_100hz`` — the default: depth thread on, garbage-collector control on;
- ``krabby_100hz_no_depth`` — without the depth thread (its cost on the actor path);
- ``krabby_100hz_no_gc_control`` — Python's collector left alone;
- ``krabby_500hz`` — the loop at 500 Hz;
- ``rate_sweep`` — deadline misses at 200, 250, 333 and 500 Hz: the highest rate held without a
  miss.

The **naive baseline** is what a user writes first: torch eager policy, observation arrays sent as
JSON over ZMQ (or pickled), a blocking wait for the reply, ``sleep(period)`` after the work. It runs
on the same simulated robot and the same observation builder, so the difference is the runtime.
``obs_to_command`` is measured from publishing an observation to having its command ready for the
motors, in both.
"""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from benchmarks.common import ratio, stats_us
from benchmarks.naive import NaiveCodec, bind_server_sockets, connect_client_sockets

__all__ = ["run", "run_krabby", "run_naive"]


def run_krabby(onnx_path: Path, rate_hz: float, duration_s: float, depth_thread: bool = True,
               gc_control: bool = True, tag: str = "") -> dict[str, Any]:
    """One in-process appliance run; returns latency stats and the raw series for plots."""
    from compute.parkour.inference_client import InferenceClientConfig, ParkourInferenceClient
    from compute.parkour.policy_engines import open_policy_engines
    from hal.robot import load_robot
    from hal.server.base import HalServer, HalServerConfig
    from hal.sim import MujocoWorldConfig, make_sim_devices

    robot = load_robot("go2")
    policy = open_policy_engines(robot, engine=onnx_path)
    sim = make_sim_devices(robot, MujocoWorldConfig(scene="flat", settle_s=0.5, render_thread=True))
    obs_ep, cmd_ep = f"inproc://bench_e2e_obs_{tag}", f"inproc://bench_e2e_cmd_{tag}"
    server = HalServer(robot, sim,
                       HalServerConfig(control_rate_hz=rate_hz, latency_budget_ms=500.0 / rate_hz,
                                       observation_endpoint=obs_ep, command_endpoint=cmd_ep,
                                       gc_control=gc_control))
    client = ParkourInferenceClient(robot, policy.actor, policy.depth, InferenceClientConfig(
        obs_ep, cmd_ep, forward_speed_m_s=0.5, depth_thread=depth_thread))
    tick_ns: list[int] = []
    server.tick_listeners.append(lambda record: tick_ns.append(record.tick_ns))
    try:
        server.start()
        client.start()
        server.safety.request_start()
        report = server.run(duration_s=duration_s)
    finally:
        client.stop()
        server.close()
        policy.close()
    # Actual tick starts: the deadline plus how late the loop woke for it.
    starts_ns = np.asarray(tick_ns) + server.latency["loop_jitter"].values_ns()[-len(tick_ns):]
    periods_us = np.diff(starts_ns) / 1e3
    return {
        "rate_hz": rate_hz,
        "cycles": report.cycles,
        "deadline_misses": report.deadline_misses,
        "obs_to_command": report.latency_us["obs_to_command"].to_dict(),
        "loop_jitter": report.loop_jitter_us.to_dict(),
        "period_error": stats_us(np.abs(periods_us - 1e6 / rate_hz) * 1e3),
        "actor_step": report.latency_us["actor_step"].to_dict(),
        "depth_step": report.latency_us["depth_step"].to_dict(),
        "world_step": report.latency_us["world_step"].to_dict(),
        "_series": {"obs_to_command_us": (server.latency["obs_to_command"].values_ns() / 1e3).tolist(),
                    "period_us": periods_us.tolist()},
    }


def run_naive(checkpoint: Path, rate_hz: float, duration_s: float, encoding: str = "json"
              ) -> dict[str, Any]:
    """The loop a user writes first (see the module docstring)."""
    import torch

    from compute.parkour.checkpoint import load_checkpoint
    from compute.parkour.observation import ObservationBuilder, PolicyCommand
    from compute.parkour.layout import ObservationLayout
    from hal.devices.base import JointCommand
    from hal.robot import load_robot
    from hal.sim import MujocoWorldConfig, make_sim_devices

    robot = load_robot("go2")
    policy = load_checkpoint(checkpoint, robot)
    sim = make_sim_devices(robot, MujocoWorldConfig(scene="flat", settle_s=0.5, render_thread=True))
    ctx = zmq.Context.instance()
    obs_ep, cmd_ep = "inproc://naive_obs_" + encoding, "inproc://naive_cmd_" + encoding
    pub, pull = bind_server_sockets(ctx, obs_ep, cmd_ep, int(1000 / rate_hz))
    codec = NaiveCodec(encoding)
    stop = threading.Event()

    def policy_thread() -> None:
        sub, push = connect_client_sockets(ctx, obs_ep, cmd_ep, 100)
        builder = ObservationBuilder(robot)
        command = PolicyCommand(0.5, "parkour")
        last = np.zeros(robot.n_joints, np.float32)
        latent = torch.zeros(1, ObservationLayout.from_robot(robot).depth_latent_dim)
        try:
            while not stop.is_set():
                try:
                    msg = codec.decode(sub.recv())
                except zmq.Again:
                    continue
                hw = _Obs(msg)
                obs = builder.build(hw, command, np.zeros(2, np.float32), last)
                with torch.no_grad():
                    actions = policy.actor_step(torch.from_numpy(obs[None].copy()), latent)[0].numpy()
                last = actions.astype(np.float32)
                target = robot.default_angles + robot.action_scale * np.clip(actions, -4.8, 4.8)
                push.send(codec.encode({"seq": msg["seq"], "target": robot.to_hardware(target)}))
        finally:
            sub.close(linger=0)
            push.close(linger=0)

    thread = threading.Thread(target=policy_thread, daemon=True)
    thread.start()
    samples, periods, misses = [], [], 0
    kp = robot.to_hardware(robot.kp)
    kd = robot.to_hardware(robot.kd)
    frame = np.empty(sim.camera.frame_shape, np.float32)
    with sim:
        time.sleep(0.3)
        end = time.monotonic() + duration_s
        seq, last_start = 0, None
        while time.monotonic() < end:
            start = time.monotonic_ns()
            if last_start is not None:
                periods.append((start - last_start) / 1e3)
            last_start = start
            seq += 1
            joints, imu, contacts = sim.joints.read(), sim.imu.read(), sim.contacts.read()
            sim.camera.read_into(frame)
            message = {"seq": seq, "q": joints.position_rad, "dq": joints.velocity_rad_s,
                       "quat": imu.quaternion_wxyz, "gyro": imu.angular_velocity_rad_s,
                       "force": contacts.force_n, "depth": frame}
            publish_ns = time.monotonic_ns()
            pub.send(codec.encode(message))
            target = None
            while True:
                try:
                    reply = codec.decode(pull.recv())
                except zmq.Again:
                    misses += 1
                    break
                if reply["seq"] == seq:
                    target = np.asarray(reply["target"])
                    samples.append(time.monotonic_ns() - publish_ns)
                    break
            if target is not None:
                sim.joints.write(JointCommand(target, kp, kd))
            sim.world.advance(1.0 / rate_hz)
            time.sleep(1.0 / rate_hz)  # the classic mistake: sleep a period after the work
    stop.set()
    thread.join(timeout=5)
    pub.close(linger=0)
    pull.close(linger=0)
    periods_arr = np.asarray(periods)
    period_error_ns = np.abs(periods_arr - 1e6 / rate_hz) * 1e3
    return {"rate_hz": rate_hz, "cycles": seq, "deadline_misses": misses,
            "obs_to_command": stats_us(samples),
            "period_error": stats_us(period_error_ns),
            "achieved_rate_hz": round(1e6 / float(np.mean(periods_arr)), 2) if len(periods) else 0.0,
            "_series": {"obs_to_command_us": (np.asarray(samples) / 1e3).tolist(),
                        "period_us": periods}}


class _Obs:
    """A decoded naive message with the attributes the observation builder reads."""

    def __init__(self, msg: dict[str, Any]) -> None:
        f32 = lambda key: np.asarray(msg[key], dtype=np.float32)  # noqa: E731
        self.joint_position_rad = f32("q")
        self.joint_velocity_rad_s = f32("dq")
        self.imu_quaternion_wxyz = f32("quat")
        self.imu_angular_velocity_rad_s = f32("gyro")
        self.foot_force_n = f32("force")


def rate_sweep(onnx_path: Path, rates_hz: tuple[float, ...], seconds: float) -> dict[str, Any]:
    """Deadline misses at each control rate; the highest rate with none is the loop's ceiling."""
    rows = {}
    for rate in rates_hz:
        case = run_krabby(onnx_path, rate, seconds, tag=f"sweep{int(rate)}")
        rows[f"{rate:g}"] = {"cycles": case["cycles"], "deadline_misses": case["deadline_misses"],
                             "obs_to_command": case["obs_to_command"],
                             "loop_jitter": case["loop_jitter"]}
    clean = [float(rate) for rate, row in rows.items() if row["deadline_misses"] == 0]
    return {"seconds_per_rate": seconds, "rates": rows,
            "highest_rate_without_misses_hz": max(clean) if clean else None}


def run(policy_dir: Path, quick: bool = True) -> dict[str, Any]:
    """All end-to-end cases; ``policy_dir`` holds model.pt, model.onnx, model.depth.onnx."""
    seconds = 5.0 if quick else 60.0
    onnx, checkpoint = policy_dir / "model.onnx", policy_dir / "model.pt"
    cases = {
        "krabby_100hz": run_krabby(onnx, 100.0, seconds, tag="a"),
        "krabby_100hz_no_depth": run_krabby(onnx, 100.0, seconds, depth_thread=False, tag="b"),
        "krabby_100hz_no_gc_control": run_krabby(onnx, 100.0, seconds, gc_control=False, tag="c"),
        "krabby_500hz": run_krabby(onnx, 500.0, seconds, tag="d"),
        "naive_json_100hz": run_naive(checkpoint, 100.0, seconds, "json"),
        "naive_pickle_100hz": run_naive(checkpoint, 100.0, seconds, "pickle"),
    }
    gc.collect()
    ours, naive = cases["krabby_100hz"]["obs_to_command"], cases["naive_json_100hz"]["obs_to_command"]
    headline = {
        "obs_to_command_p99_naive_json_over_krabby": ratio(naive, ours, "p99"),
        "obs_to_command_p50_naive_json_over_krabby": ratio(naive, ours, "p50"),
        "obs_to_command_p99_naive_pickle_over_krabby": ratio(
            cases["naive_pickle_100hz"]["obs_to_command"], ours, "p99"),
        "period_error_p99_naive_json_over_krabby": ratio(
            cases["naive_json_100hz"]["period_error"], cases["krabby_100hz"]["period_error"], "p99"),
        "obs_to_command_p99_no_gc_control_over_gc_control": ratio(
            cases["krabby_100hz_no_gc_control"]["obs_to_command"], ours, "p99"),
        "obs_to_command_p99_with_over_without_depth_thread": ratio(
            ours, cases["krabby_100hz_no_depth"]["obs_to_command"], "p99"),
    }
    sweep = rate_sweep(onnx, (200.0, 250.0, 333.0, 500.0), 3.0 if quick else 20.0)
    return {"seconds_per_case": seconds, "cases": cases, "headline": headline, "rate_sweep": sweep}

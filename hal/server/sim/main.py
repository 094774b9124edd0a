"""``krabby-hal-server-sim``: the appliance on a MuJoCo robot — no GPU, camera or robot needed.

The same server, safety layer and inference client as ``krabby-hal-server-jetson``, over the
simulator backend (:mod:`hal.sim`, registered as motors ``sim``: joints, IMU, foot contacts, depth
camera and height scanner of one world), composed as the Jetson server composes its backends
(:func:`hal.devices.registry.compose_devices`). ``--demo`` makes an untrained synthetic
checkpoint, exports it to ONNX and runs it: it shows the plumbing and the latency, not walking.

Examples::

    krabby-hal-server-sim --demo --duration 10
    krabby-hal-server-sim --engine model.onnx --scene parkour --duration 30 --report run.json
    krabby-hal-server-sim --engine model.onnx --fast --duration 5     # as fast as possible
    krabby-hal-server-sim --engine model.onnx --fast --duration 6 --fault nan-actions@2

``--fault KIND@T[:D]`` (repeatable) rehearses a fault T simulated seconds after the policy took
over: stall-inference (D s, default 1), kill-inference, nan-actions, wild-actions, drop-imu,
drop-depth, estop. The report lists when each fired and what the safety layer did; the drills and
their stated responses are in :mod:`hal.server.sim.faults`.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from hal.config import build_parser as build_config_parser
from hal.config import parse_config
from hal.config.sections import POLICY_RATE
from hal.report.sections import FaultReport, SimReport, VideoReport
from hal.server.backend_parts import extend_config, operator_parts
from hal.server.base import HalDevices, HalServer
from hal.server.cli import (
    AppliancePlan,
    fail,
    format_report,
    load_robot_or_fail,
    run_appliance,
    run_command,
    server_config_for,
)
from hal.server.sim.settings import SimApplianceConfig

__all__ = ["main", "build_parser", "config_from_argv", "plan_from_config", "prepare_demo",
           "sim_config_type", "SimApplianceConfig", "LOCKSTEP_TIMEOUT_MS", "SIM_MOTORS"]

log = logging.getLogger(__name__)

LOCKSTEP_TIMEOUT_MS = 10_000.0
"""--fast: how long (wall) the server waits for a command before it counts a miss."""

SIM_MOTORS = "sim"
"""The registered motor backend this server runs on (:mod:`hal.backends.builtin`)."""


def sim_config_type() -> type:
    """The run configuration: :class:`SimApplianceConfig` and the parts of the operator sources
    registered now (those that need other motors, such as the Go2's remote, left out)."""
    taken = {f.name for f in dataclasses.fields(SimApplianceConfig)}
    return extend_config(SimApplianceConfig, "SimRunConfig",
                         operator_parts((SIM_MOTORS,), taken))


def build_parser() -> argparse.ArgumentParser:
    """The command line, built from :func:`sim_config_type` (``--config FILE.toml`` too)."""
    return build_config_parser(sim_config_type(), prog="krabby-hal-server-sim",
                               description=__doc__.split("\n\n")[0])


def config_from_argv(argv: Sequence[str] | None = None) -> SimApplianceConfig:
    """The run configuration of a ``krabby-hal-server-sim`` command line (and its ``--config``).

    Raises:
        ConfigError: a value a section refuses (the message names the flag).
    """
    parser = build_parser()
    return parse_config(parser.config_root, argv, parser)


def prepare_demo(directory: Path, robot_name: str) -> Path:
    """Write ``model.pt`` (synthetic, untrained) and export it; returns the ONNX actor path."""
    from compute.parkour.synthetic import main as make_checkpoint
    from export.cli import main as export_main

    directory.mkdir(parents=True, exist_ok=True)
    checkpoint = directory / "model.pt"
    onnx = directory / "model.onnx"
    if not checkpoint.is_file():
        if make_checkpoint(["--output", str(checkpoint), "--robot", robot_name, "--seed", "0"]) != 0:
            raise fail(f"could not write the demo checkpoint {checkpoint}")
    if not onnx.is_file() or onnx.stat().st_mtime < checkpoint.stat().st_mtime:
        if export_main(["--checkpoint", str(checkpoint), "--robot", robot_name,
                        "--parity-samples", "16"]) != 0:
            raise fail(f"could not export the demo checkpoint {checkpoint}")
    return onnx


def plan_from_config(config: SimApplianceConfig) -> AppliancePlan:
    """What a ``krabby-hal-server-sim`` run does: the simulated devices, the drills, the hooks."""
    from compute.parkour.layout import scan_points_xy
    from hal.devices.registry import compose_devices, get_backend
    from hal.server.sim.faults import FaultInjector, parse_faults
    from hal.sim import MujocoWorldConfig

    sim, scene = config.sim, config.scene
    faults = parse_faults(config.faults.faults)  # checked when the configuration was built
    injector = FaultInjector(faults) if faults else None
    robot = load_robot_or_fail(config.robot.robot)
    engine = config.policy.engine
    if sim.demo:
        engine = str(prepare_demo(Path(sim.demo_dir), config.robot.robot))
        print("demo: running an UNTRAINED synthetic policy — it shows the plumbing and the latency, "
              "not walking; a real checkpoint drops in with --engine/--checkpoint", flush=True)
    points = tuple(map(tuple, scan_points_xy().tolist())) if sim.height_scan else None
    try:
        # In real time the depth camera casts on its own thread, off the control loop; --fast
        # keeps it synchronous so runs are repeatable.
        fps = 30.0 if config.sim_camera.camera_fps == POLICY_RATE else config.sim_camera.camera_fps
        world_config = MujocoWorldConfig(scene=scene.scene, seed=scene.seed, camera_fps=fps,
                                         render_thread=not sim.fast, height_scan_points_xy=points,
                                         action_delay_s=sim.action_delay_ms / 1e3)
    except ValueError as exc:
        raise fail(str(exc)) from None

    randomize = config.episode.randomized(scene.scene)
    draws: dict[str, Any] = {}

    def make_devices(contract_robot) -> HalDevices:
        # The camera's pose, field of view and the joint gains come from the policy's contract.
        robot_here, config_here = contract_robot, world_config
        if config.sim_camera.camera_fps == POLICY_RATE:  # one frame per depth step of the policy
            config_here = replace(config_here, camera_fps=contract_robot.policy_rate_hz
                                  / contract_robot.depth_camera.update_interval_steps)
        if randomize:
            robot_here, config_here, draws["draw"] = randomized(contract_robot, config_here,
                                                               engine, scene.seed)
        world = config_here  # the sim backend's config: the world this run computed

        def config_of(section: type) -> Any:
            return world if section is MujocoWorldConfig else section()

        try:  # a robot the simulator has no body for is refused here, in one line
            devices = compose_devices(robot_here, {"motors": get_backend("motors", SIM_MOTORS)},
                                      config_of)
        except ValueError as exc:
            raise fail(str(exc)) from None
        return injector.wrap_devices(devices) if injector is not None else devices

    server_config = server_config_for(config, realtime=not sim.fast)
    client_options: dict[str, Any] = {}
    if sim.fast and not faults:
        # --fast runs in lockstep: the server waits for every command and the depth step runs at
        # its policy-step interval, so a run depends on its inputs (engine, scene, seed) only.
        # Fault drills keep the budget: their point is what happens when a command is late.
        server_config = replace(server_config, lockstep_timeout_ms=LOCKSTEP_TIMEOUT_MS)
        client_options["lockstep"] = True
        client_options["poll_timeout_ms"] = 10.0  # the threads see the stop within 10 ms
    plan = AppliancePlan(robot=robot, server_config=server_config,
                         make_devices=make_devices, engine=engine,
                         checkpoint=config.policy.checkpoint, duration_s=config.duration.duration_s,
                         run_client=not config.loop.no_client,
                         report_path=Path(config.output.report) if config.output.report else None,
                         client_options=client_options)
    if randomize:
        attach_pushes(plan, draws)
    if injector is not None:
        def finish(_server: Any, _client: Any) -> None:
            injector.close()

        plan.on_started.append(injector.attach)
        plan.on_finished.append(finish)
        plan.add_report_section("faults", lambda: [
            FaultReport.from_dict(record, f"faults[{i}]")
            for i, record in enumerate(injector.report())])
    shared: dict[str, Any] = {}
    attach_ground_truth(plan, end_episode=sim.end_episode, episode_s=config.episode.episode_s,
                        shared=shared)
    plan.on_recording.append(_record_scene)
    plan.live_scene = _live_scene
    if config.video.video:
        attach_video(plan, Path(config.video.video), config.video.video_config(), shared)
    if config.video.viewer:
        from hal.sim.viewer import attach_viewer

        try:
            attach_viewer(plan)
        except RuntimeError as exc:
            raise fail(str(exc)) from None
    return plan


def randomized(robot: Any, config: Any, engine: str | None, seed: int) -> tuple[Any, Any, Any]:
    """The robot (camera mount) and world config of the episode ``seed`` draws."""
    from hal.sim.randomization import DEFAULT_RANGES, draw_episode, ranges_from_dict

    ranges = DEFAULT_RANGES
    manifest = Path(engine).with_suffix(".json") if engine else None
    if manifest is not None and manifest.is_file():
        import json

        data = json.loads(manifest.read_text()).get("domain_randomization")
        if data:
            try:
                ranges = ranges_from_dict(data, source=f"manifest {manifest.name}")
            except ValueError as exc:
                raise fail(f"{manifest}: {exc}") from None
    draw = draw_episode(ranges, seed)
    cam = robot.depth_camera
    position = tuple(p + o for p, o in zip(cam.position_m, draw.camera_position_offset_m))
    robot = replace(robot, depth_camera=replace(cam, pitch_deg=draw.camera_pitch_deg,
                                                position_m=position))
    delay_s = config.action_delay_s + draw.action_delay_steps / robot.policy_rate_hz
    config = replace(config, friction=draw.friction, added_mass_kg=draw.added_mass_kg,
                     com_offset_m=draw.com_offset_m, motor_strength=draw.motor_strength,
                     action_delay_s=delay_s, initial_xy_m=draw.start_xy_m,
                     initial_yaw_deg=config.initial_yaw_deg + math.degrees(draw.start_yaw_rad),
                     camera_lens_hfov_deg=draw.camera_hfov_deg,
                     depth_noise_std_m=max(config.depth_noise_std_m, draw.depth_noise_std_m),
                     camera_latency_s=config.camera_latency_s + draw.camera_latency_s)
    return robot, config, draw


def attach_pushes(plan: AppliancePlan, draws: dict[str, Any]) -> None:
    """Training's pushes, every ``push_interval_s`` after the hand-over; the report gains
    ``randomization`` (what was drawn)."""
    from hal.safety.events import Mode

    def start(server: HalServer, _client: Any) -> None:
        draw = draws["draw"]
        plan.add_report_section("randomization", draw.to_dict)
        world = server.devices.world
        state = {"handover": None, "next": 0}
        if draw.push_interval_s <= 0 or not draw.pushes_m_s:
            return

        def push(record: Any) -> None:
            if state["handover"] is None:
                if record.safety_mode is not Mode.POLICY:
                    return
                state["handover"] = world.sim_time_s
            k = state["next"]
            if k < len(draw.pushes_m_s) and (world.sim_time_s - state["handover"]
                                             >= (k + 1) * draw.push_interval_s - 1e-9):
                world.set_base_velocity_xy(*draw.pushes_m_s[k])
                state["next"] = k + 1

        server.tick_listeners.append(push)

    plan.on_started.append(start)


def attach_video(plan: AppliancePlan, path: Path, config: Any,
                 shared: dict[str, Any] | None = None) -> None:
    """Render the run to ``path``; the report gains a ``video`` section (``shared["course"]``:
    the course tracker whose goals the overlay counts)."""
    from hal.sim.video import VideoRecorder

    if path.suffix.lower() != ".mp4":
        raise fail(f"--video {path}: give an .mp4 file name, e.g. run.mp4")

    def start(server: HalServer, client: Any) -> None:
        speed = (lambda: client.command.forward_speed_m_s) if client is not None else None
        course = (shared or {}).get("course")
        goals = (lambda: min(course.index, len(course.goals))) if course is not None else None
        recorder = VideoRecorder(server.devices.world, path, config, speed_command=speed,
                                 goals_reached=goals)
        recorder.start()
        server.tick_listeners.append(recorder)

        def finish(_server: HalServer, _client: Any) -> None:
            recorder.close()

        plan.on_finished.append(finish)
        plan.add_report_section("video", lambda: VideoReport.from_dict(recorder.report(),
                                                                       "video"))

    plan.on_started.append(start)


def _record_scene(server: HalServer, recording: Any) -> None:
    """``--record``: the trunk pose and the robot's bodies as Foxglove messages (/sim/tf,
    /sim/scene)."""
    if recording.file is None:
        return
    from hal.sim.foxglove_scene import SimSceneRecorder

    server.tick_listeners.append(SimSceneRecorder(server.devices.world, recording.file))


def _live_scene(server: HalServer) -> Any:
    """``--live``: the terrain, the robot's links and its ground-truth pose (/scene, /tf)."""
    from hal.sim.foxglove_scene import SimScene

    return SimScene(server.devices.world)


def attach_ground_truth(plan: AppliancePlan, end_episode: bool = False,
                        episode_s: float | None = None,
                        shared: dict[str, Any] | None = None) -> None:
    """Measure the simulated robot from the hand-over on; the report gains its ``sim`` section.

    On a terrain with goals the section also holds the course's goals, edge violations and
    ``success`` (every goal reached, no fall, never out of ``policy`` after the hand-over), and a
    teacher's heading follows the goals. ``end_episode`` stops the run when the last goal is
    reached, the robot falls or the safety layer takes the policy off the motors, or
    ``episode_s`` simulated seconds after the hand-over.
    """
    from hal.sim.course import CourseConfig, CourseTracker
    from hal.sim.ground_truth import GroundTruthTracker

    def start(server: HalServer, client: Any) -> None:
        speed = (lambda: client.command.forward_speed_m_s) if client is not None else None
        world = server.devices.world
        tracker = GroundTruthTracker(world, speed_command=speed)
        server.tick_listeners.append(tracker)
        course = None
        if getattr(world, "terrain", None) is not None:
            course = CourseTracker(world, world.terrain,
                                   CourseConfig(policy_dt_s=1.0 / server.robot.policy_rate_hz))
            server.tick_listeners.append(course)
            if shared is not None:
                shared["course"] = course
            if client is not None:
                client.policy.goal_source = course.targets
        if end_episode:
            def end(_record: Any) -> None:
                timed_out = (episode_s is not None and tracker.handover_s is not None
                             and world.sim_time_s - tracker.handover_s >= episode_s)
                if timed_out or tracker.falls or (course is not None and (
                        course.done or course.left_policy_s is not None)):
                    server.request_stop()

            server.tick_listeners.append(end)

        def section() -> SimReport:
            sim = tracker.report()
            if course is not None:
                sim.update(course.report())
                sim["success"] = bool(course.done and not sim["falls"]
                                      and course.left_policy_s is None
                                      and sim.get("handover_sim_time_s") is not None)
            return SimReport.from_dict(sim, "sim")

        plan.add_report_section("sim", section)

    plan.on_started.append(start)


def main(argv: list[str] | None = None) -> int:
    def body(config: SimApplianceConfig) -> int:
        plan = plan_from_config(config)
        report = run_appliance(plan, config)
        print(format_report(report), flush=True)
        if report.sim is not None:
            from hal.sim.ground_truth import format_sim_section

            print("\n".join(format_sim_section(report.sim)), flush=True)
        video = report.video
        if video is not None:
            print(f"video: {video.path} ({video.frames} frames at {video.fps:g} fps), "
                  f"contact sheet {video.contact_sheet}"
                  + (f"; error: {video.error}" if video.error else ""), flush=True)
        return 0

    parser = build_parser()
    return run_command(parser.config_root, argv, parser, body)


if __name__ == "__main__":
    sys.exit(main())

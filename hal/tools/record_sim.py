"""Record depth and IMU from the MuJoCo simulator into a sensor recording (``tests/data`` ships one).

Usage::

    python -m hal.tools.record_sim --output tests/data/sim_recording.npz
    python -m hal.tools.record_sim --frames 40 --scene parkour --camera-fps 30 --output rec.npz

The robot stands on the chosen scene and slowly bobs (thighs and calves follow a small sine), so
the frames and the IMU change over the recording. The simulated clock starts at a fixed origin, so
the same arguments always give the same file.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from hal.config import build_parser as build_config_parser
from hal.config import parse_cli, part, setting
from hal.config.sections import FilesSection, RobotSection, SceneSection, SimCameraSection
from hal.devices.base import JointCommand
from hal.playback.recording import Recording, record_devices, write_recording
from hal.robot import RobotConfig, RobotDefinitionError, load_robot

__all__ = ["record_sim", "main", "build_parser", "RecordSimConfig"]

_BOB_AMPLITUDE_RAD = 0.15
_BOB_FREQUENCY_HZ = 1.0


def record_sim(robot: RobotConfig, n_frames: int = 30, scene: str = "parkour", camera_fps: float = 30.0,
               width: int | None = None, height: int | None = None, seed: int = 0) -> Recording:
    """Run the simulator and record ``n_frames`` depth frames with the IMU at every physics step."""
    from hal.sim import MujocoWorldConfig, make_sim_devices

    config = MujocoWorldConfig(scene=scene, seed=seed, camera_fps=camera_fps, camera_width=width,
                               camera_height=height, settle_s=1.0, clock_origin_ns=1_000_000_000)
    sim = make_sim_devices(robot, config)
    if sim.camera is None:
        raise ValueError("the simulator's camera is off; use --camera-fps > 0")
    default = robot.to_hardware(robot.default_angles)
    kp, kd = robot.to_hardware(robot.kp), robot.to_hardware(robot.kd)
    # Thighs bend and calves follow at twice the angle, so the feet stay under the hips.
    bend = np.zeros(robot.n_joints)
    for i, name in enumerate(robot.joint_names_hardware):
        if "thigh" in name:
            bend[i] = 1.0
        elif "calf" in name:
            bend[i] = -2.0

    def bob(elapsed_s: float) -> None:
        phase = _BOB_AMPLITUDE_RAD * math.sin(2 * math.pi * _BOB_FREQUENCY_HZ * elapsed_s)
        sim.joints.write(JointCommand(target_rad=default + phase * bend, kp=kp, kd=kd))

    with sim:
        return record_devices(sim.camera, sim.imu, n_frames, world=sim.world,
                              tick_s=config.physics_dt_s, timeout_s=600.0, on_tick=bob,
                              source=f"mujoco {robot.name} {scene} {camera_fps:g} fps seed {seed}")


@dataclass(frozen=True)
class RecordSimSection:
    """How many frames, of what size."""

    section: ClassVar[str] = "record_sim"

    frames: int = setting(30, metavar="N", help="depth frames to record")
    width: int | None = setting(None, help="frame width (default: training camera)")
    height: int | None = setting(None, help="frame height (default: training camera)")


@dataclass(frozen=True)
class RecordSimConfig:
    """``python -m hal.tools.record_sim``'s run configuration (--output: the .npz file)."""

    files: FilesSection = part(FilesSection, only=("output",), required=("output",))
    robot: RobotSection = part(RobotSection)
    # depth and IMU worth replaying: the scene with obstacles in view
    scene: SceneSection = part(SceneSection, defaults={"scene": "parkour"})
    record_sim: RecordSimSection = part(RecordSimSection)
    sim_camera: SimCameraSection = part(SimCameraSection)


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(RecordSimConfig, prog="python -m hal.tools.record_sim",
                               description="Record simulated depth + IMU (--output FILE.npz) for "
                                           "the recorded backend.")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    config = parse_cli(RecordSimConfig, argv, parser)
    if config.record_sim.frames <= 0:
        parser.error(f"--frames must be positive, got {config.record_sim.frames}")
    try:
        robot = load_robot(config.robot.robot)
        recording = record_sim(robot, config.record_sim.frames, config.scene.scene,
                               config.sim_camera.fixed_fps(), config.record_sim.width,
                               config.record_sim.height, config.scene.seed)
    except (ValueError, RobotDefinitionError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path = write_recording(config.files.output, recording)
    h, w = recording.frame_shape
    print(f"wrote {path}: {recording.n_frames} frames {w}x{h} over {recording.duration_s:.2f} s, "
          f"{recording.n_imu} IMU samples, {path.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

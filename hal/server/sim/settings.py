"""``krabby-hal-server-sim``'s run configuration: the appliance's plus the simulator's sections.

:class:`SimApplianceConfig` is :class:`~hal.server.settings.ApplianceConfig` with the scene and
seed (:class:`~hal.config.sections.SceneSection`), the simulated robot and its drills
(:class:`SimSection`) and what watches the run (:class:`VideoSection`). Its parser is
``hal.config.build_parser(SimApplianceConfig, ...)`` (:func:`hal.server.sim.main.build_parser`).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import ClassVar

from hal.config import part, setting
from hal.config.sections import SceneSection
from hal.server.settings import ApplianceConfig

__all__ = ["SimSection", "VideoSection", "SimApplianceConfig"]


def _camera_fps(text: str) -> float | str:
    if text == "policy":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give frames per second or 'policy'") from None


@dataclass(frozen=True)
class SimSection:
    """The simulated robot: its clock, its episode's draws, its sensors, its fault drills."""

    section: ClassVar[str] = "sim"
    title: ClassVar[str] = "simulator"

    fast: bool = setting(False, help="step as fast as possible instead of in real time (tests)")
    randomize: bool = setting(False, help="draw the episode from --seed: start pose, friction, "
                                          "base mass and centre of mass, motor strength, pushes, "
                                          "action delay, camera pose and field of view (ranges "
                                          "from the engine's manifest, else a Go2 parkour run's; "
                                          "hal.sim.randomization). Default on terrains with goals")
    no_randomize: bool = setting(False, help="the nominal episode (default on the flat and "
                                             "parkour scenes)")
    camera_fps: float | str = setting(30.0, aliases=("--camera_fps",), parse=_camera_fps,
                                      metavar="FPS|policy",
                                      help="simulated depth camera rate; 'policy': one frame per "
                                           "depth step of the policy (its policy rate / depth "
                                           "interval, 10 Hz for extreme-parkour)")
    action_delay_ms: float = setting(0.0, metavar="MS",
                                     help="the simulated robot applies each command this long "
                                          "after it was sent (a real robot's command latency)")
    height_scan: bool = setting(True, negate="--no-height-scan",
                                help="do not measure the terrain: a teacher then sees flat ground "
                                     "at the contract's nominal base height, as on hardware")
    end_episode: bool = setting(False, help="on a terrain with goals, stop when the last goal is "
                                            "reached, the robot falls or the policy loses the "
                                            "motors (krabby-eval's episodes)")
    episode_s: float | None = setting(None, metavar="S",
                                      help="with --end-episode: also stop this many simulated "
                                           "seconds after the hand-over (training's "
                                           "episode_length_s is 20)")
    faults: list[str] = setting(default_factory=list, flag="--fault", repeat=True,
                                metavar="KIND@T[:D]",
                                help="fault drill, repeatable: KIND one of stall-inference, "
                                     "kill-inference, nan-actions, wild-actions, drop-imu, "
                                     "drop-depth, estop; T seconds of simulated time after the "
                                     "policy took over; D the stall's length (stall-inference "
                                     "only, default 1 s). See hal.server.sim.faults")
    demo: bool = setting(False, help="make a synthetic (untrained) checkpoint, export it, and run "
                                     "it")
    demo_dir: str = setting("demo", metavar="DIR",
                            help="where --demo writes its checkpoint and engines")

    def __post_init__(self) -> None:
        from hal.server.sim.fault_spec import parse_faults

        if self.randomize and self.no_randomize:
            raise ValueError("--randomize and --no-randomize contradict each other: drop one")
        fps = self.camera_fps
        if isinstance(fps, str):  # a config file's "policy" or "30"
            fps = _number_or_policy(fps)
        if not isinstance(fps, str) and (isinstance(fps, bool) or not isinstance(fps, (int, float))
                                         or not (math.isfinite(fps) and fps >= 0)):
            raise ValueError(f"--camera-fps {fps!r}: give frames per second (>= 0) or 'policy'")
        fps = fps if isinstance(fps, str) else float(fps)
        object.__setattr__(self, "camera_fps", fps)  # frozen: the parsed value, once
        if not (math.isfinite(self.action_delay_ms) and self.action_delay_ms >= 0):
            raise ValueError(f"--action-delay-ms {self.action_delay_ms}: must be a number >= 0")
        if self.episode_s is not None and not (math.isfinite(self.episode_s)
                                               and self.episode_s > 0):
            raise ValueError(f"--episode-s {self.episode_s}: must be a positive number of seconds")
        parse_faults(self.faults)  # FaultSpecError (a ValueError) names the bad drill

    def randomized(self, scene: str) -> bool:
        """Whether the episode is drawn: as asked, else on training terrains (with goals)."""
        if self.randomize or self.no_randomize:
            return self.randomize
        return scene.partition(":")[0] not in ("flat", "parkour") or ":" in scene


def _number_or_policy(text: str) -> float | str:
    try:
        return _camera_fps(text)
    except argparse.ArgumentTypeError as exc:
        raise ValueError(f"--camera-fps {exc}") from None


@dataclass(frozen=True)
class VideoSection:
    """What watches the simulated run: an offscreen video, MuJoCo's viewer."""

    section: ClassVar[str] = "video"
    title: ClassVar[str] = "simulator: video and viewer"

    video: str | None = setting(None, metavar="PATH",
                                help="render the run offscreen to this MP4 (chase camera, speeds "
                                     "overlaid) and a contact sheet PNG beside it; needs EGL or "
                                     "OSMesa and pip install 'krabby[video]'")
    video_fps: float = setting(30.0, metavar="FPS",
                               help="video frames per second of simulated time")
    video_size: str = setting("640x360", metavar="WxH", help="video frame size")
    viewer: bool = setting(False, help="open MuJoCo's passive viewer on the run (needs a display)")

    def __post_init__(self) -> None:
        if self.video is not None:
            if not self.video.lower().endswith(".mp4"):
                raise ValueError(f"--video {self.video}: give an .mp4 file name, e.g. run.mp4")
            self.video_config()

    def video_config(self):
        """The renderer's :class:`hal.sim.video.VideoConfig`.

        Raises:
            ValueError: a size or rate the renderer refuses (the message names both flags).
        """
        from hal.sim.video import VideoConfig

        try:
            width, height = (int(v) for v in self.video_size.lower().split("x"))
            return VideoConfig(width=width, height=height, fps=self.video_fps)
        except ValueError as exc:
            raise ValueError(f"--video-size {self.video_size} / --video-fps {self.video_fps}: "
                             f"{exc} (e.g. --video-size 640x360 --video-fps 30)") from None


@dataclass(frozen=True)
class SimApplianceConfig(ApplianceConfig):
    """``krabby-hal-server-sim``: the appliance on a MuJoCo robot."""

    scene: SceneSection = part(SceneSection)
    sim: SimSection = part(SimSection)
    video: VideoSection = part(VideoSection)

    def __post_init__(self) -> None:
        from hal.server.sim.fault_spec import CLIENT_FAULTS, FaultKind, parse_faults

        super().__post_init__()
        if self.sim.demo and (self.policy.engine or self.policy.checkpoint):
            raise ValueError("--demo makes its own policy; drop --engine/--checkpoint")
        kinds = {f.kind for f in parse_faults(self.sim.faults)}
        if self.loop.no_client and kinds & CLIENT_FAULTS:
            named = ", ".join(sorted(k.value for k in kinds & CLIENT_FAULTS))
            raise ValueError(f"--fault {named} act on the in-process inference client; drop "
                             "--no-client")
        if FaultKind.DROP_DEPTH in kinds and self.sim.camera_fps == 0:
            raise ValueError("--fault drop-depth needs the depth camera; use --camera-fps > 0")

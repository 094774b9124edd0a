"""``krabby-hal-server-sim``'s run configuration: the appliance's plus the simulator's sections.

:class:`SimApplianceConfig` is :class:`~hal.server.settings.ApplianceConfig` with the scene and
seed (:class:`~hal.config.sections.SceneSection`), the simulated robot and its drills
(:class:`SimSection`) and what watches the run (:class:`VideoSection`). Its parser is
``hal.config.build_parser(SimApplianceConfig, ...)`` (:func:`hal.server.sim.main.build_parser`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from hal.config import part, setting
from hal.config.sections import EpisodeSection, FaultSection, SceneSection, SimCameraSection
from hal.server.settings import ApplianceConfig

__all__ = ["SimSection", "VideoSection", "SimApplianceConfig"]


@dataclass(frozen=True)
class SimSection:
    """The simulated robot: its clock, its episode's draws, its sensors, its fault drills."""

    section: ClassVar[str] = "sim"
    title: ClassVar[str] = "simulator"

    fast: bool = setting(False, help="step as fast as possible instead of in real time (tests)")
    action_delay_ms: float = setting(0.0, metavar="MS",
                                     help="the simulated robot applies each command this long "
                                          "after it was sent (a real robot's command latency)")
    height_scan: bool = setting(True, negate="--no-height-scan",
                                help="do not measure the terrain: a teacher then sees flat ground "
                                     "at the contract's nominal base height, as on hardware")
    end_episode: bool = setting(False, help="on a terrain with goals, stop when the last goal is "
                                            "reached, the robot falls or the policy loses the "
                                            "motors (krabby-eval's episodes)")
    demo: bool = setting(False, help="make a synthetic (untrained) checkpoint, export it, and run "
                                     "it")
    demo_dir: str = setting("demo", metavar="DIR",
                            help="where --demo writes its checkpoint and engines")

    def __post_init__(self) -> None:
        if not (math.isfinite(self.action_delay_ms) and self.action_delay_ms >= 0):
            raise ValueError(f"--action-delay-ms {self.action_delay_ms}: must be a number >= 0")


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
    sim_camera: SimCameraSection = part(SimCameraSection)
    # No time limit unless asked: a run ends with --duration, or --end-episode's goals and falls.
    episode: EpisodeSection = part(EpisodeSection, only=("episode_s", "randomize"),
                                   defaults={"episode_s": None})
    faults: FaultSection = part(FaultSection)
    video: VideoSection = part(VideoSection)

    def __post_init__(self) -> None:
        from hal.server.sim.fault_spec import CLIENT_FAULTS, FaultKind, parse_faults

        super().__post_init__()
        if self.sim.demo and (self.policy.engine or self.policy.checkpoint):
            raise ValueError("--demo makes its own policy; drop --engine/--checkpoint")
        # FaultSpecError (a ValueError) names a bad drill.
        kinds = {f.kind for f in parse_faults(self.faults.faults)}
        if self.loop.no_client and kinds & CLIENT_FAULTS:
            named = ", ".join(sorted(k.value for k in kinds & CLIENT_FAULTS))
            raise ValueError(f"--fault {named} act on the in-process inference client; drop "
                             "--no-client")
        if FaultKind.DROP_DEPTH in kinds and self.sim_camera.camera_fps == 0:
            raise ValueError("--fault drop-depth needs the depth camera; use --camera-fps > 0")

"""The settings several commands share, each declared once.

A command composes the sections it needs into its run configuration (:func:`hal.config.part`),
choosing fields with ``only=`` and giving its own defaults with ``defaults=`` where its job
differs. Settings one command alone has are declared in that command's own section, next to it.
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass
from typing import ClassVar

from hal.config.fields import Setting, setting

__all__ = ["RobotSection", "OutputSection", "PolicyFilesSection", "CommandSection",
           "KeysSection", "SceneSection", "Go2NetworkSection", "DurationSection", "MODES",
           "DEVICES", "LOG_LEVELS", "LOG_FORMAT", "ENGINE", "FilesSection", "MeasureSection", "EpisodeSection",
           "SimCameraSection", "FaultSection", "POLICY_RATE", "NETWORK_HELP",
           "MAX_DDS_DOMAIN_ID"]

MODES = ("parkour", "walk")
DEVICES = ("cuda", "cpu")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


_LOG_LEVEL_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL"}  # logging's own other names


def _log_level(text: str) -> str:
    level = text.upper()
    return _LOG_LEVEL_ALIASES.get(level, level)


@dataclass(frozen=True)
class RobotSection:
    """Which robot: a shipped definition or a TOML file."""

    section: ClassVar[str] = "robot"

    robot: str = setting("go2", help="robot definition: go2, a1 or a robot TOML file")


@dataclass(frozen=True)
class OutputSection:
    """Where the run's report and log go."""

    section: ClassVar[str] = "output"

    report: str | None = setting(None, metavar="PATH",
                                 help="write the run report (JSON) here (krabby-eval: eval.json, "
                                      "its cells' summary)")
    log_level: str = setting("INFO", choices=LOG_LEVELS, parse=_log_level,
                             help="logging level")

    def configure_logging(self, log_format: str = LOG_FORMAT) -> None:
        """Log to stderr at ``--log-level`` (every command's one logging set-up)."""
        logging.basicConfig(level=self.log_level.upper(), stream=sys.stderr, format=log_format)


# Module-level so that krabby-eval's repeatable --engine (several engines compared on the same
# seeds) reuses this one declaration: setting(default_factory=list, like=ENGINE, repeat=True).
ENGINE = Setting(flag="--engine", metavar="MODEL",
                 help="model.plan (TensorRT) or model.onnx (ONNX Runtime), with model.json beside "
                      "it (from krabby-export)")


@dataclass(frozen=True)
class PolicyFilesSection:
    """The policy to run: an exported engine, or a checkpoint's torch reference."""

    section: ClassVar[str] = "policy"

    engine: str | None = setting(None, like=ENGINE)
    checkpoint: str | None = setting(None, metavar="MODEL.pt",
                                     help="upstream checkpoint: krabby-export exports it; the "
                                          "servers, the client and krabby-replay run its torch "
                                          "reference when no --engine is given (bring-up only)")
    action_dim: int | None = setting(None, aliases=("--action_dim",),
                                     help="action dimension (checked against the robot and the "
                                          "manifest; typically 12)")
    obs_dim: int | None = setting(None, aliases=("--obs_dim",),
                                  help="observation dimension (checked; typically 753)")
    device: str = setting("cpu", choices=DEVICES, help="inference device")
    no_manifest: bool = setting(False, help="run an --engine that has no manifest beside it: only "
                                            "tensor shapes are checked, NOT the robot, joint "
                                            "order, digest or training contract")


@dataclass(frozen=True)
class CommandSection:
    """The operator's first command to the policy (the operator may change it while running)."""

    section: ClassVar[str] = "command"

    speed_m_s: float = setting(0.5, flag="--speed",
                               help="forward speed command, m/s (clamped to the policy's trained "
                                    "range)")
    mode: str = setting("parkour", choices=MODES, help="the policy's mode command")

    def __post_init__(self) -> None:
        if self.speed_m_s is not None and not math.isfinite(self.speed_m_s):
            raise ValueError(f"--speed {self.speed_m_s}: must be a finite number of m/s")


@dataclass(frozen=True)
class KeysSection:
    """Authentication of network endpoints (hal.auth)."""

    section: ClassVar[str] = "keys"

    keys: str | None = setting(None, env="KRABBY_KEYS", metavar="DIR",
                               help="key directory (krabby-keys): a server's admits only the keys "
                                    "allowed there; a client's or operator's is its own identity")
    insecure: bool = setting(False, help="network endpoints WITHOUT authentication: anyone who "
                                         "reaches them can drive the robot. Only on an isolated, "
                                         "trusted network")


@dataclass(frozen=True)
class SceneSection:
    """The simulated world: scene and seed."""

    section: ClassVar[str] = "scene"

    scene: str = setting("flat", metavar="SCENE",
                         help="flat or parkour (a box step and a gap); a training terrain "
                              "TYPE[:DIFFICULTY] (gap, hurdle, step, stones, stairs_up, "
                              "stairs_down, slope, rough, flat; difficulty in [0, 1], default 0.5) "
                              "with its goals; or a course file FILE.toml")
    seed: int = setting(0, help="random seed: the simulator's draws and the episode's "
                                "randomisation (krabby-make-checkpoint: the random weights)")


NETWORK_HELP = ("the network interface on the Go2's wired network "
                "(the Ethernet port cabled to the robot's 192.168.123.x network, eth0 on the Go2's "
                "own expansion dock, e.g. enp2s0 on a PC), or lo for krabby-go2-sim on this machine")
"""``--network``'s help, also quoted by the errors of the commands that need it."""

MAX_DDS_DOMAIN_ID = 232
"""The largest DDS domain id (Cyclone DDS, as Unitree's SDK uses it)."""


@dataclass(frozen=True)
class Go2NetworkSection:
    """The Go2's DDS network (Unitree's SDK over Cyclone DDS)."""

    section: ClassVar[str] = "go2_network"
    title: ClassVar[str] = "Go2 network (DDS; --network is required with the Go2)"

    network: str | None = setting(None, metavar="IFACE", help=NETWORK_HELP)
    domain_id: int = setting(0, help="the DDS domain id (0 on the robot)")

    def __post_init__(self) -> None:
        if not 0 <= self.domain_id <= MAX_DDS_DOMAIN_ID:  # else a traceback when DDS starts
            raise ValueError(f"--domain-id {self.domain_id}: must be an integer in "
                             f"0..{MAX_DDS_DOMAIN_ID} (0 on the robot)")


@dataclass(frozen=True)
class DurationSection:
    """How long to run."""

    section: ClassVar[str] = "duration"

    duration_s: float | None = setting(None, flag="--duration", metavar="S",
                                       help="stop after S seconds")

    def __post_init__(self) -> None:
        if self.duration_s is not None and not (math.isfinite(self.duration_s)
                                                and self.duration_s > 0):
            raise ValueError(f"--duration {self.duration_s}: must be a positive number of "
                             "seconds")


@dataclass(frozen=True)
class FilesSection:
    """What a command writes, and where."""

    section: ClassVar[str] = "files"

    out: str | None = setting(None, metavar="PATH",
                              help="where this command writes what it makes: a folder (a "
                                   "benchmark's results, krabby-keys add's client key folder) or "
                                   "a file (a snapshot's PNG, a benchmark's JSON)")
    output: str | None = setting(None, metavar="PATH",
                                 help="the file (or folder, or path prefix) this command writes")
    json_path: str | None = setting(None, flag="--json", metavar="PATH",
                                    help="write the results (JSON) here")
    plot: str | None = setting(None, metavar="PNG", help="write a plot (PNG) here")


@dataclass(frozen=True)
class MeasureSection:
    """How long, how often and how fast a measurement (benchmark, snapshot) runs."""

    section: ClassVar[str] = "measure"

    seconds: float = setting(10.0, metavar="S", help="seconds to run or measure (a benchmark's "
                                                     "case or round; the doctor's sensor "
                                                     "streams)")
    rounds: int = setting(4, metavar="N", help="rounds (runs per side or per case)")
    full: bool = setting(False, help="the long run (default: quick)")
    rate_hz: float = setting(100.0, metavar="HZ",
                             help="the rate of the loop this command runs or emulates, Hz")

    def __post_init__(self) -> None:
        for flag, value in (("--seconds", self.seconds), ("--rounds", self.rounds),
                            ("--rate-hz", self.rate_hz)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{flag} {value}: must be a positive number")


@dataclass(frozen=True)
class EpisodeSection:
    """Simulated episodes: how many, how long, randomised or nominal."""

    section: ClassVar[str] = "episode"

    episodes: int = setting(10, metavar="N", help="episodes (per cell or case)")
    episode_s: float | None = setting(20.0, metavar="S",
                                      help="simulated seconds from the hand-over before an "
                                           "episode ends unfinished (training's "
                                           "episode_length_s; krabby-hal-server-sim: with "
                                           "--end-episode)")
    randomize: bool | None = setting(None, flag="--randomize", negate="--no-randomize",
                                     help="draw the episode from --seed: start pose, friction, "
                                          "base mass and centre of mass, motor strength, pushes, "
                                          "action delay, camera pose and field of view (ranges "
                                          "from the engine's manifest, else a Go2 parkour run's; "
                                          "hal.sim.randomization); --no-randomize: the nominal "
                                          "episode (terrain draws still follow the seed). "
                                          "Default: on training terrains (with goals), not on "
                                          "the flat and parkour scenes")

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ValueError(f"--episodes {self.episodes}: must be at least 1")
        if self.episode_s is not None and not (math.isfinite(self.episode_s)
                                               and self.episode_s > 0):
            raise ValueError(f"--episode-s {self.episode_s}: must be a positive number of seconds")

    def randomized(self, scene: str) -> bool:
        """Whether the episode on ``scene`` is drawn: as asked, else on training terrains."""
        if self.randomize is not None:
            return self.randomize
        return scene.partition(":")[0] not in ("flat", "parkour") or ":" in scene


POLICY_RATE = "policy"
"""``--camera-fps policy``: one frame per depth step of the policy (krabby-hal-server-sim)."""


def _camera_fps(text: str) -> float | str:
    if text == POLICY_RATE:
        return text
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"--camera-fps {text!r}: give frames per second or "
                         f"'{POLICY_RATE}'") from None


@dataclass(frozen=True)
class SimCameraSection:
    """The simulated depth camera."""

    section: ClassVar[str] = "sim_camera"
    title: ClassVar[str] = "simulated depth camera"

    camera_fps: float | str = setting(30.0, metavar="FPS|policy", aliases=("--camera_fps",),
                                      parse=_camera_fps,
                                      help="simulated depth camera rate, Hz (0: no camera); "
                                           "'policy' (krabby-hal-server-sim): one frame per "
                                           "depth step of the policy (its policy rate / depth "
                                           "interval, 10 Hz for extreme-parkour)")

    def __post_init__(self) -> None:
        fps = self.camera_fps
        if isinstance(fps, str):  # a config file's text
            fps = _camera_fps(fps)
        if fps != POLICY_RATE and (isinstance(fps, bool) or not isinstance(fps, (int, float))
                                   or not (math.isfinite(fps) and fps >= 0)):
            raise ValueError(f"--camera-fps {fps!r}: give frames per second (>= 0) or "
                             f"'{POLICY_RATE}'")
        object.__setattr__(self, "camera_fps", fps if fps == POLICY_RATE else float(fps))

    def fixed_fps(self) -> float:
        """The rate, for a command with no policy to follow.

        Raises:
            ValueError: ``policy``, which only krabby-hal-server-sim can follow.
        """
        if self.camera_fps == POLICY_RATE:
            raise ValueError("--camera-fps policy: only krabby-hal-server-sim runs a policy to "
                             "follow; give frames per second")
        return float(self.camera_fps)


@dataclass(frozen=True)
class FaultSection:
    """Faults to rehearse; each command parses its own kinds (and names them when one is bad)."""

    section: ClassVar[str] = "faults"

    faults: list[str] = setting(default_factory=list, flag="--fault", repeat=True, metavar="FAULT",
                                help="a fault to rehearse (a bad KIND is refused, naming the "
                                     "valid ones): krabby-hal-server-sim's drill KIND@T[:D], T "
                                     "simulated seconds after the policy took over, D a "
                                     "stall's length (hal.server.sim.faults); krabby-go2-sim's "
                                     "wire fault KIND[=VALUE][@T] (hal.sim.go2_faults)")

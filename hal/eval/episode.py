"""One evaluation episode: a pure function of (engine, terrain, difficulty, seed, settings).

:func:`run_episode` runs ``krabby-hal-server-sim --fast --end-episode`` in this process (the same
server, safety layer, inference client and world as any run), on the terrain the spec names, and
returns a small JSON-ready summary. Network endpoints are off (no e-stop socket, no keyboard, no
flight recorder), so episodes can run side by side.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the report types; imported when an episode is summarised
    from hal.report.server import SafetyReport
    from hal.server.run_report import RunReport

__all__ = ["EpisodeSpec", "run_episode", "episode_arguments", "safety_trips", "summarise"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpisodeSpec:
    """What one episode runs.

    Attributes:
        engine: the policy (``model.onnx`` / ``.plan`` with its manifest).
        terrain: a terrain type (:data:`hal.sim.terrains.TERRAIN_TYPES`).
        difficulty: in [0, 1].
        seed: draws the terrain and (with ``randomize``) the episode's randomisation.
        episode_s: simulated seconds from the hand-over before the episode ends unfinished
            (training's ``episode_length_s`` is 20).
        randomize: draw friction, masses, motors, pushes, delays and the camera from ``seed``.
        speed_m_s: the forward speed command.
        robot: the robot definition.
        video: write the episode's video here (an .mp4), or None.
    """

    engine: str
    terrain: str
    difficulty: float
    seed: int
    episode_s: float = 20.0
    randomize: bool = True
    speed_m_s: float = 1.0
    robot: str = "go2"
    video: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _engine_settings(engine: str) -> list[str]:
    """From the engine's manifest: a student's camera renders one frame per depth step, a
    teacher's (no depth graph) none; the HAL ticks at the policy rate (training's decimation:
    the target held for the policy step, the PD law at every physics step, as at any rate)."""
    import json

    manifest = Path(engine).with_suffix(".json")
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return ["--camera-fps", "policy"]
    args = ["--camera-fps", "policy" if "depth" in data.get("graphs", {}) else "0"]
    rate = (data.get("training_contract") or {}).get("policy_rate_hz")
    if isinstance(rate, (int, float)) and 0 < rate <= 1000:
        args += ["--control-rate", f"{rate:g}"]
    return args


def episode_arguments(spec: EpisodeSpec) -> list[str]:
    """The ``krabby-hal-server-sim`` command line of an episode."""
    args = ["--engine", spec.engine, *_engine_settings(spec.engine), "--robot", spec.robot,
            "--fast", "--end-episode",
            "--scene", f"{spec.terrain}:{spec.difficulty:g}", "--seed", str(spec.seed),
            "--episode-s", f"{spec.episode_s:g}", "--duration", f"{spec.episode_s + 8.0:g}",
            "--speed", f"{spec.speed_m_s:g}", "--estop-bind", "none", "--no-keyboard",
            "--flight-recorder-s", "0", "--log-level", "WARNING"]
    if not spec.randomize:
        args.append("--no-randomize")
    if spec.video:
        args += ["--video", spec.video]
    return args


def safety_trips(safety: SafetyReport) -> dict[str, int]:
    """Times the safety layer took the motors from the policy, by reason (shutdown excluded)."""
    trips: dict[str, int] = {}
    for event in safety.events:
        if event.from_mode == "policy" and event.reason != "shutdown":
            trips[event.reason] = trips.get(event.reason, 0) + 1
    return trips


def run_episode(spec: EpisodeSpec) -> dict[str, Any]:
    """Run one episode in this process; returns its summary (see :func:`summarise`)."""
    from hal.server.cli import run_appliance
    from hal.server.sim.main import config_from_argv, plan_from_config

    config = config_from_argv(episode_arguments(spec))
    start = time.perf_counter_ns()
    plan = plan_from_config(config)
    report = run_appliance(plan, config)
    wall_s = (time.perf_counter_ns() - start) / 1e9
    return summarise(spec, report, wall_s)


def summarise(spec: EpisodeSpec, report: RunReport | dict[str, Any] | str | Path,
              wall_s: float) -> dict[str, Any]:
    """The episode's numbers from its run report (typed, or a ``run.json`` read through the
    typed loader: a report of another shape fails here, by name)."""
    from hal.server.run_report import RunReport, load_run_report

    if not isinstance(report, RunReport):
        report = load_run_report(report)
    sim = report.sim
    total = (sim.goals_total or 0) if sim is not None else 0
    reached = (sim.goals_reached or 0) if sim is not None else 0
    return {
        "terrain": spec.terrain, "difficulty": spec.difficulty, "seed": spec.seed,
        "engine": str(Path(spec.engine)),
        "success": bool(sim is not None and sim.success),
        "goals_total": total, "goals_reached": reached,
        "progress": reached / total if total else 0.0,
        "x_displacement": float((sim.x_displacement or 0.0) if sim is not None else 0.0),
        "edge_violations": int((sim.edge_violations or 0) if sim is not None else 0),
        "fell": bool(sim is not None and sim.falls),
        "safety_trips": safety_trips(report.safety),
        "goal_times_s": list((sim.goal_times_s or []) if sim is not None else []),
        "sim_s": float((sim.duration_s or 0.0) if sim is not None else 0.0),
        "wall_s": round(wall_s, 3),
        "randomization": report.randomization,
        "video": report.video.path if report.video is not None else None,
    }

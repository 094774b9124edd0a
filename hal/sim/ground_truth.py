"""What the simulated robot really did: the run report's ``sim`` section and its ``track``.

:class:`GroundTruthTracker` is a server tick listener. It reads the world's own state (the trunk's
position and orientation, the simulated clock) after every tick and, from the first tick the
safety layer spends in ``policy`` (the hand-over) to the end of the run, accumulates:

- ``distance_m``: path length of the trunk in the ground plane, summed over ticks;
- ``forward_m`` / ``lateral_drift_m``: the displacement along / across the heading the robot had at
  the hand-over (lateral positive to the left), ``mean_forward_speed_m_s`` = forward_m / duration,
  against ``mean_speed_command_m_s`` (the commanded forward speed averaged over the ticks in
  ``policy``, when a command source is given);
- ``heading_change_rad``: the yaw change, unwrapped tick by tick (a full turn reads 2π);
- ``max_abs_roll_rad`` / ``max_abs_pitch_rad`` (Z-Y-X Euler angles of the trunk);
- ``min_base_height_m`` / ``mean_base_height_m``: trunk height above the world's ground plane z=0;
- ``falls``: each entry into a fallen state (tilt beyond ``fall_tilt_rad`` or trunk lower than
  ``fall_height_m``) with its time; the state re-arms once both are back within limits.

``track`` holds rows at ``track_rate_hz`` of simulated time since the hand-over (the first tick at
or after each multiple of the period): ``t_s, x_m, y_m, z_m, roll_rad, pitch_rad, yaw_rad, mode``.

Times (``t_s``) are simulated seconds since the hand-over, the clock of the fault drills' ``@T``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np

from hal.report.sections import SimReport
from hal.safety.events import Mode

__all__ = ["GroundTruthConfig", "GroundTruthTracker", "TRACK_COLUMNS", "euler_zyx",
           "format_sim_section"]

TRACK_COLUMNS = ("t_s", "x_m", "y_m", "z_m", "roll_rad", "pitch_rad", "yaw_rad", "mode")


class _World(Protocol):
    @property
    def sim_time_s(self) -> float: ...

    @property
    def base_position_m(self) -> np.ndarray: ...

    @property
    def base_quaternion_wxyz(self) -> np.ndarray: ...


def euler_zyx(quaternion_wxyz: np.ndarray) -> tuple[float, float, float]:
    """Roll, pitch, yaw (rad) of R = Rz(yaw) Ry(pitch) Rx(roll) for a (w, x, y, z) quaternion."""
    w, x, y, z = (float(v) for v in quaternion_wxyz)
    norm = math.sqrt(w * w + x * x + y * y + z * z)
    if not norm > 1e-9:
        raise ValueError(f"quaternion {quaternion_wxyz} has no orientation (norm {norm})")
    w, x, y, z = w / norm, x / norm, y / norm, z / norm
    roll = math.atan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2.0 * (w * y - z * x))))
    yaw = math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    return roll, pitch, yaw


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


@dataclass(frozen=True)
class GroundTruthConfig:
    """Track rate and fall limits.

    Attributes:
        track_rate_hz: rows of ``track`` per simulated second.
        fall_tilt_rad: |roll| or |pitch| beyond this is a fall (about 57°).
        fall_height_m: a trunk lower than this above the ground is a fall (a standing Go2's is
            ~0.3 m). The ground is z=0, or on a terrain the highest point within 0.3 m of the
            trunk (a trunk down in a gap is low against the gap's edges).
        max_track_rows: the track never holds more rows: when full, every other row is dropped
            and the rate halves, so a run of any length keeps its whole track in bounded memory
            (3000 rows, about 1 MB: 5 min at 10 Hz, then 10 min at 5 Hz, ...).
    """

    track_rate_hz: float = 10.0
    fall_tilt_rad: float = 1.0
    fall_height_m: float = 0.12
    max_track_rows: int = 3000

    def __post_init__(self) -> None:
        for name in ("track_rate_hz", "fall_tilt_rad", "fall_height_m"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"GroundTruthConfig.{name} must be a positive number, got {value}")
        if not isinstance(self.max_track_rows, int) or self.max_track_rows < 2:
            raise ValueError(f"GroundTruthConfig.max_track_rows must be an integer >= 2, got "
                             f"{self.max_track_rows!r}")


class GroundTruthTracker:
    """Tick listener measuring the simulated robot from the hand-over on (see the module doc).

    Args:
        world: the simulated world (``sim_time_s``, ``base_position_m``, ``base_quaternion_wxyz``).
        config: track rate and fall limits.
        speed_command: returns the forward speed command in force (m/s), or None.
    """

    def __init__(self, world: _World, config: GroundTruthConfig | None = None,
                 speed_command: Callable[[], float] | None = None) -> None:
        self.world = world
        self.config = config or GroundTruthConfig()
        self.speed_command = speed_command
        self._period_ns = int(round(1e9 / self.config.track_rate_hz))
        self.track_rate_hz = self.config.track_rate_hz  # halves each time the track is thinned
        self.handover_s: float | None = None
        self.rows: list[list[Any]] = []
        self.falls: list[dict[str, Any]] = []
        self._next_row_ns = 0
        self._start_xy = np.zeros(2)
        self._start_yaw = 0.0
        self._last_xy = np.zeros(2)
        self._last_yaw = 0.0
        self._yaw_change = 0.0
        self._distance = 0.0
        self._max_roll = 0.0
        self._max_pitch = 0.0
        self._min_z = math.inf
        self._sum_z = 0.0
        self._ticks = 0
        self._command_sum = 0.0
        self._command_ticks = 0
        self._fallen = False
        self._t_s = 0.0

    def __call__(self, record: Any) -> None:
        mode = record.safety_mode
        if self.handover_s is None:
            if mode is not Mode.POLICY:
                return
            self._begin()
        self._sample(mode)

    def _begin(self) -> None:
        world = self.world
        self.handover_s = world.sim_time_s
        pos = world.base_position_m
        self._start_xy = self._last_xy = np.array(pos[:2], dtype=np.float64)
        self._start_yaw = self._last_yaw = euler_zyx(world.base_quaternion_wxyz)[2]

    def _sample(self, mode: Mode) -> None:
        world, cfg = self.world, self.config
        pos = world.base_position_m
        roll, pitch, yaw = euler_zyx(world.base_quaternion_wxyz)
        t_ns = int(round((world.sim_time_s - self.handover_s) * 1e9))
        self._t_s = t_s = t_ns * 1e-9
        xy = np.array(pos[:2], dtype=np.float64)
        self._distance += float(np.hypot(*(xy - self._last_xy)))
        self._last_xy = xy
        self._yaw_change += _wrap(yaw - self._last_yaw)
        self._last_yaw = yaw
        self._max_roll = max(self._max_roll, abs(roll))
        self._max_pitch = max(self._max_pitch, abs(pitch))
        z = float(pos[2])
        self._min_z = min(self._min_z, z)
        self._sum_z += z
        self._ticks += 1
        if mode is Mode.POLICY and self.speed_command is not None:
            self._command_sum += float(self.speed_command())
            self._command_ticks += 1
        tilt = max(abs(roll), abs(pitch))
        terrain = getattr(world, "terrain", None)
        ground = (terrain.max_height_near(float(pos[0]), float(pos[1]), 0.3)
                  if terrain is not None else 0.0)
        fallen = tilt > cfg.fall_tilt_rad or z - ground < cfg.fall_height_m
        if fallen and not self._fallen:
            kind = "tilt" if tilt > cfg.fall_tilt_rad else "height"
            self.falls.append({"t_s": round(t_s, 4), "kind": kind,
                               "value": round(tilt if kind == "tilt" else z - ground, 4),
                               "mode": mode})
        self._fallen = fallen
        if t_ns >= self._next_row_ns:
            if len(self.rows) >= cfg.max_track_rows:
                del self.rows[1::2]  # bounded memory: keep every other row, at half the rate
                self._period_ns *= 2
                self.track_rate_hz /= 2
            self.rows.append([round(t_s, 4), float(pos[0]), float(pos[1]), z, roll, pitch, yaw,
                              mode])
            self._next_row_ns += self._period_ns * (1 + (t_ns - self._next_row_ns)
                                                    // self._period_ns)

    def report(self) -> dict[str, Any]:
        """The ``sim`` section of the run report (JSON-ready)."""
        if self.handover_s is None:
            return {"handover_sim_time_s": None, "note": "the policy never took over",
                    "falls": [], "track": {"columns": list(TRACK_COLUMNS), "rows": []}}
        delta = self._last_xy - self._start_xy
        heading = np.array([math.cos(self._start_yaw), math.sin(self._start_yaw)])
        forward = float(delta @ heading)
        lateral = float(heading[0] * delta[1] - heading[1] * delta[0])
        duration = self._t_s
        command = (self._command_sum / self._command_ticks) if self._command_ticks else None
        return {
            "handover_sim_time_s": round(self.handover_s, 6),
            "duration_s": round(duration, 6),
            "distance_m": self._distance,
            "forward_m": forward,
            "lateral_drift_m": lateral,
            "mean_forward_speed_m_s": forward / duration if duration > 0 else 0.0,
            "mean_speed_command_m_s": command,
            "heading_change_rad": self._yaw_change,
            "max_abs_roll_rad": self._max_roll,
            "max_abs_pitch_rad": self._max_pitch,
            "min_base_height_m": self._min_z,
            "mean_base_height_m": self._sum_z / self._ticks,
            "falls": list(self.falls),
            "fall_limits": {"tilt_rad": self.config.fall_tilt_rad,
                            "height_m": self.config.fall_height_m},
            "track_rate_hz": self.track_rate_hz,
            "track": {"columns": list(TRACK_COLUMNS), "rows": [list(r) for r in self.rows]},
        }


def format_sim_section(sim: SimReport | dict[str, Any]) -> list[str]:
    """The exit table's lines for a report's ``sim`` section (typed; a dict is read as one)."""
    if isinstance(sim, dict):
        sim = SimReport.from_dict(sim, "sim")
    if sim.handover_sim_time_s is None:
        return [f"sim: {sim.note or 'no hand-over'}"]
    command = sim.mean_speed_command_m_s
    command_text = f" (command {command:.2f})" if command is not None else ""
    lines = [
        f"sim (from the hand-over at {sim.handover_sim_time_s:.2f} s, "
        f"{sim.duration_s:.2f} s): travelled {sim.distance_m:.2f} m, forward "
        f"{sim.forward_m:.2f} m at {sim.mean_forward_speed_m_s:.2f} m/s{command_text}, "
        f"heading {math.degrees(sim.heading_change_rad):+.1f}°, drift "
        f"{sim.lateral_drift_m:+.2f} m",
        f"  max |roll| {math.degrees(sim.max_abs_roll_rad):.1f}°, max |pitch| "
        f"{math.degrees(sim.max_abs_pitch_rad):.1f}°, base height min "
        f"{sim.min_base_height_m:.3f} m, mean {sim.mean_base_height_m:.3f} m, "
        f"falls {len(sim.falls)}, track {len(sim.track.rows)} rows at "
        f"{sim.track_rate_hz:g} Hz"]
    if sim.goals_total is not None and sim.course is not None:
        times = ", ".join(f"{t:.2f}" for t in sim.goal_times_s or [])
        lines.append(f"  course {sim.course.terrain}:{sim.course.difficulty:g}: goals "
                     f"{sim.goals_reached}/{sim.goals_total} (at {times or '-'} s), edge "
                     f"violations {sim.edge_violations}, x {sim.x_displacement:.0%}, "
                     f"{'SUCCESS' if sim.success else 'no success'}")
    for fall in sim.falls[:5]:
        lines.append(f"  fall at {fall.t_s:.2f} s: {fall.kind} {fall.value:.3f} ({fall.mode})")
    return lines

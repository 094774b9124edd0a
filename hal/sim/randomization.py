"""Training's domain randomisation for one simulated episode, drawn from a seed.

:class:`RandomizationRanges` holds the ranges (from the policy's training config when its
manifest carries them, else :data:`DEFAULT_RANGES`); :func:`draw_episode` draws one episode's
values from a seed: the same seed gives the same episode. The defaults are a real Go2 parkour
run's (the extreme-parkour family's Go2 configs): friction 0.7–1.3, added base mass −0.5–1.5 kg,
centre of mass ±0.03 m, a push of up to 0.2 m/s every 8 s, motor strength 0.9–1.1, action delay
0–2 policy steps, camera pitch 20–25° down, camera position noise std (0.015, 0.01, 0.015) m,
horizontal field of view 86–90°, depth noise std 0.01 m per pixel, no camera latency (the
upstream configs name none; a manifest's ``camera_latency_s`` range adds one); the start
position within ±0.3 m and the yaw within ±0.05 rad
(``randomize_start_pos``, ``rand_yaw_range``).

Pushes follow training's ``_push_robots``: every ``push_interval_s`` the trunk's horizontal
velocity is *set* to a uniform draw in ±``max_push_vel_xy`` per axis (here counted from the
hand-over, with the values drawn up front from the seed).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

import numpy as np

__all__ = ["RandomizationRanges", "DEFAULT_RANGES", "EpisodeDraw", "draw_episode",
           "ranges_from_dict"]

Range = tuple[float, float]


@dataclass(frozen=True)
class RandomizationRanges:
    """Ranges of an episode's randomisation (uniform draws; a (x, x) range is fixed).

    Attributes:
        friction: sliding friction coefficient.
        added_mass_kg: added to the trunk.
        com_offset_m: added to the trunk's centre of mass, per axis.
        motor_strength: factor on the motors' kp and kd.
        push_interval_s: seconds between pushes; 0 disables them.
        max_push_vel_xy_m_s: a push sets each horizontal velocity within ± this.
        action_delay_steps: whole policy steps (inclusive range).
        camera_pitch_deg: the depth camera's downward pitch.
        camera_position_std_m: normal noise on the camera's mount (x, y, z).
        camera_hfov_deg: the depth camera's horizontal field of view.
        depth_noise_std_m: Gaussian noise on every depth pixel (a fixed value, not drawn).
        camera_latency_s: from a depth frame's capture to its publication (the upstream configs
            name none: 0 unless a manifest sets it).
        start_xy_m: start position offset, per axis.
        start_yaw_rad: start heading offset.
        source: where the ranges came from.
    """

    friction: Range = (0.7, 1.3)
    added_mass_kg: Range = (-0.5, 1.5)
    com_offset_m: Range = (-0.03, 0.03)
    motor_strength: Range = (0.9, 1.1)
    push_interval_s: float = 8.0
    max_push_vel_xy_m_s: float = 0.2
    action_delay_steps: tuple[int, int] = (0, 2)
    camera_pitch_deg: Range = (20.0, 25.0)
    camera_position_std_m: tuple[float, float, float] = (0.015, 0.01, 0.015)
    camera_hfov_deg: Range = (86.0, 90.0)
    depth_noise_std_m: float = 0.01
    camera_latency_s: Range = (0.0, 0.0)
    start_xy_m: Range = (-0.3, 0.3)
    start_yaw_rad: Range = (-0.05, 0.05)
    source: str = "defaults (a Go2 parkour run's domain_rand)"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "source":
                continue
            values = value if isinstance(value, tuple) else (value,)
            if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
                raise ValueError(f"randomisation {f.name}: finite numbers needed, found {value!r}")
            if isinstance(value, tuple) and len(value) == 2 and value[0] > value[1]:
                raise ValueError(f"randomisation {f.name}: range {value} has low > high")
        if self.camera_latency_s[0] < 0:
            raise ValueError(f"randomisation camera_latency_s: {self.camera_latency_s} must be "
                             f">= 0")
        if self.friction[0] <= 0 or self.motor_strength[0] <= 0:
            raise ValueError("randomisation friction and motor_strength must stay positive")

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


DEFAULT_RANGES = RandomizationRanges()


def ranges_from_dict(data: Mapping[str, Any], source: str) -> RandomizationRanges:
    """Ranges from a manifest's ``domain_randomization`` (keys as :class:`RandomizationRanges`);
    a key it lacks keeps its default.

    Raises:
        ValueError: an unknown key or a bad value (named).
    """
    names = {f.name for f in fields(RandomizationRanges)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"domain_randomization: unknown keys {unknown}; valid: {sorted(names)}")
    values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()
              if k != "source"}
    return RandomizationRanges(**values, source=source)


@dataclass(frozen=True)
class EpisodeDraw:
    """One episode's drawn values (see :class:`RandomizationRanges` for their meaning)."""

    seed: int
    friction: float
    added_mass_kg: float
    com_offset_m: tuple[float, float, float]
    motor_strength: tuple[float, float]
    action_delay_steps: int
    camera_pitch_deg: float
    camera_position_offset_m: tuple[float, float, float]
    camera_hfov_deg: float
    depth_noise_std_m: float
    camera_latency_s: float
    start_xy_m: tuple[float, float]
    start_yaw_rad: float
    push_interval_s: float
    pushes_m_s: tuple[tuple[float, float], ...]
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(map(list, v)) if k == "pushes_m_s" else
                    list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def draw_episode(ranges: RandomizationRanges, seed: int, max_pushes: int = 16) -> EpisodeDraw:
    """Draw one episode from ``seed`` (the same seed, the same draw)."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5EED])

    def uniform(r: Range) -> float:
        return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])

    friction = uniform(ranges.friction)
    mass = uniform(ranges.added_mass_kg)
    com = tuple(uniform(ranges.com_offset_m) for _ in range(3))
    strength = (uniform(ranges.motor_strength), uniform(ranges.motor_strength))
    low, high = ranges.action_delay_steps
    delay = int(rng.integers(int(low), int(high) + 1))
    pitch = uniform(ranges.camera_pitch_deg)
    offset = tuple(float(rng.normal(0.0, s)) if s > 0 else 0.0
                   for s in ranges.camera_position_std_m)
    hfov = uniform(ranges.camera_hfov_deg)
    latency = uniform(ranges.camera_latency_s)
    start = (uniform(ranges.start_xy_m), uniform(ranges.start_xy_m))
    yaw = uniform(ranges.start_yaw_rad)
    v = ranges.max_push_vel_xy_m_s
    pushes = tuple((float(rng.uniform(-v, v)), float(rng.uniform(-v, v)))
                   for _ in range(max_pushes)) if ranges.push_interval_s > 0 and v > 0 else ()
    return EpisodeDraw(seed=int(seed), friction=friction, added_mass_kg=mass, com_offset_m=com,
                       motor_strength=strength, action_delay_steps=delay, camera_pitch_deg=pitch,
                       camera_position_offset_m=offset, camera_hfov_deg=hfov,
                       depth_noise_std_m=float(ranges.depth_noise_std_m),
                       camera_latency_s=latency, start_xy_m=start,
                       start_yaw_rad=yaw, push_interval_s=float(ranges.push_interval_s),
                       pushes_m_s=pushes, source=ranges.source)

"""Episodes into the report's cells: success rates with Wilson intervals, means per cell."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Iterable

__all__ = ["wilson_interval", "cell_summary", "summarise_cells", "overall_success_rate",
           "differences"]

Z_95 = 1.959963984540054
"""The standard normal's 97.5th percentile: a two-sided 95 % interval."""


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion; (0, 1) when ``n`` is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def cell_summary(terrain: str, difficulty: float, episodes: list[dict[str, Any]]) -> dict[str, Any]:
    """One cell of ``eval.json`` from its episodes."""
    n = len(episodes)
    successes = sum(1 for e in episodes if e["success"])
    low, high = wilson_interval(successes, n)
    trips: dict[str, int] = defaultdict(int)
    for e in episodes:
        for reason, count in e["safety_trips"].items():
            trips[reason] += count
    return {
        "terrain": terrain, "difficulty": difficulty, "episodes": n, "successes": successes,
        "success_rate": successes / n if n else 0.0,
        "success_rate_ci95": [round(low, 6), round(high, 6)],
        "mean_progress": _mean([e["progress"] for e in episodes]),
        "mean_x_displacement": _mean([e["x_displacement"] for e in episodes]),
        "edge_violations_per_episode": _mean([float(e["edge_violations"]) for e in episodes]),
        "falls": sum(1 for e in episodes if e["fell"]),
        "safety_trips": dict(sorted(trips.items())),
        "seeds": sorted(e["seed"] for e in episodes),
    }


def summarise_cells(episodes: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cells in (terrain, difficulty) order of first appearance."""
    grouped: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for e in episodes:
        grouped.setdefault((e["terrain"], e["difficulty"]), []).append(e)
    return [cell_summary(t, d, eps) for (t, d), eps in grouped.items()]


def overall_success_rate(cells: list[dict[str, Any]]) -> float:
    n = sum(c["episodes"] for c in cells)
    return sum(c["successes"] for c in cells) / n if n else 0.0


def differences(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per cell: the second engine's numbers minus the first's."""
    by_key = {(c["terrain"], c["difficulty"]): c for c in second}
    out = []
    for a in first:
        b = by_key.get((a["terrain"], a["difficulty"]))
        if b is None:
            continue
        out.append({"terrain": a["terrain"], "difficulty": a["difficulty"],
                    "success_rate": b["success_rate"] - a["success_rate"],
                    "mean_progress": b["mean_progress"] - a["mean_progress"],
                    "mean_x_displacement": b["mean_x_displacement"] - a["mean_x_displacement"],
                    "edge_violations_per_episode": (b["edge_violations_per_episode"]
                                                    - a["edge_violations_per_episode"]),
                    "falls": b["falls"] - a["falls"]})
    return out

"""``krabby-eval --plot``: success heat maps (terrain × difficulty), one per engine, and the
difference when there are two."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hal.optional import require

__all__ = ["plot_eval"]


def _grid(cells: list[dict[str, Any]], terrains: list[str], levels: list[float]) -> np.ndarray:
    grid = np.full((len(terrains), len(levels)), np.nan)
    for c in cells:
        grid[terrains.index(c["terrain"]), levels.index(c["difficulty"])] = c["success_rate"]
    return grid


def plot_eval(report: dict[str, Any], path: str | Path) -> Path:
    """Write the heat maps of ``report`` (an ``eval.json``) to ``path`` (PNG)."""
    matplotlib = require("matplotlib", "krabby-eval --plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    engines = report["engines"]
    terrains = list(dict.fromkeys(c["terrain"] for c in engines[0]["cells"]))
    levels = sorted({c["difficulty"] for c in engines[0]["cells"]})
    panels = [(Path(e["engine"]).name, _grid(e["cells"], terrains, levels), "viridis", (0, 1))
              for e in engines]
    if len(engines) == 2:
        panels.append(("difference (2nd − 1st)",
                       panels[1][1] - panels[0][1], "RdBu", (-1, 1)))
    fig, axes = plt.subplots(1, len(panels), figsize=(1.6 + 1.3 * len(levels) * len(panels),
                                                      1.2 + 0.55 * len(terrains)), squeeze=False)
    for ax, (title, grid, cmap, (lo, hi)) in zip(axes[0], panels):
        image = ax.imshow(grid, cmap=cmap, vmin=lo, vmax=hi, aspect="auto")
        ax.set_xticks(range(len(levels)), [f"{d:g}" for d in levels])
        ax.set_yticks(range(len(terrains)), terrains)
        ax.set_xlabel("difficulty")
        ax.set_title(title, fontsize=10)
        for (i, j), value in np.ndenumerate(grid):
            if np.isfinite(value):
                ax.text(j, i, f"{value:.0%}", ha="center", va="center", fontsize=9,
                        color="white" if (value - lo) / (hi - lo) < 0.5 else "black")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(f"success rate, krabby {report['krabby_version']}", fontsize=11)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

"""PNG plots of a benchmark run: latency histograms and CDFs, loop period over time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_plots"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _cdf(ax, values: np.ndarray, label: str) -> None:
    values = np.sort(values)
    ax.plot(values, np.arange(1, len(values) + 1) / len(values), label=label)


def write_plots(results: dict[str, Any], series: dict[str, dict[str, list[float]]],
                out_dir: Path) -> list[Path]:
    """Write the plots for the end-to-end series; returns the files written."""
    plt = _pyplot()
    written = []
    usable = {name: s for name, s in series.items() if s.get("obs_to_command_us")}
    if usable:
        fig, (hist, cdf) = plt.subplots(1, 2, figsize=(13, 4.5))
        for name, s in usable.items():
            values = np.asarray(s["obs_to_command_us"])
            bins = np.logspace(np.log10(max(values.min(), 1.0)), np.log10(values.max() + 1), 60)
            hist.hist(values, bins=bins, histtype="step", label=name)
            _cdf(cdf, values, name)
        hist.set_xscale("log")
        hist.set_xlabel("obs_to_command (µs, log)")
        hist.set_ylabel("ticks")
        hist.set_title("obs_to_command histogram")
        cdf.set_xscale("log")
        cdf.set_xlabel("obs_to_command (µs, log)")
        cdf.set_ylabel("fraction of ticks")
        cdf.set_title("obs_to_command CDF")
        cdf.grid(True, which="both", alpha=0.3)
        hist.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / "obs_to_command.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

        fig, ax = plt.subplots(len(usable), 1, figsize=(13, 2.2 * len(usable)), sharex=False,
                               squeeze=False)
        for row, (name, s) in zip(ax[:, 0], usable.items()):
            periods = np.asarray(s.get("period_us", []))
            if periods.size:
                row.plot(periods / 1e3, linewidth=0.6)
                rate = results["e2e"]["cases"][name]["rate_hz"]
                row.axhline(1e3 / rate, color="k", linewidth=0.8, linestyle="--")
            row.set_ylabel("period (ms)")
            row.set_title(name, fontsize=9)
        ax[-1, 0].set_xlabel("tick")
        fig.tight_layout()
        path = out_dir / "loop_period.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    transport = results.get("transport")
    if transport:
        fig, axes = plt.subplots(1, len(transport), figsize=(6.5 * len(transport), 4), squeeze=False)
        for ax, (label, block) in zip(axes[0], transport.items()):
            names = list(block["cases"])
            p50 = [block["cases"][n]["p50"] for n in names]
            p99 = [block["cases"][n]["p99"] for n in names]
            x = np.arange(len(names))
            ax.bar(x - 0.2, p50, 0.4, label="p50")
            ax.bar(x + 0.2, p99, 0.4, label="p99")
            ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
            ax.set_yscale("log")
            ax.set_ylabel("observation → command (µs, log)")
            ax.set_title(f"transport, {label}")
            ax.legend()
        fig.tight_layout()
        path = out_dir / "transport.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written

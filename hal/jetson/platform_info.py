"""Facts about the Jetson a run or an engine build happens on: L4T release, power mode, clocks.

An engine's speed (and the doctor's advice) depends on them, so ``krabby-build-engine`` records
them in the manifest and ``krabby-hal-doctor`` prints them. The parsers are pure and tested with
the texts JetPack 6 writes; the readers return None off a Jetson.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["parse_l4t_release", "parse_nvpmodel", "GpuClock", "l4t_release", "power_mode", "gpu_clocks",
           "platform_summary"]

NV_TEGRA_RELEASE = Path("/etc/nv_tegra_release")
DEVFREQ = Path("/sys/class/devfreq")


def parse_l4t_release(text: str) -> str | None:
    """``"# R36 (release), REVISION: 4.3, GCID: ..."`` -> ``"36.4.3"``; None if not that format."""
    match = re.search(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*(\d+)\.(\d+)", text)
    return f"{match.group(1)}.{match.group(2)}.{match.group(3)}" if match else None


def parse_nvpmodel(text: str) -> str | None:
    """``nvpmodel -q`` output (``"NV Power Mode: MAXN\\n0"``) -> ``"MAXN (mode 0)"``."""
    match = re.search(r"NV Power Mode:[ \t]*(\S+)[ \t]*(?:\r?\n\s*(\d+))?", text)
    if not match:
        return None
    return match.group(1) + (f" (mode {match.group(2)})" if match.group(2) else "")


@dataclass(frozen=True)
class GpuClock:
    device: str
    current_hz: int
    max_hz: int

    @property
    def at_max(self) -> bool:
        return self.current_hz >= self.max_hz > 0


def l4t_release(path: Path = NV_TEGRA_RELEASE) -> str | None:
    try:
        return parse_l4t_release(path.read_text())
    except OSError:
        return None


def power_mode(timeout_s: float = 5.0) -> str | None:
    """The nvpmodel power mode (None where nvpmodel is absent or fails)."""
    exe = shutil.which("nvpmodel")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "-q"], capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_nvpmodel(out.stdout)


def gpu_clocks(root: Path = DEVFREQ) -> list[GpuClock]:
    """GPU devfreq clocks (Orin's ``17000000.gpu`` / ``*.ga10b``); empty where there are none."""
    clocks = []
    if not root.is_dir():
        return clocks
    for entry in sorted(root.iterdir()):
        if "gpu" not in entry.name and "ga10b" not in entry.name and "gv11b" not in entry.name:
            continue
        try:
            clocks.append(GpuClock(entry.name, int((entry / "cur_freq").read_text()),
                                   int((entry / "max_freq").read_text())))
        except (OSError, ValueError):
            continue
    return clocks


def platform_summary() -> dict[str, object]:
    """What the manifest records about the machine that built an engine."""
    clocks = gpu_clocks()
    return {"l4t_release": l4t_release(), "power_mode": power_mode(),
            "gpu_clock_mhz": [round(c.current_hz / 1e6) for c in clocks] or None}

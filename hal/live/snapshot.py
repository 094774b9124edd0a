"""A picture of what the live stream carries, drawn with matplotlib from a client's messages.

This is not the Foxglove app (which cannot run here): it connects to a ``--live`` server as any
client would (:class:`~hal.live.client.FoxgloveClient`), listens for a while and draws the
policy's depth image, the camera's, the height scan from above, one joint's policy target /
safe target / measured position, the safety mode over time and the base's track.

Run: ``python -m hal.live.snapshot --port 8765 --seconds 10 --out live_view.png``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hal.config import build_parser as build_config_parser
from hal.config import parse_cli, part, setting
from hal.config.sections import FilesSection, MeasureSection
from hal.live.channels import TOPICS
from hal.optional import require

__all__ = ["SNAPSHOT_TOPICS", "render_snapshot", "main", "build_parser", "SnapshotConfig"]

SNAPSHOT_TOPICS = [TOPICS[k] for k in ("policy_depth", "camera", "scan", "joints", "mode",
                                       "pose")]
_MODES = ["idle", "stand_up", "ready", "policy", "stand", "damping", "estop"]


def _image(msg: Any) -> np.ndarray:
    return np.frombuffer(msg.data, dtype="<f4").reshape(msg.height, msg.width)


def render_snapshot(received: dict[str, list[tuple[int, Any]]], out: Path,
                    joint_index: int = 4) -> Path:
    """Draw the messages a client received (topic → [(log time ns, decoded message)]) to ``out``.

    Raises:
        ValueError: no message of a topic the picture needs (names it).
    """
    missing = [t for t in SNAPSHOT_TOPICS if not received.get(t)]
    if missing:
        raise ValueError(f"no messages on {missing}: is the run live and the policy running?")
    plt = _pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    fig.suptitle("What krabby's live stream carried (a Foxglove-protocol client's messages, "
                 "drawn with matplotlib — not the Foxglove app)", fontsize=11)
    policy = received[TOPICS["policy_depth"]][-1][1]
    ax = axes[0, 0]
    shown = ax.imshow(_image(policy), cmap="turbo")
    ax.set_title(f"/policy/depth: what the policy sees ({policy.height}x{policy.width})")
    fig.colorbar(shown, ax=ax, fraction=0.035)
    camera = received[TOPICS["camera"]][-1][1]
    ax = axes[0, 1]
    shown = ax.imshow(_image(camera), cmap="turbo")
    ax.set_title(f"/camera/depth: the camera's frame, m ({camera.height}x{camera.width})")
    fig.colorbar(shown, ax=ax, fraction=0.035)
    scan = received[TOPICS["scan"]][-1][1]
    points = np.frombuffer(scan.data, dtype="<f4").reshape(-1, 3)
    ax = axes[0, 2]
    shown = ax.scatter(points[:, 0], points[:, 1], c=points[:, 2], cmap="viridis", s=40)
    ax.set_title("/policy/height_scan: terrain below the base, m")
    ax.set_xlabel("x forward (m)")
    ax.set_ylabel("y left (m)")
    ax.set_aspect("equal")
    fig.colorbar(shown, ax=ax, fraction=0.035)

    joints = [m for _, m in received[TOPICS["joints"]]]
    t0 = joints[0]["t_ns"]
    t = np.array([j["t_ns"] - t0 for j in joints]) / 1e9
    ax = axes[1, 0]
    name = joints[-1]["names"][joint_index]
    for field, label, style in (("measured_rad", "measured", "-"),
                                ("safe_target_rad", "after the safety layer", "-"),
                                ("policy_target_rad", "policy target", "--")):
        values = [np.nan if j[field][joint_index] is None else j[field][joint_index]
                  for j in joints]
        ax.plot(t, values, style, label=label, lw=1.4)
    ax.set_title(f"/joints: {name}")
    ax.set_xlabel("s")
    ax.set_ylabel("rad")
    ax.legend(fontsize=8)
    modes = [(ns, m["mode"]) for ns, m in received[TOPICS["mode"]]]
    ax = axes[1, 1]
    ax.step([(ns - modes[0][0]) / 1e9 for ns, _ in modes],
            [_MODES.index(m) if m in _MODES else -1 for _, m in modes], where="post")
    ax.set_yticks(range(len(_MODES)), _MODES)
    ax.set_title("/safety/mode")
    ax.set_xlabel("s")
    poses = [m.pose.position for _, m in received[TOPICS["pose"]]]
    ax = axes[1, 2]
    ax.plot([p.x for p in poses], [p.y for p in poses], lw=1.5)
    ax.plot(poses[-1].x, poses[-1].y, "s", color="tab:red", label="now")
    ax.set_title("/pose: the base in the world (top view)")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def _pyplot() -> Any:
    matplotlib = require("matplotlib", "the live snapshot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@dataclass(frozen=True)
class LiveClientSection:
    """The live view (``--live``) to connect to."""

    section: ClassVar[str] = "live_client"

    host: str = setting("127.0.0.1", help="the live view's host")
    port: int = setting(8765, help="the live view's port")


@dataclass(frozen=True)
class SnapshotConfig:
    """``python -m hal.live.snapshot``'s run configuration."""

    live_client: LiveClientSection = part(LiveClientSection)
    measure: MeasureSection = part(MeasureSection, only=("seconds",))
    files: FilesSection = part(FilesSection, only=("out",), defaults={"out": "live_view.png"})


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(SnapshotConfig, prog="python -m hal.live.snapshot",
                               description=__doc__.split("\n\n")[0])


def main(argv: list[str] | None = None) -> int:
    from hal.live.client import FoxgloveClient

    config = parse_cli(SnapshotConfig, argv, build_parser())
    with FoxgloveClient(config.live_client.port, host=config.live_client.host) as client:
        client.subscribe([t for t in SNAPSHOT_TOPICS if t in client.channels])
        client.pump(config.measure.seconds)
    out = render_snapshot(client.received, Path(config.files.out))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Summary plot of a flight log (matplotlib, Agg backend): what to look at first after a run.

Panels, all against control time (tick count / control rate) since the first tick:

- one per joint (hardware order): the target applied to the motor vs the measured position (no
  target is drawn while the motors are damped);
- latencies: observation → command (HAL), actor engine and depth engine steps;
- the safety mode over time, with every recorded transition marked (and, when a replay result is
  given, the per-step largest action difference on a log scale);
- when the log carries the trunk's pose (``/sim/tf``, a simulated run), the x–y track from above
  (start and end marked, the hand-over to the policy too) and the heading (yaw) over time.

Safety transitions are also drawn as vertical lines across the joint panels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hal.optional import require
from hal.recorder.reader import RecordedLog
from hal.recorder.schema import MODE_CODES, SAFETY_MODES
from hal.safety.events import Mode

__all__ = ["plot_summary", "pose_track"]

# Transitions come from the log's JSON: their modes are the enum's values.
_FAULT_MODES = frozenset({Mode.DAMPING.value, Mode.ESTOP.value})


def plot_summary(log_: RecordedLog, result: Any | None, out: Path) -> Path:
    """Write the summary PNG to ``out`` and return it.

    Args:
        log_: The decoded log.
        result: A :class:`~hal.recorder.replay.ReplayResult` to overlay, or None.
        out: Output path (``.png``).
    """
    matplotlib = require("matplotlib", "krabby-replay --plot")
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    ticks = log_.ticks
    if not len(ticks):
        raise ValueError(f"{log_.path} has no ticks to plot")
    t = _control_time_s(log_)
    tick_capture = ticks.column("capture_ns")
    names = log_.run.get("joint_names_hardware") or [
        f"joint {i}" for i in range(ticks.field("joints.position_rad").shape[1])]
    n = len(names)
    cols = 3 if n % 3 == 0 else 4
    rows = int(np.ceil(n / cols))
    track = pose_track(log_)
    extra_rows = 1 if track is not None else 0
    fig = plt.figure(figsize=(4.2 * cols, 2.0 * rows + 6.0 + 3.2 * extra_rows))
    grid = fig.add_gridspec(rows + 2 + extra_rows, cols,
                            height_ratios=[1.0] * rows + [1.4, 1.4] + [2.6] * extra_rows)
    measured = ticks.field("joints.position_rad")
    target = ticks.field("applied.target_rad")
    damped = ticks.column("applied.mode") != 0
    transitions = [(tr, _time_of(tr, ticks, t)) for tr in log_.transitions]
    for j in range(n):
        ax = fig.add_subplot(grid[j // cols, j % cols])
        ax.plot(t, measured[:, j], lw=0.9, label="measured")
        shown = np.where(damped, np.nan, target[:, j])  # a damped motor has no target
        ax.plot(t, shown, lw=0.9, ls="--", label="target")
        _mark(ax, transitions)
        ax.set_title(names[j], fontsize=8)
        ax.tick_params(labelsize=7)
        if j == 0:
            ax.legend(fontsize=7, loc="best")
    ax = fig.add_subplot(grid[rows, :])
    o2c = ticks.column("obs_to_command_ns")
    answered = o2c >= 0
    ax.plot(t[answered], o2c[answered] / 1e3, ".", ms=2, label="observation → command (HAL)")
    if len(log_.actor):
        ta = _at_ticks(log_.actor.column("capture_ns"), tick_capture, t)
        ax.plot(ta, log_.actor.column("timings.engine_ns") / 1e3, ".", ms=2, label="actor engine")
    if len(log_.depth):
        td = _at_ticks(log_.depth.column("capture_ns"), tick_capture, t)
        ax.plot(td, log_.depth.column("engine_ns") / 1e3, "o", ms=3, label="depth engine")
    ax.set_ylabel("µs")
    ax.set_title("latencies", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    _mark(ax, transitions)
    ax = fig.add_subplot(grid[rows + 1, :])
    modes = ticks.column("safety_mode")
    ax.step(t, modes, where="post", color="k", lw=1.0)
    ax.set_yticks(range(len(SAFETY_MODES)), [m.value for m in SAFETY_MODES], fontsize=7)
    ax.set_ylim(-0.5, len(SAFETY_MODES) - 0.5)
    for tr, when in transitions:
        ax.annotate(str(tr.get("reason", "")), (when, MODE_CODES.get(tr.get("to"), 0)),
                    fontsize=6, rotation=30, xytext=(3, 3), textcoords="offset points")
    _mark(ax, transitions)
    ax.set_xlabel("control time since the first tick (s)")
    ax.set_title("safety mode and transitions", fontsize=9)
    if result is not None and result.steps:
        seq_to_t = dict(zip(ticks.column("seq").tolist(), t.tolist()))
        tr_t = np.array([seq_to_t.get(int(s), np.nan) for s in result.obs_seq])
        # Exact matches at the bottom, non-finite differences (a NaN on one side) at the top.
        diff = np.clip(np.nan_to_num(result.action_abs_diff.max(axis=1), posinf=1e3), 1e-12, 1e3)
        twin = ax.twinx()
        twin.semilogy(tr_t, diff, ".", ms=2, color="tab:red", label="replay max |Δ action|")
        twin.axhline(result.tolerance, color="tab:red", lw=0.6, ls=":")
        twin.set_ylim(1e-13, 1e4)
        twin.set_ylabel("replay |Δ action|", fontsize=7, color="tab:red")
        twin.tick_params(labelsize=7)
    if track is not None:
        _plot_track(fig, grid[rows + 2, :cols // 2], grid[rows + 2, cols // 2:], track, log_, t)
    fig.suptitle(f"{log_.path.name}: robot {log_.run.get('robot')}, {len(ticks)} ticks "
                 f"({t[-1]:.1f} s), {log_.run.get('log', '')} log", fontsize=10)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _control_time_s(log_: RecordedLog) -> np.ndarray:
    """Seconds of control time per tick: tick count / rate (what the robot lived through; in a
    simulator's fast mode the wall clock runs faster), else the ticks' monotonic times."""
    ticks = log_.ticks
    rate = log_.run.get("control_rate_hz")
    seqs = ticks.column("seq")
    if rate:
        return (seqs - seqs[0]) / float(rate)
    tick_ns = ticks.column("tick_ns")
    return (tick_ns - tick_ns[0]) / 1e9


def _at_ticks(capture_ns: np.ndarray, tick_capture_ns: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Control time of the tick captured last before each of ``capture_ns``."""
    index = np.searchsorted(tick_capture_ns, capture_ns, side="right") - 1
    return t[np.clip(index, 0, len(t) - 1)]


def _time_of(transition: dict[str, Any], ticks: Any, t: np.ndarray) -> float:
    seqs = ticks.column("seq")
    index = int(np.searchsorted(seqs, int(transition.get("seq", 0))))
    return float(t[min(index, len(t) - 1)])


def _mark(ax: Any, transitions: list[tuple[dict[str, Any], float]]) -> None:
    for tr, when in transitions:
        color = "tab:red" if tr.get("to") in _FAULT_MODES else "0.6"
        ax.axvline(when, color=color, lw=0.7, ls=":")


def pose_track(log_: RecordedLog) -> dict[str, np.ndarray] | None:
    """The trunk's pose from ``/sim/tf``: tick ``seq``, ``x``, ``y`` (m) and unwrapped ``yaw``
    (rad), or None when the log has none."""
    messages = log_.extra.get("/sim/tf") or []
    if not messages:
        return None
    seq = np.array([m[0] for m in messages], dtype=np.int64)
    base = [_base_transform(m[2]) for m in messages]
    x = np.array([t["translation"]["x"] for t in base])
    y = np.array([t["translation"]["y"] for t in base])
    q = np.array([[t["rotation"][k] for k in "xyzw"] for t in base])
    yaw = np.unwrap(np.arctan2(2.0 * (q[:, 3] * q[:, 2] + q[:, 0] * q[:, 1]),
                               1.0 - 2.0 * (q[:, 1] ** 2 + q[:, 2] ** 2)))
    order = np.argsort(seq, kind="stable")
    return {"seq": seq[order], "x": x[order], "y": y[order], "yaw": yaw[order]}


def _base_transform(msg: dict[str, Any]) -> dict[str, Any]:
    """The world → base transform of a ``/sim/tf`` message: a ``foxglove.FrameTransforms``
    (foxglove-sdk, protobuf) or, in logs written before it, one ``foxglove.FrameTransform``."""
    if "transforms" not in msg:
        return msg
    for transform in msg["transforms"]:
        if transform["child_frame_id"] == "base":
            return transform
    raise ValueError("/sim/tf message without a world -> base transform")


def _plot_track(fig: Any, left: Any, right: Any, track: dict[str, np.ndarray],
                log_: RecordedLog, t: np.ndarray) -> None:
    ticks = log_.ticks
    seqs = ticks.column("seq")
    index = np.clip(np.searchsorted(seqs, track["seq"]), 0, len(t) - 1)
    tt = t[index]
    modes = ticks.column("safety_mode")[index]
    policy = np.flatnonzero(modes == SAFETY_MODES.index("policy"))
    ax = fig.add_subplot(left)
    ax.plot(track["x"], track["y"], lw=1.0, color="tab:blue")
    ax.plot(track["x"][0], track["y"][0], "o", color="tab:green", label="start")
    ax.plot(track["x"][-1], track["y"][-1], "s", color="tab:red", label="end")
    if len(policy):
        ax.plot(track["x"][policy[0]], track["y"][policy[0]], "^", color="k",
                label="hand-over")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title("trunk track from above (/sim/tf)", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    ax = fig.add_subplot(right)
    ax.plot(tt, np.degrees(track["yaw"]), lw=1.0)
    ax.set_xlabel("control time since the first tick (s)")
    ax.set_ylabel("heading (°)")
    ax.set_title("heading (yaw, unwrapped)", fontsize=9)

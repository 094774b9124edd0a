"""Bring-up without moving the robot: a joint driver that records the commands instead of sending them.

``krabby-hal-server-jetson --dry-run`` runs everything a real run does — every sensor read, the
policy, the safety layer (stand-up ramp, entry gate, limits, watchdog) — and hands the final
commands to :class:`DryRunJointDriver`, which records each one (time, mode, targets, gains, and the
measured positions it would have acted on) and sends the motors **nothing**; with
``--dry-run-damp`` it sends only damping (kp 0) instead, which holds a robot lying down safely.
The recording is written as ``.npz`` on close and summarised in the log (:meth:`DryRunJointDriver.summary`).

The wrapper sits below the safety layer, at the device, so nothing above it can tell a dry run
from a real one.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hal.config.fields import setting
from hal.devices.base import CONTROL_MODE_DAMP, JointCommand, JointDriver, JointState

__all__ = ["DRY_RUN_MODES", "DryRunSection", "DryRunJointDriver"]

log = logging.getLogger(__name__)

#: ``silent``: send nothing; ``damp``: send only damping commands (kp 0).
DRY_RUN_MODES = ("silent", "damp")


@dataclass(frozen=True)
class DryRunSection:
    """Bring-up: run everything, send the motors nothing (or damping only), record the commands."""

    section: ClassVar[str] = "dry_run"
    title: ClassVar[str] = "bring-up"

    dry_run: bool = setting(False, help="run everything but send the motors nothing; record the "
                                        "commands")
    dry_run_damp: bool = setting(False, help="like --dry-run, but send damping (kp 0) to the "
                                             "motors (given with --dry-run, this one counts)")
    dry_run_record: Path | None = setting(None, metavar="PATH",
                                          help="with --dry-run: write the commands it would have "
                                               "sent (.npz)")

    def __post_init__(self) -> None:
        if self.dry_run_record is not None and self.mode is None:
            raise ValueError("--dry-run-record needs --dry-run or --dry-run-damp")

    @property
    def mode(self) -> str | None:
        """None (a real run), ``"silent"`` or ``"damp"`` (``--dry-run-damp`` wins over
        ``--dry-run``: it is the one that sends something)."""
        if self.dry_run_damp:
            return "damp"
        return "silent" if self.dry_run else None


class DryRunJointDriver(JointDriver):
    """Wraps the robot's real joint driver: reads pass through, commands are recorded, not sent.

    Args:
        inner: The real driver (connected and read as usual).
        mode: ``"silent"`` (nothing reaches the motors) or ``"damp"`` (each command becomes a
            damping command with ``damp_kd``).
        damp_kd: Damping gain sent in ``"damp"`` mode.
        record_path: Where :meth:`close` writes the recorded commands (``.npz``); None keeps them
            in memory only (:meth:`recorded`).
        capacity: Commands kept (the oldest are dropped beyond it; 100 Hz x 1 h by default).
    """

    def __init__(self, inner: JointDriver, mode: str = "silent", damp_kd: float = 1.0,
                 record_path: str | Path | None = None, capacity: int = 360_000) -> None:
        if mode not in DRY_RUN_MODES:
            raise ValueError(f"dry-run mode {mode!r} is not one of {DRY_RUN_MODES}")
        if not damp_kd > 0:
            raise ValueError(f"dry-run damp_kd must be positive, got {damp_kd!r}")
        self.inner, self.mode, self.damp_kd = inner, mode, float(damp_kd)
        self.record_path = Path(record_path) if record_path is not None else None
        n = len(inner.joint_names)
        self._lock = threading.Lock()
        self._t_ns = np.zeros(capacity, np.int64)
        self._mode = np.zeros(capacity, np.int8)
        self._target = np.zeros((capacity, n))
        self._kp = np.zeros((capacity, n))
        self._kd = np.zeros((capacity, n))
        self._measured = np.full((capacity, n), np.nan)
        self._count = 0
        self._last_position: np.ndarray | None = None

    # -- device ---------------------------------------------------------------------------------

    @property
    def wrapped(self) -> JointDriver:
        """The real driver (:class:`hal.devices.protocols.WrapsDevice`)."""
        return self.inner

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.inner.joint_names

    @property
    def is_connected(self) -> bool:
        return self.inner.is_connected

    def connect(self) -> None:
        self.inner.connect()
        log.warning("DRY RUN (%s): commands are recorded, %s", self.mode,
                    "the motors receive nothing" if self.mode == "silent" else "the motors receive only damping")

    def read(self) -> JointState:
        state = self.inner.read()
        self._last_position = state.position_rad
        return state

    def write(self, command: JointCommand) -> None:
        self._record(command)
        if self.mode == "damp":
            self.inner.damp(np.full(len(self.joint_names), self.damp_kd))

    def damp(self, kd: np.ndarray) -> None:
        n = len(self.joint_names)
        self._record(JointCommand(np.zeros(n), np.zeros(n), np.asarray(kd, dtype=np.float64), mode=CONTROL_MODE_DAMP))
        if self.mode == "damp":
            self.inner.damp(kd)

    def close(self) -> None:
        self.inner.close()
        if self.record_path is not None:
            self.save(self.record_path)
        log.warning("DRY RUN finished: %s", self.summary())

    # -- the record -----------------------------------------------------------------------------

    def _record(self, command: JointCommand) -> None:
        with self._lock:
            i = self._count % len(self._t_ns)
            self._t_ns[i] = time.monotonic_ns()
            self._mode[i] = command.mode
            self._target[i] = command.target_rad
            self._kp[i] = command.kp
            self._kd[i] = command.kd
            if self._last_position is not None:
                self._measured[i] = self._last_position
            self._count += 1

    def recorded(self) -> dict[str, np.ndarray]:
        """The recorded commands in time order: ``t_ns``, ``mode``, ``target_rad``, ``kp``, ``kd``,
        ``measured_rad`` (the positions read just before each command)."""
        with self._lock:
            cap = len(self._t_ns)
            n = min(self._count, cap)
            order = (np.arange(n) + (self._count - n)) % cap
            return {"t_ns": self._t_ns[order], "mode": self._mode[order], "target_rad": self._target[order],
                    "kp": self._kp[order], "kd": self._kd[order], "measured_rad": self._measured[order],
                    "joint_names": np.array(self.joint_names)}

    def summary(self) -> dict[str, Any]:
        """Counts and the largest target-minus-measured step, for the run report."""
        rec = self.recorded()
        position = rec["mode"] != CONTROL_MODE_DAMP
        gap = np.abs(rec["target_rad"][position] - rec["measured_rad"][position])
        return {"mode": self.mode, "commands": int(len(rec["t_ns"])), "position_commands": int(position.sum()),
                "damp_commands": int((~position).sum()),
                "max_target_minus_measured_rad": float(np.nanmax(gap)) if gap.size and not np.isnan(gap).all() else None,
                "record": str(self.record_path) if self.record_path else None}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        np.savez(path, **self.recorded())
        log.info("dry run: %d commands recorded in %s", self._count, path)
        return path

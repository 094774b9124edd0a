"""``FlightRecorder``: the last N seconds always in memory, dumped to MCAP when things go wrong.

Ticks, actor steps and depth steps go into preallocated rings
(:class:`~hal.recorder.buffers.RowRing`) sized for the window, overwritten oldest first; raw camera
frames are left out (too big to keep seconds of). A dump is triggered by

- a safety transition into ``damping`` or ``estop`` seen in a tick (dumped ``post_trigger_s``
  later, so the log also shows what followed);
- :meth:`FlightRecorder.request_dump` (any thread, and safe inside a signal handler: it only sets a
  flag), e.g. on SIGUSR1;
- :meth:`FlightRecorder.dump` (synchronous, returns the file).

Dumps are written by the recorder's own thread from a consistent snapshot of the rings, into
``<directory>/flight-<date>-<time>-<trigger>.mcap`` (a ``.part`` file renamed when complete), and
announced with a WARNING log line naming the file. The control loop only ever copies rows and sets
a flag.
"""

from __future__ import annotations

import datetime
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hal.recorder.buffers import RowRing, Snapshot
from hal.recorder.capture import RecordLayouts
from hal.recorder.log_writer import LogWriter
from hal.recorder.schema import mode_name
from hal.safety.events import Mode

if TYPE_CHECKING:
    from hal.safety import SafetyLayer

__all__ = ["FlightRecorderConfig", "FlightRecorder"]

log = logging.getLogger(__name__)

# A dump encodes thousands of rows on the recorder's thread; yielding the GIL this often keeps
# the control loop's wait for it to a fraction of a tick.
_ROWS_PER_YIELD = 16


@dataclass
class FlightRecorderConfig:
    """What the flight recorder keeps and when it dumps.

    Attributes:
        window_s: Seconds of history kept in memory.
        directory: Where dumps go.
        post_trigger_s: Delay between a safety trigger and its dump (the aftermath is kept too).
        trigger_modes: Safety modes whose entry triggers a dump.
        max_dumps: Dumps per run at most (a robot cycling through faults must not fill the disk).
        compression: MCAP chunk compression of the dumps.
    """

    window_s: float = 10.0
    directory: Path = field(default_factory=lambda: Path("flight"))
    post_trigger_s: float = 1.0
    trigger_modes: tuple[Mode, ...] = (Mode.DAMPING, Mode.ESTOP)
    max_dumps: int = 20
    compression: str = "zstd"

    def __post_init__(self) -> None:
        if not self.window_s > 0:
            raise ValueError(f"window_s must be positive, got {self.window_s}")
        if self.post_trigger_s < 0:
            raise ValueError(f"post_trigger_s must not be negative, got {self.post_trigger_s}")
        self.directory = Path(self.directory)


class FlightRecorder:
    """A :class:`~hal.recorder.capture.RecordSink` keeping the last ``window_s`` seconds.

    Args:
        layouts: Record layouts of the run (the frame layout is ignored).
        run_info: Description of the run, stored in every dump.
        control_rate_hz: Tick rate (sizes the tick and actor rings).
        depth_rate_hz: Depth step rate (sizes the depth ring).
        config: Window, directory, triggers.
        safety: The server's safety layer (its events give the transitions' reasons).
    """

    wants_frames = False

    def __init__(self, layouts: RecordLayouts, run_info: dict[str, Any], control_rate_hz: float,
                 depth_rate_hz: float, config: FlightRecorderConfig | None = None,
                 safety: SafetyLayer | None = None) -> None:
        self.config = cfg = config or FlightRecorderConfig()
        self.layouts = layouts
        self.run_info = dict(run_info)
        self.safety = safety
        ticks = int(np.ceil(cfg.window_s * control_rate_hz)) + 2
        depth_steps = int(np.ceil(cfg.window_s * depth_rate_hz * 1.5)) + 4
        self._rings = {"tick": RowRing(layouts.tick, ticks), "actor": RowRing(layouts.actor, ticks),
                       "depth": RowRing(layouts.depth, depth_steps)}
        self.dumps: list[Path] = []
        self.suppressed = 0
        self.failures = 0
        self._trigger_modes = frozenset(cfg.trigger_modes)
        # Set by producers (plain assignments, safe anywhere); read by the dump thread.
        self._trigger: tuple[str, int] | None = None  # (reason, due monotonic ns)
        self._requested: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one dump at a time
        self._thread: threading.Thread | None = None

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the rings."""
        return sum(r.floats.nbytes + r.ints.nbytes for r in self._rings.values())

    # -- producer side --------------------------------------------------------------------------

    def accept(self, kind: str, floats: np.ndarray, ints: np.ndarray) -> None:
        ring = self._rings[kind]
        index = ring.begin()
        np.copyto(ring.floats[index], floats)
        np.copyto(ring.ints[index], ints)
        ring.commit()

    def accept_frame(self, tick_seq: int, depth_seq: int, capture_ns: int,
                     frame: np.ndarray) -> None:
        pass  # frames are too big to keep seconds of; the file recorder logs them

    def on_mode_change(self, previous: Mode | None, mode: Mode, seq: int) -> None:
        if previous is not None and mode in self._trigger_modes and self._trigger is None:
            due = time.monotonic_ns() + int(self.config.post_trigger_s * 1e9)
            self._trigger = (f"{previous}-to-{mode}", due)

    def request_dump(self, reason: str = "request") -> None:
        """Dump as soon as the recorder's thread sees this (signal-handler safe: sets a flag)."""
        self._requested = reason

    # -- dump thread ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread that writes triggered and requested dumps."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="krabby-flight-recorder",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._dump_due(time.monotonic_ns())

    def _dump_due(self, now_ns: int, flush_all: bool = False) -> None:
        requested = self._requested
        if requested is not None:
            self._requested = None
            self._safe_dump(requested)
        trigger = self._trigger
        if trigger is not None and (flush_all or now_ns >= trigger[1]):
            self._safe_dump(trigger[0])
            self._trigger = None  # producers set a new one only while none is pending

    def _safe_dump(self, reason: str) -> None:
        try:
            self.dump(reason)
        except OSError as exc:  # a full disk, a read-only mount: one line, not a traceback
            self.failures += 1
            log.error("flight recorder: dump (%s) failed: %s", reason, exc)
        except Exception:  # noqa: BLE001 - a failed dump must not stop the recorder
            self.failures += 1
            log.exception("flight recorder: dump (%s) failed", reason)

    def dump(self, reason: str = "request") -> Path | None:
        """Write the window now; returns the file (None once ``max_dumps`` is reached)."""
        with self._lock:
            if len(self.dumps) >= self.config.max_dumps:
                self.suppressed += 1
                log.warning("flight recorder: dump (%s) skipped: %d dumps already written this "
                            "run", reason, len(self.dumps))
                return None
            snaps = {kind: ring.snapshot() for kind, ring in self._rings.items()}
            path = self._dump_path(reason)
            part = path.with_name(path.name + ".part")
            ticks = snaps["tick"]
            info = dict(self.run_info, log="flight", trigger=reason,
                        window_s=self.config.window_s, starts="window")
            try:
                writer = LogWriter(part, {k: self.layouts.by_kind()[k] for k in snaps}, info,
                                   self.config.compression)
                try:
                    for kind, snap in snaps.items():
                        stamp_field = "tick_ns" if kind == "tick" else "capture_ns"
                        seq_field = "seq" if kind == "tick" else "step"
                        for row in range(len(snap)):
                            if row % _ROWS_PER_YIELD == 0:
                                time.sleep(0)  # hand the GIL to the control loop now and then
                            writer.write_row(kind, snap.floats[row], snap.ints[row],
                                             int(snap.layout.column(snap.ints[row], stamp_field)),
                                             int(snap.layout.column(snap.ints[row], seq_field)))
                    for event, seq, stamp in self._transitions(ticks):
                        writer.write_transition(event, seq, stamp)
                except BaseException:
                    writer.abandon()
                    raise
                writer.close()
                part.replace(path)
            except BaseException:
                part.unlink(missing_ok=True)  # never leave a (0-byte) .part behind
                raise
            self.dumps.append(path)
            span_s = 0.0
            if len(ticks) > 1:
                tick_ns = ticks.layout.column(ticks.ints, "tick_ns")
                span_s = (int(tick_ns[-1]) - int(tick_ns[0])) / 1e9
            log.warning("flight recorder: dumped the last %.1f s (%d ticks, %d actor steps, %d "
                        "depth steps; trigger %s) to %s", span_s, len(ticks), len(snaps["actor"]),
                        len(snaps["depth"]), reason, path)
            return path

    def _dump_path(self, reason: str) -> Path:
        directory = self.config.directory
        directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        slug = re.sub(r"[^A-Za-z0-9_-]+", "-", reason).strip("-")[:40] or "dump"
        path = directory / f"flight-{stamp}-{slug}.mcap"
        n = 1
        while path.exists():
            n += 1
            path = directory / f"flight-{stamp}-{slug}-{n}.mcap"
        return path

    def _transitions(self, ticks: Snapshot) -> list[tuple[dict[str, Any], int, int]]:
        """Mode changes seen in the window's ticks, each with the safety event that explains it
        (the one entering the same mode closest in time)."""
        if len(ticks) < 2:
            return []
        lay = ticks.layout
        modes = lay.column(ticks.ints, "safety_mode")
        changes = np.flatnonzero(modes[1:] != modes[:-1]) + 1
        events = self.safety.events() if self.safety is not None else []
        out = []
        for k in changes:
            to, frm = mode_name(int(modes[k])), mode_name(int(modes[k - 1]))
            sensor_ns = int(lay.column(ticks.ints[k], "joints.timestamp_ns"))
            matching = [e for e in events if e.get("to") == to]
            if matching:
                event = dict(min(matching, key=lambda e: abs(int(e.get("t_ns", 0)) - sensor_ns)))
                event["from"] = frm
            else:
                event = {"t_ns": sensor_ns, "from": frm, "to": to, "reason": "unknown",
                         "detail": "no safety event recorded for it"}
            out.append((event, int(lay.column(ticks.ints[k], "seq")),
                        int(lay.column(ticks.ints[k], "tick_ns"))))
        return out

    # -- end ------------------------------------------------------------------------------------

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop the thread; a pending trigger or request is dumped now."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.error("flight recorder thread did not stop within %.0f s", timeout_s)
                return
            self._thread = None
        self._dump_due(time.monotonic_ns(), flush_all=True)

    def stats(self) -> dict[str, Any]:
        return {"window_s": self.config.window_s, "directory": str(self.config.directory),
                "memory_mb": round(self.memory_bytes / 2**20, 2),
                "dumps": [str(p) for p in self.dumps], "suppressed": self.suppressed,
                "failures": self.failures}

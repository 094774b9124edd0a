"""``FileRecorder``: every record of a run into an MCAP log, serialised off the control path.

The tap's listeners call :meth:`FileRecorder.accept` on their own threads: it copies the staged
row into a free row of a preallocated pool and appends ``(kind, row)`` to a bounded queue. When no
row is free or the queue is full the record is dropped and counted — the loop never waits for the
disk. The queue is a ``collections.deque`` (append and popleft are atomic): unlike
``queue.Queue.put_nowait`` it takes no lock and wakes no thread, so the writer never competes for
the GIL right after a tick; the writer thread instead wakes every ``poll_interval_s``, takes
every queued row, encodes it (JSON), writes it into the MCAP file and gives the row back. It
flushes a chunk about once a second so a process that dies loses at most that much (the file then
ends on a record boundary and reads as an unclosed log). Safety transitions are read from the
safety layer on the writer thread whenever the recorded mode changes, and once more at close.

A full disk never costs the run: before the free space falls below ``min_free_bytes`` the log is
finished cleanly and later records are dropped and counted; a write that fails anyway (ENOSPC,
EIO) is reported in one line and the file is cut back to its last complete flush. "Written"
counts only records that reached the file.
"""

from __future__ import annotations

import collections
import errno
import logging
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from hal.recorder.buffers import RowPool
from hal.recorder.capture import RecordLayouts
from hal.recorder.log_writer import LogWriter
from hal.safety.events import Mode

if TYPE_CHECKING:
    from hal.safety import SafetyLayer

__all__ = ["FileRecorderConfig", "FileRecorder"]

log = logging.getLogger(__name__)

_KINDS = ("tick", "actor", "depth", "frame")


@dataclass
class FileRecorderConfig:
    """Sizes and pacing of the file recorder.

    Attributes:
        queue_size: Records waiting for the writer at most (all kinds together).
        tick_rows / actor_rows / depth_rows / frame_rows: Preallocated rows per kind.
        record_frames: Also log every raw depth frame the HAL wrote (big: a ZED frame is ~1 MB).
        flush_interval_s: The writer closes a chunk at least this often.
        poll_interval_s: The writer looks for queued records this often.
        compression: MCAP chunk compression ("zstd", "lz4", "none").
        chunk_size: MCAP chunk size in bytes.
        min_free_bytes: The log stops (finished cleanly, later records dropped and counted)
            before the disk's free space falls below this: room kept for the flight
            recorder's dumps and for everything else on the machine.
    """

    queue_size: int = 1024
    tick_rows: int = 512
    actor_rows: int = 512
    depth_rows: int = 32
    frame_rows: int = 8
    record_frames: bool = False
    flush_interval_s: float = 1.0
    poll_interval_s: float = 0.02
    compression: str = "zstd"
    chunk_size: int = 1 << 20
    min_free_bytes: int = 256 << 20

    def __post_init__(self) -> None:
        for name in ("queue_size", "tick_rows", "actor_rows", "depth_rows", "frame_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("flush_interval_s", "poll_interval_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


def disk_free_bytes(directory: Path) -> int:
    """Bytes an unprivileged writer may still use on ``directory``'s file system."""
    return shutil.disk_usage(directory).free


class FileRecorder:
    """A :class:`~hal.recorder.capture.RecordSink` writing an MCAP log.

    Args:
        path: The log file (created with its parents; an existing file is replaced).
        layouts: Record layouts of the run.
        run_info: Description of the run stored in the log (robot, command, ...).
        config: Queue and pool sizes, compression.
        safety: The server's safety layer, read for transition reasons (optional).
        free_bytes: Free space of a directory's file system (default
            :func:`disk_free_bytes`).

    The file is created here (so a bad path fails before the run); call :meth:`start` to start
    the writer thread and :meth:`close` at the end.
    """

    def __init__(self, path: str | Path, layouts: RecordLayouts, run_info: dict[str, Any],
                 config: FileRecorderConfig | None = None, safety: SafetyLayer | None = None,
                 free_bytes: Callable[[Path], int] | None = None) -> None:
        self.config = cfg = config or FileRecorderConfig()
        self.path = Path(path)
        self.layouts = layouts
        self.safety = safety
        self.wants_frames = bool(cfg.record_frames and layouts.frame is not None)
        kinds = layouts.by_kind()
        if not self.wants_frames:
            kinds.pop("frame", None)
        rows = {"tick": cfg.tick_rows, "actor": cfg.actor_rows, "depth": cfg.depth_rows,
                "frame": cfg.frame_rows}
        self._pools = {kind: RowPool(layout, rows[kind]) for kind, layout in kinds.items()}
        self._queue: collections.deque = collections.deque()
        self._queue_size = cfg.queue_size
        self.dropped = {kind: 0 for kind in _KINDS}
        self.accepted = {kind: 0 for kind in _KINDS}
        self._free_bytes = free_bytes = free_bytes or (lambda p: disk_free_bytes(p))
        free = free_bytes(self.path.parent if self.path.parent.exists() else Path("."))
        if free < cfg.min_free_bytes:
            raise OSError(errno.ENOSPC, f"--record {self.path}: {free / 2**20:.0f} MiB free, "
                          f"below the {cfg.min_free_bytes / 2**20:.0f} MiB the recorder keeps "
                          "free; free some space or record elsewhere")
        self.writer = LogWriter(self.path, kinds, run_info, cfg.compression, cfg.chunk_size)
        self.stopped: str | None = None  # why the log stopped before the run ended
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._last_mode = -2
        self._events_written: set[tuple] = set()
        self._last_tick = (0, 0)  # (seq, tick_ns) of the newest tick written
        self._closed = False

    # -- producer side (listener threads) -------------------------------------------------------

    def accept(self, kind: str, floats: np.ndarray, ints: np.ndarray) -> None:
        if self.stopped is not None:
            self.dropped[kind] += 1
            return
        pool = self._pools[kind]
        index = pool.acquire()
        if index is None:
            self.dropped[kind] += 1
            return
        # Three producer threads may pass this check at once: the bound is exceeded by two at most.
        if len(self._queue) >= self._queue_size:
            pool.release(index)
            self.dropped[kind] += 1
            return
        np.copyto(pool.floats[index], floats)
        np.copyto(pool.ints[index], ints)
        self._queue.append((kind, index))
        self.accepted[kind] += 1

    def accept_frame(self, tick_seq: int, depth_seq: int, capture_ns: int,
                     frame: np.ndarray) -> None:
        if self.stopped is not None:
            self.dropped["frame"] += 1
            return
        pool = self._pools["frame"]
        index = pool.acquire()
        if index is None:
            self.dropped["frame"] += 1
            return
        if len(self._queue) >= self._queue_size:
            pool.release(index)
            self.dropped["frame"] += 1
            return
        np.copyto(pool.floats[index], frame.reshape(-1))
        pool.ints[index] = (tick_seq, depth_seq, capture_ns)
        self._queue.append(("frame", index))
        self.accepted["frame"] += 1

    def add_json_channel(self, key: str, topic: str, schema_name: str,
                         schema: dict[str, Any]) -> None:
        """Register a JSON channel for :meth:`accept_message` (registered on the writer thread,
        in order with the messages; call it before the first message)."""
        self.dropped.setdefault(key, 0)
        self.accepted.setdefault(key, 0)
        self._queue.append(("register", (key, topic, schema_name, schema)))

    def add_foxglove_channel(self, key: str, topic: str, message_type: Any) -> None:
        """Register a channel of a foxglove-sdk message type for :meth:`accept_message` (protobuf,
        the schema the SDK gives; registered on the writer thread like
        :meth:`add_json_channel`)."""
        self.dropped.setdefault(key, 0)
        self.accepted.setdefault(key, 0)
        self._queue.append(("register_foxglove", (key, topic, message_type)))

    def accept_message(self, key: str, stamp_ns: int, sequence: int,
                       build: Callable[[int], Any]) -> None:
        """Queue one message of channel ``key``; ``build(log_time_ns)`` makes its JSON object
        (or, on a :meth:`add_foxglove_channel` channel, its foxglove-sdk message) on the writer
        thread (capture copies of what it needs). Dropped and counted when full."""
        if len(self._queue) >= self._queue_size:
            self.dropped[key] = self.dropped.get(key, 0) + 1
            return
        self._queue.append(("message", (key, stamp_ns, sequence, build)))
        self.accepted[key] = self.accepted.get(key, 0) + 1

    def on_mode_change(self, previous: Mode | None, mode: Mode, seq: int) -> None:
        pass  # the writer sees mode changes in the tick rows it writes

    # -- writer thread --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="krabby-recorder", daemon=True)
        self._thread.start()
        log.info("recording to %s", self.path)

    def _run(self) -> None:
        next_flush = time.monotonic() + self.config.flush_interval_s
        queued = self._queue
        try:
            while True:
                stopping = self._stop.is_set()
                while queued:
                    kind, index = queued.popleft()
                    self._write(kind, index)
                if stopping:
                    break
                if time.monotonic() >= next_flush:
                    self.writer.flush()
                    next_flush = time.monotonic() + self.config.flush_interval_s
                    if self._below_floor():
                        break
                self._stop.wait(self.config.poll_interval_s)
        except BaseException as exc:  # noqa: BLE001 - reported at close; the run goes on
            self._fail(exc)

    def _below_floor(self) -> bool:
        """Stop the log (finished, readable) when the disk is about to fill."""
        free = self._free_bytes(self.path.parent)
        if free >= self.config.min_free_bytes:
            return False
        self.stopped = (f"disk almost full: {free / 2**20:.0f} MiB free < "
                        f"{self.config.min_free_bytes / 2**20:.0f} MiB kept free")
        self._drain_dropped()
        try:
            self._write_new_transitions()
            self.writer.add_metadata("krabby.recorder", self.stats())
            self.writer.close()
        except OSError as exc:
            self._fail(exc)
            return True
        log.error("flight log %s stopped: %s; %d records in it, later ones dropped", self.path,
                  self.stopped, self.stats()["written_total"])
        return True

    def _fail(self, exc: BaseException) -> None:
        """A write failed: one line, the file cut back to its last complete flush."""
        self._error = exc
        if self.stopped is None:
            self.stopped = f"write failed: {exc}"
        self._drain_dropped()
        self.writer.abandon()
        log.error("flight log %s: %s; recording stopped, the file keeps the %d records of its "
                  "last flush", self.path, exc, self.stats()["written_total"])

    def _drain_dropped(self) -> None:
        while self._queue:
            kind, index = self._queue.popleft()
            if kind in self._pools:
                self._pools[kind].release(index)
                self.dropped[kind] += 1
            elif kind == "message":
                self.dropped[index[0]] = self.dropped.get(index[0], 0) + 1

    def _write(self, kind: str, index: Any) -> None:
        if kind == "register":
            self.writer.add_json_channel(*index)
            return
        if kind == "register_foxglove":
            self.writer.add_foxglove_channel(*index)
            return
        if kind == "message":
            key, stamp_ns, sequence, build = index
            self.writer.write_json(key, build(stamp_ns + self.writer.epoch_offset_ns), stamp_ns,
                                   sequence)
            return
        pool = self._pools[kind]
        try:
            floats, ints = pool.floats[index], pool.ints[index]
            if kind == "frame":
                self.writer.write_frame(pool.layout.field(floats, "depth_m"), int(ints[1]),
                                        int(ints[2]))
                return
            layout = pool.layout
            mode_changed = False
            if kind == "tick":
                stamp = int(layout.column(ints, "tick_ns"))
                sequence = int(layout.column(ints, "seq"))
                self._last_tick = (sequence, stamp)
                mode = int(layout.column(ints, "safety_mode"))
                mode_changed, self._last_mode = mode != self._last_mode, mode
            else:
                stamp = int(layout.column(ints, "capture_ns"))
                sequence = int(layout.column(ints, "step"))
            self.writer.write_row(kind, floats, ints, stamp, sequence)
        finally:
            pool.release(index)
        if mode_changed:
            # The layer logged the transition before the tick's listeners ran: it is there now.
            self._write_new_transitions()

    def _write_new_transitions(self) -> None:
        if self.safety is None:
            return
        seq, stamp = self._last_tick
        for event in self.safety.events():
            key = (event.get("t_ns"), event.get("from"), event.get("to"), event.get("reason"),
                   event.get("detail"))
            if key not in self._events_written:
                self._events_written.add(key)
                self.writer.write_transition(event, seq, stamp)

    # -- end ------------------------------------------------------------------------------------

    def close(self, timeout_s: float = 30.0) -> None:
        """Write what is queued, the last transitions and the counts, and finish the file."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.error("recorder writer did not finish within %.0f s; %s is left without its "
                          "index (it reads up to its last flush)", timeout_s, self.path)
                return
        elif self.stopped is None:
            try:
                while self._queue:  # never started: write what was accepted
                    kind, index = self._queue.popleft()
                    self._write(kind, index)
            except OSError as exc:
                self._fail(exc)
        if self.stopped is not None:
            return  # closed (or cut back) when it stopped
        try:
            self._write_new_transitions()
            self.writer.add_metadata("krabby.recorder", self.stats())
            self.writer.close()
        except OSError as exc:
            self._fail(exc)
            return
        log.info("flight log written: %s (%s)", self.path, _describe_counts(self.stats()))

    def stats(self) -> dict[str, Any]:
        """Records written and dropped per kind, and the writer's error if it failed."""
        written = dict(self.writer.counts)  # records that reached the file
        return {"path": str(self.path), "written": written,
                "written_total": sum(v for k, v in written.items() if k != "transition"),
                "dropped": {k: v for k, v in self.dropped.items()
                            if k in self._pools or k not in _KINDS},
                "dropped_total": sum(self.dropped.values()),
                "stopped": self.stopped,
                "error": str(self._error) if self._error is not None else None}


def _describe_counts(stats: dict[str, Any]) -> str:
    written = ", ".join(f"{v} {k}" for k, v in stats["written"].items() if v)
    return f"{written or 'nothing'} written, {stats['dropped_total']} dropped"

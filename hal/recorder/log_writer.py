"""Writing a krabby flight log: an MCAP file of JSON messages with JSON-schema schemas, and
Foxglove's schemas (images) as protobuf through foxglove-sdk, the live view's encoders.

Channels (see ``hal/recorder/README.md`` for every field):

- ``/hal/tick`` (``krabby.HalTick``): one per control tick; MCAP sequence = tick seq.
- ``/policy/actor_step`` (``krabby.ActorStep``): one per actor step; sequence = step index.
- ``/policy/depth_step`` (``krabby.DepthStep``): one per depth step; sequence = step index.
- ``/policy/depth_input`` (``foxglove.RawImage``, 32FC1, protobuf through foxglove-sdk): the
  depth step's preprocessed 58x87 input; same sequence as its ``/policy/depth_step`` message.
- ``/hal/depth_frame`` (``foxglove.RawImage``, 32FC1, metres, protobuf through foxglove-sdk):
  every raw frame the HAL wrote (opt-in, big); sequence = frame seq.
- ``/safety/transition`` (``krabby.SafetyTransition``): one per safety transition; sequence =
  the tick at which the recorder saw it.

Metadata records: ``krabby.run`` (robot, joint order, command, rates, clock offset, what the log
covers), ``krabby.layouts`` (every record layout, so a reader needs nothing else) and, at a clean
close, ``krabby.recorder`` (messages written and dropped per kind).

Log times are wall-clock (Unix epoch) nanoseconds: the monotonic capture time plus an offset taken
once per run (``krabby.run`` → ``epoch_offset_ns``), so tools show real dates while intervals stay
monotonic.
"""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from mcap.well_known import MessageEncoding, SchemaEncoding
from mcap.writer import CompressionType, Writer

from hal.live import messages as fm
from hal.live.sdk import foxglove_sdk
from hal.recorder.schema import FORMAT_VERSION, RowLayout

__all__ = ["LogWriter", "CHANNELS", "epoch_offset_ns", "TRANSITION_SCHEMA"]

CHANNELS = {
    "tick": ("/hal/tick", "krabby.HalTick",
             "One control tick: hardware observation (hardware joint order), the command that "
             "answered it (null if none by the deadline), the command applied after the safety "
             "layer, the safety mode and stage timings."),
    "actor": ("/policy/actor_step", "krabby.ActorStep",
              "One actor step: the policy observation as built (policy order), the depth "
              "latent+yaw it used and the raw action; obs_seq joins it to /hal/tick seq."),
    "depth": ("/policy/depth_step", "krabby.DepthStep",
              "One depth step: masked proprio and GRU hidden state in, latent+yaw out; its "
              "preprocessed image is the /policy/depth_input message with the same sequence."),
}
IMAGE_TOPICS = {"depth": "/policy/depth_input", "frame": "/hal/depth_frame"}
TRANSITION_TOPIC = "/safety/transition"

TRANSITION_SCHEMA: dict[str, Any] = {
    "title": "krabby.SafetyTransition",
    "description": "A safety layer transition (hal.safety): from/to mode, reason code and detail.",
    "type": "object",
    "properties": {
        "seq": {"type": "integer", "description": "tick at which the recorder saw it"},
        "t_ns": {"type": "integer", "description": "safety layer clock (sensor clock) time"},
        "from": {"type": "string"}, "to": {"type": "string"},
        "reason": {"type": "string"}, "detail": {"type": "string"},
    },
}

_COMPRESSION = {"zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4,
                "none": CompressionType.NONE}


def epoch_offset_ns() -> int:
    """Unix-epoch minus monotonic time, now: added to monotonic stamps to get log times."""
    # The wall clock is read once, only to label the log with dates; intervals stay monotonic.
    return time.time_ns() - time.monotonic_ns()


class _WholeWriteFile:
    """An unbuffered file whose ``write`` writes all its bytes or raises.

    Unbuffered, so every MCAP record the writer emits (a whole chunk, a metadata record) reaches
    the file in one piece: a process killed between two writes leaves a file that ends on a
    record boundary, which the reader accepts as an unclosed log. A full disk raises ENOSPC
    instead of a silent short write.
    """

    def __init__(self, path: Path) -> None:
        self._file = open(path, "wb", buffering=0)  # noqa: SIM115 - closed by close()
        self.name = str(path)

    def write(self, data: bytes) -> int:
        view = memoryview(data).cast("B")
        while view:
            written = self._file.write(view)
            if not written:
                raise OSError(errno.ENOSPC, f"no space left writing {self.name}")
            view = view[written:]
        return len(data)

    def flush(self) -> None:
        pass  # nothing is buffered

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()

    @property
    def closed(self) -> bool:
        return self._file.closed


class LogWriter:
    """An open krabby log.

    Args:
        output: File path (created, parents too) or a binary stream.
        layouts: Record layouts by kind ("tick", "actor", "depth", optional "frame").
        run_info: JSON-serialisable description of the run (stored as ``krabby.run``).
        compression: "zstd", "lz4" or "none".
        chunk_size: Bytes per MCAP chunk (smaller chunks lose less when a process dies).
    """

    def __init__(self, output: str | Path | BinaryIO, layouts: dict[str, RowLayout],
                 run_info: dict[str, Any], compression: str = "zstd",
                 chunk_size: int = 1 << 20) -> None:
        if compression not in _COMPRESSION:
            raise ValueError(f"compression {compression!r}: use one of {sorted(_COMPRESSION)}")
        self._own_stream = not hasattr(output, "write")
        if self._own_stream:
            path = Path(output)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._stream: BinaryIO = _WholeWriteFile(path)  # type: ignore[assignment]
        else:
            self._stream = output  # type: ignore[assignment]
        self.layouts = dict(layouts)
        self.epoch_offset_ns = int(run_info.get("epoch_offset_ns", epoch_offset_ns()))
        self._writer = Writer(self._stream, chunk_size=chunk_size,
                              compression=_COMPRESSION[compression], enable_data_crcs=True)
        self._writer.start(profile="", library=f"krabby-recorder/{FORMAT_VERSION}")
        self._channels: dict[str, int] = {}
        for kind, (topic, name, description) in CHANNELS.items():
            if kind in self.layouts:
                schema = self.layouts[kind].json_schema(name, description)
                self._channels[kind] = self._register(topic, name, schema)
        self._foxglove_schemas: dict[str, int] = {}
        for kind, topic in IMAGE_TOPICS.items():
            if kind in self.layouts:
                self._channels[f"{kind}.image"] = self._writer.register_channel(
                    topic, "protobuf", self._foxglove_schema(foxglove_sdk().messages.RawImage))
        self._channels["transition"] = self._register(TRANSITION_TOPIC, "krabby.SafetyTransition",
                                                      TRANSITION_SCHEMA)
        info = dict(run_info, format_version=FORMAT_VERSION, epoch_offset_ns=self.epoch_offset_ns)
        self._writer.add_metadata("krabby.run", {"json": json.dumps(info, default=str)})
        self._writer.add_metadata("krabby.layouts", {kind: json.dumps(layout.to_json())
                                                     for kind, layout in self.layouts.items()})
        # Records count as written once a flush put them in the file; until then, pending.
        self.counts: dict[str, int] = {kind: 0 for kind in (*self.layouts, "transition")}
        self._pending: dict[str, int] = dict(self.counts)
        self._closed = False
        self.flushed_offset = self._tell()

    def _tell(self) -> int | None:
        try:
            return self._stream.tell()
        except (AttributeError, OSError, ValueError):
            return None

    def _commit_counts(self) -> None:
        for kind, n in self._pending.items():
            self.counts[kind] += n
            self._pending[kind] = 0
        self.flushed_offset = self._tell()

    def _foxglove_schema(self, message_type: Any) -> int:
        """The schema id of a foxglove-sdk message type (registered once): its protobuf
        ``FileDescriptorSet``, as the SDK gives it."""
        schema = message_type.get_schema()
        schema_id = self._foxglove_schemas.get(schema.name)
        if schema_id is None:
            schema_id = self._writer.register_schema(schema.name, schema.encoding,
                                                     bytes(schema.data))
            self._foxglove_schemas[schema.name] = schema_id
        return schema_id

    def _register(self, topic: str, name: str, schema: dict[str, Any]) -> int:
        schema_id = self._writer.register_schema(name, SchemaEncoding.JSONSchema,
                                                 json.dumps(schema).encode())
        return self._writer.register_channel(topic, MessageEncoding.JSON, schema_id)

    def write_row(self, kind: str, floats: np.ndarray, ints: np.ndarray, stamp_ns: int,
                  sequence: int) -> None:
        """One tick/actor/depth row (monotonic ``stamp_ns``); a depth row also writes its image."""
        layout = self.layouts[kind]
        log_time = stamp_ns + self.epoch_offset_ns
        sequence &= 0xFFFFFFFF
        self._writer.add_message(self._channels[kind], log_time, layout.encode(floats, ints),
                                 log_time, sequence)
        for name in layout.images:
            image = fm.raw_image_32f(log_time, name, layout.field(floats, name)).encode()
            self._writer.add_message(self._channels[f"{kind}.image"], log_time, image, log_time,
                                     sequence)
        self._pending[kind] += 1

    def write_frame(self, frame: np.ndarray, depth_seq: int, stamp_ns: int) -> None:
        """One raw depth frame (metres), sequence = its frame seq."""
        log_time = stamp_ns + self.epoch_offset_ns
        self._writer.add_message(self._channels["frame.image"], log_time,
                                 fm.raw_image_32f(log_time, "depth_camera", frame).encode(),
                                 log_time, depth_seq & 0xFFFFFFFF)
        self._pending["frame"] += 1

    def write_transition(self, event: dict[str, Any], seq: int, stamp_ns: int) -> None:
        """One safety transition (a ``SafetyLayer.events()`` entry) placed at tick ``seq``."""
        log_time = stamp_ns + self.epoch_offset_ns
        msg = {"seq": int(seq), "t_ns": int(event.get("t_ns", 0)), "from": str(event.get("from")),
               "to": str(event.get("to")), "reason": str(event.get("reason", "")),
               "detail": str(event.get("detail", ""))}
        self._writer.add_message(self._channels["transition"], log_time,
                                 json.dumps(msg, separators=(",", ":")).encode(), log_time,
                                 seq & 0xFFFFFFFF)
        self._pending["transition"] += 1

    def add_json_channel(self, key: str, topic: str, schema_name: str,
                         schema: dict[str, Any]) -> None:
        """Register a JSON channel of another producer (e.g. ``foxglove.FrameTransform``)."""
        if key in self._channels:
            raise ValueError(f"channel {key!r} is already registered")
        self._channels[key] = self._register(topic, schema_name, schema)
        self.counts[key] = 0

    def add_foxglove_channel(self, key: str, topic: str, message_type: Any) -> None:
        """Register a channel of a foxglove-sdk message type (``foxglove.messages.X``): its
        protobuf schema (a ``FileDescriptorSet``, as the SDK gives it) and protobuf encoding."""
        if key in self._channels:
            raise ValueError(f"channel {key!r} is already registered")
        self._channels[key] = self._writer.register_channel(topic, "protobuf",
                                                            self._foxglove_schema(message_type))
        self.counts[key] = 0

    def write_json(self, key: str, message: Any, stamp_ns: int, sequence: int) -> None:
        """One message on a channel from :meth:`add_json_channel` (a JSON object) or
        :meth:`add_foxglove_channel` (a foxglove-sdk message, encoded here), monotonic
        ``stamp_ns``."""
        log_time = stamp_ns + self.epoch_offset_ns
        data = (json.dumps(message, separators=(",", ":")).encode() if isinstance(message, dict)
                else message.encode())
        self._writer.add_message(self._channels[key], log_time, data, log_time,
                                 sequence & 0xFFFFFFFF)
        self.counts[key] += 1

    def add_metadata(self, name: str, values: dict[str, Any]) -> None:
        self._writer.add_metadata(name, {"json": json.dumps(values, default=str)})

    @property
    def pending(self) -> int:
        """Records accepted but not yet flushed to the file."""
        return sum(self._pending.values())

    def flush(self) -> None:
        """Close the open chunk and push it to the file (what a crash then cannot lose); the
        records in it count as written from now on."""
        self._writer.flush()
        self._commit_counts()

    def close(self) -> None:
        """Write the summary and footer and close the file (idempotent). If that fails (a full
        disk) the file is still closed and the error raised."""
        if self._closed:
            return
        self._closed = True
        try:
            self._writer.finish()
            self._stream.flush()
            self._commit_counts()
        finally:
            if self._own_stream:
                self._stream.close()

    def abandon(self) -> None:
        """After a failed write: close the file and cut it back to the last complete flush, so
        it ends on a record boundary (readable as an unclosed log). Idempotent."""
        self._closed = True
        offset = self.flushed_offset
        try:
            if self._own_stream:
                try:
                    self._stream.close()
                except OSError:
                    pass  # the buffered tail that failed to write is what we cut off anyway
                if offset is not None and getattr(self._stream, "name", None):
                    os.truncate(self._stream.name, offset)
            elif offset is not None:
                self._stream.truncate(offset)
        except (OSError, ValueError):
            pass

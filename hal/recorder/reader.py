"""Reading a krabby flight log back into tables, with errors that say where a file is damaged.

:func:`read_log` walks the MCAP file record by record (a streaming read: it needs no index, so a
log whose writer died still reads up to the damage), checks every chunk's CRC and the data section
CRC, decodes the JSON messages with the layouts stored in the log, and returns a
:class:`RecordedLog` of row tables sorted by tick seq / step index. Anything wrong — truncation,
flipped bytes, a file that is not a krabby log — raises :class:`LogFormatError` naming the byte
offset of the record where reading stopped; with ``allow_partial=True`` the messages before that
point are returned instead, with the error kept in :attr:`RecordedLog.damage`. A log whose writer
was killed between two records (its file ends on a record boundary, without the summary) is not
damaged: it reads in full, marked :attr:`RecordedLog.unclosed`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from mcap.exceptions import EndOfFile, McapError
from mcap.records import Channel, Chunk, DataEnd, Footer, Message, Metadata, Schema
from mcap.stream_reader import StreamReader, breakup_chunk

from hal.recorder.log_writer import CHANNELS, IMAGE_TOPICS, TRANSITION_TOPIC
from hal.recorder.schema import READABLE_FORMAT_VERSIONS, RowLayout, decode_raw_image

__all__ = ["LogFormatError", "RecordTable", "RecordedLog", "read_log"]



class LogFormatError(Exception):
    """A log that cannot be read (completely); the message names the file and byte offset."""

    def __init__(self, path: Path, offset: int, problem: str, hint: str = "") -> None:
        self.path, self.offset, self.problem = Path(path), int(offset), problem
        size = self.path.stat().st_size if self.path.is_file() else -1
        text = f"{self.path}: {problem} at byte offset {offset}"
        if size >= 0:
            text += f" (file size {size} bytes)"
        if hint:
            text += f"; {hint}"
        super().__init__(text)


@dataclass
class RecordTable:
    """Rows of one record kind, in recording order (``floats`` (N, F), ``ints`` (N, I))."""

    layout: RowLayout
    floats: np.ndarray
    ints: np.ndarray
    images: dict[str, np.ndarray] = field(default_factory=dict)  # image field -> (N, H, W)

    def __len__(self) -> int:
        return len(self.ints)

    def field(self, name: str) -> np.ndarray:
        """A float field over all rows, (N, *shape); image fields come from :attr:`images`."""
        if name in self.images:
            return self.images[name]
        return self.layout.field(self.floats, name)

    def column(self, name: str) -> np.ndarray:
        """An int field over all rows, (N,)."""
        return self.layout.column(self.ints, name)


@dataclass
class RecordedLog:
    """A decoded log. ``run`` is the ``krabby.run`` metadata; ``recorder`` the writer's final
    counts (None when the writer did not close the file)."""

    path: Path
    run: dict[str, Any]
    layouts: dict[str, RowLayout]
    ticks: RecordTable
    actor: RecordTable
    depth: RecordTable
    frames: list[tuple[int, int, np.ndarray]]  # (frame seq, log time ns, depth_m)
    transitions: list[dict[str, Any]]
    recorder: dict[str, Any] | None
    damage: LogFormatError | None = None
    # Other producers' JSON channels by topic (e.g. the simulator's /sim/tf): (sequence, log time
    # ns, message) in file order.
    extra: dict[str, list[tuple[int, int, dict[str, Any]]]] = field(default_factory=dict)
    unclosed: bool = False  # ends on a record boundary without its footer (writer killed)


_KIND_BY_TOPIC = {topic: kind for kind, (topic, _, _) in CHANNELS.items()}
_IMAGE_KIND_BY_TOPIC = {topic: kind for kind, topic in IMAGE_TOPICS.items()}


class _Collector:
    """Accumulates decoded messages while walking the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.channels: dict[int, Channel] = {}
        self.schemas: dict[int, Schema] = {}
        self._protobuf: Any = None
        self.metadata: dict[str, dict[str, str]] = {}
        self.messages: dict[str, list[tuple[int, int, dict[str, Any]]]] = {}
        self.images: dict[str, dict[int, dict[str, Any]]] = {}
        self.frames: list[tuple[int, int, dict[str, Any]]] = []
        self.transitions: list[dict[str, Any]] = []
        self.extra: dict[str, list[tuple[int, int, dict[str, Any]]]] = {}
        self.count = 0
        self.unclosed = False
        self.data_end = False

    def add(self, record: Any, offset: int, where: str) -> None:
        if isinstance(record, Channel):
            self.channels[record.id] = record
        elif isinstance(record, Schema):
            self.schemas[record.id] = record
        elif isinstance(record, Metadata):
            self.metadata[record.name] = dict(record.metadata)
        elif isinstance(record, Message):
            channel = self.channels.get(record.channel_id)
            if channel is None:
                raise LogFormatError(self.path, offset, f"{where}: message on channel "
                                     f"{record.channel_id}, which was never declared")
            try:
                msg = (self._decode_protobuf(channel, record.data)
                       if channel.message_encoding == "protobuf" else json.loads(record.data))
            except (ValueError, UnicodeDecodeError) as exc:
                raise LogFormatError(self.path, offset, f"{where}: message on {channel.topic} "
                                     f"does not decode as {channel.message_encoding} ({exc})"
                                     ) from None
            topic = channel.topic
            if topic in _KIND_BY_TOPIC:
                self.messages.setdefault(_KIND_BY_TOPIC[topic], []).append(
                    (record.sequence, offset, msg))
            elif topic == IMAGE_TOPICS["frame"]:
                self.frames.append((record.sequence, record.log_time, msg))
            elif topic in _IMAGE_KIND_BY_TOPIC:
                self.images.setdefault(_IMAGE_KIND_BY_TOPIC[topic], {})[record.sequence] = msg
            elif topic == TRANSITION_TOPIC:
                self.transitions.append(msg)
            else:
                self.extra.setdefault(topic, []).append((record.sequence, record.log_time, msg))
            self.count += 1

    def _decode_protobuf(self, channel: Channel, data: bytes) -> dict[str, Any]:
        """A Foxglove protobuf message (foxglove-sdk's encoding) as its JSON-form dict."""
        schema = self.schemas.get(channel.schema_id)
        if schema is None:
            raise ValueError(f"schema {channel.schema_id} was never declared")
        if self._protobuf is None:
            from hal.recorder.protobuf_decode import ProtobufDecoder

            self._protobuf = ProtobufDecoder()
        return self._protobuf.decode(schema.id, schema.name, schema.data, data)


def _walk(path: Path, collector: _Collector) -> None:
    with open(path, "rb") as stream:
        reader = StreamReader(stream, emit_chunks=True, validate_crcs=True,
                              record_size_limit=1 << 31)
        records = iter(reader.records)
        while True:
            offset = stream.tell()
            try:
                record = next(records)
            except StopIteration:
                return
            except EndOfFile:
                # A writer killed between two records (each reaches the file whole, see
                # LogWriter) leaves every record it wrote intact, only the summary missing:
                # an unclosed log, complete up to its last flush.
                if not collector.data_end and offset > 0 and offset == path.stat().st_size:
                    collector.unclosed = True
                    return
                raise _damage_error(path, stream, offset, EndOfFile()) from None
            except Exception as exc:  # noqa: BLE001 - any failure inside the reader is damage
                raise _damage_error(path, stream, offset, exc) from None
            if isinstance(record, Chunk):
                try:
                    inner = breakup_chunk(record, validate_crc=True)
                except Exception as exc:  # noqa: BLE001 - decompressors raise their own types
                    raise LogFormatError(path, offset, f"chunk does not decode ({type(exc).__name__}"
                                         f": {exc}): the file is corrupted", "krabby-replay "
                                         "--partial uses what comes before") from None
                for index, item in enumerate(inner):
                    collector.add(item, offset, f"record {index} of the chunk")
            elif isinstance(record, (DataEnd, Footer)):
                collector.data_end = True
                continue
            else:
                collector.add(record, offset, "record")


def _damage_error(path: Path, stream: Any, offset: int, exc: Exception) -> LogFormatError:
    """The error for a record that could not be read at ``offset``."""
    size = path.stat().st_size
    hint = "krabby-replay --partial uses what comes before"
    if offset == 0 and (isinstance(exc, EndOfFile) or size < 8):
        return LogFormatError(path, 0, "the file is empty or shorter than the MCAP magic")
    if isinstance(exc, McapError) and "magic" in str(exc) and offset == 0:
        return LogFormatError(path, 0, "not an MCAP file (bad magic bytes)")
    if isinstance(exc, EndOfFile) or stream.tell() >= size:
        if offset >= size:
            problem = ("the log ends without its MCAP footer (truncated: the recording process "
                       "did not close it)")
        else:
            problem = ("the record that starts here runs past the end of the file (truncated: "
                       "the recording process did not close it; or a corrupted length)")
        return LogFormatError(path, offset, problem, hint)
    what = "checksum mismatch" if "crc" in str(exc).lower() else "unreadable record"
    return LogFormatError(path, offset, f"{what} ({type(exc).__name__}: {exc}): the file is "
                          "corrupted", hint)


def _layouts(collector: _Collector, path: Path) -> dict[str, RowLayout]:
    meta = collector.metadata.get("krabby.layouts")
    if meta is None:
        raise LogFormatError(path, 0, "no 'krabby.layouts' metadata: not a krabby flight log "
                             "(written by hal.recorder)")
    try:
        return {kind: RowLayout.from_json(json.loads(text)) for kind, text in meta.items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise LogFormatError(path, 0, f"the 'krabby.layouts' metadata is damaged ({exc})") from None


def _table(layout: RowLayout, messages: list[tuple[int, int, dict[str, Any]]],
           images: dict[int, dict[str, Any]], path: Path) -> RecordTable:
    messages = sorted(messages, key=lambda m: m[0])
    if layout.images and messages:
        # A depth step without its image (the file ended between the two) cannot be used.
        messages = [m for m in messages if m[0] in images]
    floats, ints = layout.allocate(len(messages))
    image_arrays = {}
    for name in layout.images:
        shape = layout.float_fields[name].shape
        image_arrays[name] = np.zeros((len(messages), *shape), np.float32)
    for row, (sequence, offset, msg) in enumerate(messages):
        try:
            layout.from_message(msg, floats[row], ints[row])
            for name in layout.images:
                image_arrays[name][row] = decode_raw_image(images[sequence])
        except Exception as exc:  # noqa: BLE001 - a damaged message can fail anywhere in decoding
            raise LogFormatError(path, offset, f"{layout.kind} message {sequence} does not fit "
                                 f"its layout ({type(exc).__name__}: {exc})") from None
    return RecordTable(layout, floats, ints, image_arrays)


def read_log(path: str | Path, allow_partial: bool = False) -> RecordedLog:
    """Read a krabby flight log (``--record`` output or a flight recorder dump).

    Args:
        path: The ``.mcap`` file.
        allow_partial: Return what precedes damage (truncation, corruption) instead of raising;
            the error is kept in :attr:`RecordedLog.damage`.

    Raises:
        LogFormatError: the file is missing, damaged (with the byte offset) or not a krabby log.
    """
    path = Path(path)
    if not path.is_file():
        raise LogFormatError(path, 0, "no such file")
    collector = _Collector(path)
    damage = None
    try:
        _walk(path, collector)
    except LogFormatError as exc:
        if not allow_partial:
            raise
        damage = exc
    layouts = _layouts(collector, path)
    try:
        run = json.loads(collector.metadata.get("krabby.run", {}).get("json", "{}"))
    except ValueError as exc:
        raise LogFormatError(path, 0, f"the 'krabby.run' metadata is damaged ({exc})") from None
    version = run.get("format_version")
    if version not in READABLE_FORMAT_VERSIONS:
        raise LogFormatError(path, 0, f"log format version {version}; this krabby reads "
                             f"versions {', '.join(map(str, READABLE_FORMAT_VERSIONS))}")
    recorder = None
    if "krabby.recorder" in collector.metadata:
        recorder = json.loads(collector.metadata["krabby.recorder"].get("json", "{}"))
    tables = {}
    for kind in ("tick", "actor", "depth"):
        if kind not in layouts:
            raise LogFormatError(path, 0, f"the log declares no {kind!r} layout")
        tables[kind] = _table(layouts[kind], collector.messages.get(kind, []),
                              collector.images.get(kind, {}), path)
    frames = []
    for sequence, log_time, msg in sorted(collector.frames, key=lambda f: f[0]):
        try:
            frames.append((sequence, log_time, decode_raw_image(msg)))
        except Exception as exc:  # noqa: BLE001 - a damaged message can fail anywhere in decoding
            raise LogFormatError(path, 0, f"depth frame {sequence} does not decode ({exc})") from None
    transitions = sorted(collector.transitions, key=lambda t: t.get("seq", 0))
    return RecordedLog(path=path, run=run, layouts=layouts, ticks=tables["tick"],
                       actor=tables["actor"], depth=tables["depth"], frames=frames,
                       transitions=transitions, recorder=recorder, damage=damage,
                       extra=collector.extra, unclosed=collector.unclosed)

"""Record layouts and their self-describing JSON encoding (the log format's single source of truth).

A record kind (a HAL tick, an actor step, a depth step, a raw depth frame) is a :class:`RowLayout`:
named float fields (one dtype per kind, arrays of any shape) and named int64 fields. Recorders copy
each record into one preallocated row (a float row and an int row), so capturing allocates nothing;
the writer turns a row into a JSON message (nested objects from dotted names) whose JSON schema is
generated from the same layout, and the reader fills rows back from messages.

A float field is written one of three ways:

- as a JSON array (or number) — what tools plot; the default;
- ``binary``: a base64 string of the little-endian values (the layout's dtype), for big vectors
  nobody plots element by element (the 753 observation, the GRU state): exact and ~50x cheaper to
  encode than JSON numbers. ``views`` add a JSON array of a slice of such a field for plotting
  (the observation's proprio part);
- ``images``: on their own ``foxglove.RawImage`` (32FC1) channel, not in the JSON message.

Floats round-trip exactly: a float32 or float64 value becomes a Python float, whose shortest repr
parses back to the same double. JSON has no NaN or infinity, so a non-finite element is written as
``null`` and listed under ``"nonfinite": {"<field>": [[index, "nan" | "inf" | "-inf"], ...]}``.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hal.safety import events
from hal.safety.events import Mode

__all__ = ["RowLayout", "SAFETY_MODES", "MODE_CODES", "mode_code", "mode_name", "tick_layout",
           "actor_layout", "depth_layout", "frame_layout", "decode_raw_image", "FORMAT_VERSION",
           "READABLE_FORMAT_VERSIONS"]

FORMAT_VERSION = 2
"""Bumped whenever a layout or channel changes incompatibly (stored in the run metadata).
2: the Foxglove-schema channels (images, /sim/tf, /sim/scene) are protobuf through foxglove-sdk."""
READABLE_FORMAT_VERSIONS = (1, 2)
"""What the reader reads: version 1 differs only in those channels being JSON."""

SAFETY_MODES: tuple[Mode, ...] = tuple(sorted(Mode, key=events.mode_code))
"""Safety layer modes by the code logs store: the wire's codes (:func:`hal.safety.events.mode_code`,
append-only); -1 is an unknown mode."""
MODE_CODES: dict[Mode, int] = {mode: events.mode_code(mode) for mode in Mode}


def mode_code(mode: Mode | str) -> int:
    """The int stored for a safety mode (or its name); -1 for one this format does not know."""
    return MODE_CODES.get(mode, -1)


def mode_name(code: int) -> str:
    return SAFETY_MODES[code].value if 0 <= code < len(SAFETY_MODES) else "unknown"


@dataclass(frozen=True)
class _FloatField:
    name: str
    shape: tuple[int, ...]
    start: int
    stop: int
    encoding: str  # "json", "binary" or "image"

    @property
    def image(self) -> bool:
        return self.encoding == "image"


class RowLayout:
    """Named float fields (one dtype) and int64 fields of one record kind.

    Args:
        kind: Record kind ("tick", "actor", "depth", "frame").
        float_dtype: dtype of the float row ("float32" or "float64").
        floats: (dotted name, shape) per float field; shape () is one number.
        ints: dotted names of the int64 fields.
        images: float fields written as ``foxglove.RawImage`` (32FC1) instead of JSON arrays.
        optional_groups: group prefix -> int field; the group is ``null`` in JSON when that int is 0.
        binary: float fields written as base64 little-endian bytes.
        views: extra JSON arrays for plotting: name -> (binary field, start, stop) of its flat values.
    """

    def __init__(self, kind: str, float_dtype: str, floats: list[tuple[str, tuple[int, ...]]],
                 ints: list[str], images: tuple[str, ...] = (),
                 optional_groups: dict[str, str] | None = None, binary: tuple[str, ...] = (),
                 views: dict[str, tuple[str, int, int]] | None = None) -> None:
        self.kind = kind
        self.float_dtype = np.dtype(float_dtype)
        if self.float_dtype not in (np.float32, np.float64):
            raise ValueError(f"float_dtype {float_dtype!r}: use 'float32' or 'float64'")
        self.float_fields: dict[str, _FloatField] = {}
        start = 0
        for name, shape in floats:
            shape = tuple(int(d) for d in shape)
            size = int(np.prod(shape)) if shape else 1
            encoding = "image" if name in images else "binary" if name in binary else "json"
            self.float_fields[name] = _FloatField(name, shape, start, start + size, encoding)
            start += size
        self.float_size = start
        self.int_fields = {name: i for i, name in enumerate(ints)}
        self.int_size = len(ints)
        self.images = tuple(images)
        self.binary = tuple(binary)
        self.views = {name: (src, int(a), int(b)) for name, (src, a, b) in (views or {}).items()}
        self.optional_groups = dict(optional_groups or {})
        self._le_dtype = self.float_dtype.newbyteorder("<")
        self._binary_fields = [f for f in self.float_fields.values() if f.encoding == "binary"]
        self._json_fields = [f for f in self.float_fields.values() if f.encoding == "json"]
        for name, (src, a, b) in self.views.items():
            base = self.float_fields[src].start if src in self.float_fields else 0
            self._json_fields.append(_FloatField(name, (b - a,), base + a, base + b, "json"))
        unknown = [n for n in (*images, *binary) if n not in self.float_fields]
        unknown += [src for src, _, _ in self.views.values() if src not in binary]
        unknown += [g for g in self.optional_groups.values() if g not in self.int_fields]
        if unknown:
            raise ValueError(f"layout {kind!r}: unknown fields {unknown}")

    # -- rows -----------------------------------------------------------------------------------

    def allocate(self, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """Zeroed (rows, float_size) and (rows, int_size) arrays."""
        return (np.zeros((rows, self.float_size), self.float_dtype),
                np.zeros((rows, self.int_size), np.int64))

    def field(self, floats: np.ndarray, name: str) -> np.ndarray:
        """View of one float field in a row (shape) or a table (N, *shape)."""
        f = self.float_fields[name]
        part = floats[..., f.start:f.stop]
        return part.reshape(floats.shape[:-1] + f.shape)

    def size(self, name: str) -> int:
        """Number of values of a float field."""
        f = self.float_fields[name]
        return f.stop - f.start

    def column(self, ints: np.ndarray, name: str) -> np.ndarray:
        """One int field of a row (scalar) or a table (N,)."""
        return ints[..., self.int_fields[name]]

    # -- description ----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The layout itself, stored in the log so a reader needs nothing else to decode it."""
        return {"kind": self.kind, "float_dtype": self.float_dtype.name,
                "floats": [[f.name, list(f.shape)] for f in self.float_fields.values()],
                "ints": list(self.int_fields), "images": list(self.images),
                "binary": list(self.binary),
                "views": {k: list(v) for k, v in self.views.items()},
                "optional_groups": self.optional_groups}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RowLayout":
        return cls(data["kind"], data["float_dtype"],
                   [(name, tuple(shape)) for name, shape in data["floats"]], list(data["ints"]),
                   tuple(data.get("images", ())), dict(data.get("optional_groups", {})),
                   tuple(data.get("binary", ())),
                   {k: tuple(v) for k, v in data.get("views", {}).items()})

    def json_schema(self, title: str, description: str) -> dict[str, Any]:
        """JSON schema (draft 2020-12) of this kind's messages."""
        root: dict[str, Any] = {"title": title, "description": description, "type": "object",
                                "properties": {}}

        def place(name: str, spec: dict[str, Any]) -> None:
            node = root
            parts = name.split(".")
            for part in parts[:-1]:
                props = node["properties"]
                if part not in props:
                    group = {"type": "object", "properties": {}}
                    if part in self.optional_groups:
                        group["type"] = ["object", "null"]
                    props[part] = group
                node = props[part]
            node["properties"][parts[-1]] = spec

        for name in self.int_fields:
            place(name, {"type": "integer"})
        number = {"type": ["number", "null"]}
        for f in self.float_fields.values():
            if f.image:
                continue
            if f.encoding == "binary":
                spec: dict[str, Any] = {
                    "type": "string", "contentEncoding": "base64",
                    "description": f"{self.float_dtype.name} little-endian, row-major, shape "
                                   f"{list(f.shape)}"}
            else:
                spec = dict(number) if not f.shape else {"type": "array", "items": number}
                if len(f.shape) > 1:
                    spec["description"] = f"row-major, shape {list(f.shape)}"
            place(f.name, spec)
        for name, (src, a, b) in self.views.items():
            place(name, {"type": "array", "items": number,
                         "description": f"{src}[{a}:{b}] as numbers, for plotting"})
        root["properties"]["nonfinite"] = {
            "type": "object", "description": "float fields with non-finite elements (written as "
            "null): field -> [[flat index, 'nan' | 'inf' | '-inf'], ...]",
            "additionalProperties": {"type": "array"}}
        return root

    # -- JSON messages --------------------------------------------------------------------------

    def to_message(self, floats: np.ndarray, ints: np.ndarray) -> dict[str, Any]:
        """One row as a nested dict (image fields left out)."""
        int_values = ints.tolist()
        msg: dict[str, Any] = {}
        for name, i in self.int_fields.items():
            _put(msg, name, int_values[i])
        nonfinite: dict[str, list] = {}
        for f in self._binary_fields:
            data = floats[f.start:f.stop].astype(self._le_dtype, copy=False).tobytes()
            _put(msg, f.name, base64.b64encode(data).decode("ascii"))
        all_finite = bool(np.isfinite(floats).all())
        for f in self._json_fields:
            part = floats[f.start:f.stop].tolist()
            if not all_finite:
                bad = [(i, v) for i, v in enumerate(part) if not math.isfinite(v)]
                if bad:
                    nonfinite[f.name] = [[i, _nonfinite_name(v)] for i, v in bad]
                    for i, _ in bad:
                        part[i] = None
            _put(msg, f.name, part if f.shape else part[0])
        for group, flag in self.optional_groups.items():
            if int_values[self.int_fields[flag]] == 0:
                msg[group] = None
        if nonfinite:
            msg["nonfinite"] = nonfinite
        return msg

    def encode(self, floats: np.ndarray, ints: np.ndarray) -> bytes:
        return json.dumps(self.to_message(floats, ints), separators=(",", ":"),
                          allow_nan=False).encode()

    def from_message(self, msg: dict[str, Any], floats: np.ndarray, ints: np.ndarray) -> None:
        """Fill a row from a decoded message (image fields untouched; a null group -> NaN/0)."""
        for name, i in self.int_fields.items():
            value = _get(msg, name)
            ints[i] = 0 if value is None else int(value)
        nonfinite = msg.get("nonfinite") or {}
        for f in self.float_fields.values():
            if f.image:
                continue
            value = _get(msg, f.name)
            target = floats[f.start:f.stop]
            if value is None:
                target[...] = np.nan
                continue
            if f.encoding == "binary":
                data = base64.b64decode(value, validate=True)
                if len(data) != target.nbytes:
                    raise ValueError(f"field {f.name!r} has {len(data)} bytes, the layout says "
                                     f"{target.nbytes}")
                target[...] = np.frombuffer(data, dtype=self._le_dtype)
                continue
            items = value if f.shape else [value]
            if len(items) != f.stop - f.start:
                raise ValueError(f"field {f.name!r} has {len(items)} values, the layout says "
                                 f"{f.stop - f.start}")
            for index, kind in nonfinite.get(f.name, ()):
                items[index] = _NONFINITE_VALUES[kind]
            target[...] = np.asarray(items, dtype=np.float64)


_NONFINITE_VALUES = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _nonfinite_name(value: float) -> str:
    if math.isnan(value):
        return "nan"
    return "inf" if value > 0 else "-inf"


def _put(msg: dict[str, Any], dotted: str, value: Any) -> None:
    node = msg
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _get(msg: dict[str, Any], dotted: str) -> Any:
    node: Any = msg
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


# -- the record kinds ---------------------------------------------------------------------------

def tick_layout(n_joints: int, n_feet: int) -> RowLayout:
    """One HAL tick: the hardware observation, the command that answered it, what was applied."""
    n = (n_joints,)
    floats = [("joints.position_rad", n), ("joints.velocity_rad_s", n), ("joints.torque_nm", n),
              ("imu.quaternion_wxyz", (4,)), ("imu.angular_velocity_rad_s", (3,)),
              ("imu.linear_acceleration_m_s2", (3,)), ("contacts.force_n", (n_feet,)),
              ("command.target_rad", n), ("command.kp", n), ("command.kd", n),
              ("command.raw_action", n),
              ("applied.target_rad", n), ("applied.kp", n), ("applied.kd", n)]
    ints = ["seq", "tick_ns", "publish_ns", "capture_ns", "safety_mode", "depth_seq", "new_depth",
            "obs_to_command_ns", "joints.timestamp_ns", "imu.timestamp_ns", "contacts.present",
            "contacts.timestamp_ns", "command.present", "command.obs_seq", "command.receive_ns",
            "command.client_receive_ns", "command.send_ns", "command.actor_ns",
            "command.depth_step_ns", "command.depth_seq_used", "command.non_finite",
            "applied.mode"]
    return RowLayout("tick", "float64", floats, ints,
                     optional_groups={"contacts": "contacts.present",
                                      "command": "command.present"})


def actor_layout(obs_dim: int, latent_yaw_dim: int, n_joints: int, proprio_dim: int) -> RowLayout:
    """One actor step: the policy observation as built, the latent+yaw used, the raw action."""
    floats = [("observation", (obs_dim,)), ("depth_latent", (latent_yaw_dim,)),
              ("raw_action", (n_joints,))]
    ints = ["step", "obs_seq", "depth_seq_used", "has_latent", "capture_ns",
            "timings.obs_build_ns", "timings.engine_ns", "timings.post_process_ns",
            "timings.send_ns", "engaged", "episode"]
    return RowLayout("actor", "float32", floats, ints, binary=("observation",),
                     views={"proprio": ("observation", 0, proprio_dim)})


def depth_layout(depth_shape: tuple[int, int], proprio_dim: int, latent_yaw_dim: int,
                 hidden_size: int) -> RowLayout:
    """One depth step: the preprocessed frame and proprio it ran on, its hidden state in, its
    latent+yaw out."""
    floats = [("depth", tuple(depth_shape)), ("proprio", (proprio_dim,)),
              ("latent_yaw", (latent_yaw_dim,)), ("hidden_in", (hidden_size,))]
    ints = ["step", "frame_seq", "frame_timestamp_ns", "engine_ns", "capture_ns", "episode"]
    return RowLayout("depth", "float32", floats, ints, images=("depth",), binary=("hidden_in",))


def frame_layout(frame_shape: tuple[int, int]) -> RowLayout:
    """One raw depth frame (metres) as the HAL wrote it into the observation."""
    return RowLayout("frame", "float32", [("depth_m", tuple(frame_shape))],
                     ["tick_seq", "depth_seq", "capture_ns"], images=("depth_m",))


# -- foxglove.RawImage ---------------------------------------------------------------------------
# Written through foxglove-sdk (hal.live.messages.raw_image_32f, protobuf); read back as the dict
# of its JSON form (the reader decodes protobuf with the log's schema), as logs written before
# that carry it as JSON.

def decode_raw_image(msg: dict[str, Any]) -> np.ndarray:
    """The (height, width) float32 array of a 32FC1 ``foxglove.RawImage`` message (the dict of
    its JSON form: ``data`` base64)."""
    if msg.get("encoding") != "32FC1":
        raise ValueError(f"image encoding {msg.get('encoding')!r}; this log format writes 32FC1")
    height, width = int(msg["height"]), int(msg["width"])
    data = base64.b64decode(msg["data"], validate=True)
    if len(data) != 4 * height * width:
        raise ValueError(f"image has {len(data)} bytes, expected {4 * height * width} for "
                         f"{height}x{width} 32FC1")
    return np.frombuffer(data, dtype="<f4").reshape(height, width).astype(np.float32)

"""The log format: rows survive JSON encoding exactly; messages match their JSON schemas; images
are Foxglove RawImage 32FC1; the snapshot of an overwriting ring is consistent."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from compute.parkour.layout import ObservationLayout
from hal.recorder.buffers import RowPool, RowRing
from hal.recorder.capture import layouts_for
from hal.recorder.schema import RowLayout, decode_raw_image


def _random_row(layout: RowLayout, rng: np.random.Generator):
    floats, ints = layout.allocate(1)
    floats[0] = rng.normal(size=layout.float_size) * 10.0 ** rng.integers(-8, 8, layout.float_size)
    ints[0] = rng.integers(-2**62, 2**62, layout.int_size)
    return floats[0], ints[0]


def _check_schema(schema: dict, value) -> None:
    """A small JSON-schema check for the keywords the layouts use (type, properties,
    additionalProperties, items)."""
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    python = {"object": dict, "array": list, "string": str, "integer": int, "null": type(None),
              "number": (int, float)}
    assert any(isinstance(value, python[k]) and not (k == "integer" and isinstance(value, bool))
               for k in kinds), (schema, value)
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key, item in value.items():
            spec = props.get(key, schema.get("additionalProperties"))
            assert spec is not None, f"{key!r} not in the schema"
            _check_schema(spec, item)
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            _check_schema(schema["items"], item)


@pytest.mark.parametrize("kind", ["tick", "actor", "depth"])
def test_rows_round_trip_exactly_and_fit_the_schema(go2, kind):
    layout = layouts_for(go2).by_kind()[kind]
    rng = np.random.default_rng(7)
    floats, ints = _random_row(layout, rng)
    floats[3], floats[5], floats[-1] = np.nan, np.inf, -np.inf
    if "command.present" in layout.int_fields:
        ints[layout.int_fields["command.present"]] = 1
        ints[layout.int_fields["contacts.present"]] = 1
    text = layout.encode(floats, ints)
    msg = json.loads(text)  # strict JSON: no NaN/Infinity tokens
    assert b"NaN" not in text and b"Infinity" not in text
    _check_schema(layout.json_schema("t", "d"), msg)
    back_f, back_i = layout.allocate(1)
    layout.from_message(json.loads(text), back_f[0], back_i[0])
    images = [f for f in layout.float_fields.values() if f.image]
    keep = np.ones(layout.float_size, bool)
    for f in images:
        keep[f.start:f.stop] = False
    assert back_f[0][keep].tobytes() == floats[keep].tobytes()  # bit-exact, NaN and inf included
    np.testing.assert_array_equal(back_i[0], ints)
    # Independently of the decoder: JSON numbers and base64 fields hold the row's values.
    if kind == "tick":
        f = layout.float_fields["joints.velocity_rad_s"]
        assert msg["joints"]["velocity_rad_s"] == [float(v) if np.isfinite(v) else None
                                                   for v in floats[f.start:f.stop]]
    if kind == "actor":
        f = layout.float_fields["observation"]
        raw = np.frombuffer(base64.b64decode(msg["observation"]), "<f4")
        assert raw.tobytes() == floats[f.start:f.stop].astype("<f4").tobytes()
        proprio = floats[f.start:f.start + ObservationLayout.from_robot(go2).proprio_dim]
        assert msg["proprio"] == [float(v) if np.isfinite(v) else None for v in proprio]
    # The layout itself round-trips through the log's metadata.
    assert RowLayout.from_json(json.loads(json.dumps(layout.to_json()))).to_json() == layout.to_json()


def test_absent_command_and_contacts_are_null(go2):
    layout = layouts_for(go2).tick
    floats, ints = layout.allocate(1)
    msg = json.loads(layout.encode(floats[0], ints[0]))
    assert msg["command"] is None and msg["contacts"] is None
    assert len(msg["joints"]["position_rad"]) == 12 and msg["applied"]["kp"] == [0.0] * 12


def test_raw_image_is_foxglove_32fc1_through_the_sdk():
    """The log's images: foxglove-sdk's RawImage (protobuf, the SDK's schema), read back through
    the reader's decoder to the JSON-form dict and the exact float32 bytes."""
    pytest.importorskip("foxglove")
    from hal.live.messages import raw_image_32f
    from hal.recorder.protobuf_decode import ProtobufDecoder

    image = np.arange(58 * 87, dtype=np.float32).reshape(58, 87) / 7.0
    image[0, 0] = np.nan
    message = raw_image_32f(1_700_000_000_123_456_789, "depth", image)
    schema = type(message).get_schema()
    assert (schema.name, schema.encoding) == ("foxglove.RawImage", "protobuf")
    msg = ProtobufDecoder().decode(1, schema.name, schema.data, message.encode())
    assert msg["encoding"] == "32FC1" and (msg["width"], msg["height"], msg["step"]) == (87, 58, 348)
    assert msg["frame_id"] == "depth"
    assert msg["timestamp"] == "2023-11-14T22:13:20.123456789Z"  # 1 700 000 000 s after 1970
    data = base64.b64decode(msg["data"])
    assert data == image.astype("<f4").tobytes()
    assert decode_raw_image(msg).tobytes() == image.tobytes()


def test_ring_snapshot_is_oldest_first_and_wraps(go2):
    layout = layouts_for(go2).tick
    ring = RowRing(layout, 5)
    for k in range(13):
        i = ring.begin()
        ring.ints[i, 0] = k
        ring.floats[i, 0] = k * 0.5
        ring.commit()
    snap = ring.snapshot()
    # Record 8 sits where the next write goes: a concurrent writer may be rewriting it.
    assert snap.ints[:, 0].tolist() == [9, 10, 11, 12]
    assert snap.floats[:, 0].tolist() == [4.5, 5.0, 5.5, 6.0]


def test_pool_gives_rows_back():
    layout = RowLayout("x", "float32", [("a", (2,))], ["n"])
    pool = RowPool(layout, 2)
    a, b = pool.acquire(), pool.acquire()
    assert {a, b} == {0, 1} and pool.acquire() is None
    pool.release(a)
    assert pool.acquire() == a


def test_every_safety_mode_has_a_stable_code():
    from hal.recorder.schema import SAFETY_MODES, mode_code, mode_name
    from hal.safety.events import Mode

    # A mode the format cannot store would be logged as -1 ("unknown") and lost from replays.
    assert sorted(SAFETY_MODES) == sorted(Mode) and len(set(SAFETY_MODES)) == len(SAFETY_MODES)
    # The codes are the format: logs already written decode with these (append, never reorder).
    assert [mode_code(m) for m in (Mode.IDLE, Mode.POLICY, Mode.DAMPING, Mode.ESTOP)] == [0, 3, 5, 6]
    assert all(mode_name(mode_code(m)) == m.value for m in Mode)
    assert mode_code("no-such-mode") == -1 and mode_name(-1) == "unknown"

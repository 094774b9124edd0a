"""Foxglove's published JSON schemas for the messages the simulator logs, transcribed from
foxglove-sdk ``schemas/jsonschema/FrameTransform.json`` and ``SceneUpdate.json`` (MIT): every
property name, type, bound and ``required`` list of the objects involved; the descriptions and
the primitives the simulator does not use (arrows, lines, triangles, texts, models, deletion
bodies, lineage) are left as untyped arrays/objects. Kept apart from ``hal.sim.foxglove_scene`` so
the check does not read the schema the code itself wrote."""

from __future__ import annotations

TIME = {"type": "object", "title": "time",
        "properties": {"sec": {"type": "integer", "minimum": 0},
                       "nsec": {"type": "integer", "minimum": 0, "maximum": 999999999}}}
DURATION = {"type": "object", "title": "duration",
            "properties": {"sec": {"type": "integer"},
                           "nsec": {"type": "integer", "minimum": 0, "maximum": 999999999}}}
VECTOR3 = {"title": "foxglove.Vector3", "type": "object",
           "properties": {"x": {"type": "number"}, "y": {"type": "number"},
                          "z": {"type": "number"}},
           "required": ["x", "y", "z"]}
QUATERNION = {"title": "foxglove.Quaternion", "type": "object",
              "properties": {"x": {"type": "number"}, "y": {"type": "number"},
                             "z": {"type": "number"}, "w": {"type": "number"}},
              "required": ["x", "y", "z", "w"]}
POSE = {"title": "foxglove.Pose", "type": "object",
        "properties": {"position": VECTOR3, "orientation": QUATERNION},
        "required": ["position", "orientation"]}
COLOR = {"title": "foxglove.Color", "type": "object",
         "properties": {"r": {"type": "number"}, "g": {"type": "number"},
                        "b": {"type": "number"}, "a": {"type": "number"}},
         "required": ["r", "g", "b", "a"]}
CUBE = {"title": "foxglove.CubePrimitive", "type": "object",
        "properties": {"pose": POSE, "size": VECTOR3, "color": COLOR},
        "required": ["pose", "size", "color"]}
SPHERE = {"title": "foxglove.SpherePrimitive", "type": "object",
          "properties": {"pose": POSE, "size": VECTOR3, "color": COLOR},
          "required": ["pose", "size", "color"]}
CYLINDER = {"title": "foxglove.CylinderPrimitive", "type": "object",
            "properties": {"pose": POSE, "size": VECTOR3, "bottom_scale": {"type": "number"},
                           "top_scale": {"type": "number"}, "color": COLOR},
            "required": ["pose", "size", "bottom_scale", "top_scale", "color"]}
KEY_VALUE = {"title": "foxglove.KeyValuePair", "type": "object",
             "properties": {"key": {"type": "string"}, "value": {"type": "string"}},
             "required": ["key", "value"]}
SCENE_ENTITY = {
    "title": "foxglove.SceneEntity", "type": "object",
    "properties": {
        "timestamp": TIME, "frame_id": {"type": "string"}, "id": {"type": "string"},
        "lifetime": DURATION, "frame_locked": {"type": "boolean"},
        "metadata": {"type": "array", "items": KEY_VALUE},
        "arrows": {"type": "array"}, "cubes": {"type": "array", "items": CUBE},
        "spheres": {"type": "array", "items": SPHERE},
        "cylinders": {"type": "array", "items": CYLINDER},
        "lines": {"type": "array"}, "triangles": {"type": "array"}, "texts": {"type": "array"},
        "models": {"type": "array"}, "message_id": {"type": "string"},
        "lineage": {"type": "object"}},
    "required": ["timestamp", "frame_id", "id", "lifetime", "frame_locked", "metadata", "arrows",
                 "cubes", "spheres", "cylinders", "lines", "triangles", "texts", "models"]}
SCENE_UPDATE = {
    "title": "foxglove.SceneUpdate", "type": "object",
    "properties": {"deletions": {"type": "array"},
                   "entities": {"type": "array", "items": SCENE_ENTITY},
                   "message_id": {"type": "string"}, "lineage": {"type": "object"}},
    "required": ["deletions", "entities"]}
FRAME_TRANSFORM = {
    "title": "foxglove.FrameTransform", "type": "object",
    "properties": {"timestamp": TIME, "parent_frame_id": {"type": "string"},
                   "child_frame_id": {"type": "string"}, "translation": VECTOR3,
                   "rotation": QUATERNION},
    "required": ["timestamp", "parent_frame_id", "child_frame_id", "translation", "rotation"]}


def unknown_keys(message, schema, path="") -> list[str]:
    """Keys of ``message`` that the published schema does not define (typos pass jsonschema)."""
    found = []
    if isinstance(message, dict) and "properties" in schema:
        for key, value in message.items():
            if key not in schema["properties"]:
                found.append(f"{path}.{key}")
            else:
                found += unknown_keys(value, schema["properties"][key], f"{path}.{key}")
    elif isinstance(message, list) and "items" in schema:
        for i, item in enumerate(message):
            found += unknown_keys(item, schema["items"], f"{path}[{i}]")
    return found

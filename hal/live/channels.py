"""The live view's channels on a foxglove-sdk context: Foxglove's typed channels (protobuf) for
Foxglove's schemas, JSON channels with a JSON schema for krabby's own messages."""

from __future__ import annotations

from typing import Any

from hal.live.sdk import foxglove_sdk

__all__ = ["LiveChannels", "TOPICS"]

TOPICS = {
    "pose": "/pose", "tf": "/tf", "scene": "/scene", "camera": "/camera/depth",
    "policy_depth": "/policy/depth", "scan": "/policy/height_scan", "joints": "/joints",
    "joint_states": "/joints/state", "mode": "/safety/mode", "transition": "/safety/transition",
    "log": "/log", "command": "/operator/command", "operator": "/operator/event",
    "heading": "/policy/heading", "latency": "/latency", "stats": "/live/stats",
}
"""Channel key → topic."""

_NUM = {"type": "number"}
_INT = {"type": "integer"}
_STR = {"type": "string"}


def _schema(title: str, description: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {"title": title, "description": description, "type": "object",
            "properties": properties}


JSON_SCHEMAS: dict[str, dict[str, Any]] = {
    "joints": _schema("krabby.LiveJoints", "Per joint (hardware order): measured position, the "
                      "policy's target in force (its latest command; null before the first) and "
                      "the target after the safety layer, radians; new_command: a command "
                      "answered this tick.",
                      {"seq": _INT, "t_ns": _INT, "mode": _STR,
                       "names": {"type": "array", "items": _STR},
                       "measured_rad": {"type": "array", "items": _NUM},
                       "policy_target_rad": {"type": "array", "items": {"type": ["number",
                                                                                  "null"]}},
                       "new_command": {"type": "boolean"},
                       "safe_target_rad": {"type": "array", "items": _NUM}}),
    "mode": _schema("krabby.SafetyMode", "The safety layer's mode in force (sent on each change "
                    "and at the status rate).", {"seq": _INT, "t_ns": _INT, "mode": _STR}),
    "transition": _schema("krabby.SafetyTransition", "A safety layer transition.",
                          {"seq": _INT, "t_ns": _INT, "from": _STR, "to": _STR, "reason": _STR,
                           "detail": _STR}),
    "command": _schema("krabby.OperatorCommand", "The operator's command in force.",
                       {"t_ns": _INT, "forward_speed_m_s": _NUM, "yaw_rate_rad_s": _NUM,
                        "mode": _STR}),
    "operator": _schema("krabby.OperatorEvent", "An operator action or command change.",
                        {"seq": _INT, "t_ns": _INT, "source": _STR, "what": _STR}),
    "heading": _schema("krabby.PolicyHeading", "The heading terms of the observation [6:8] and the "
                       "heading error they stand for (radians).",
                       {"obs_seq": _INT, "t_ns": _INT,
                        "observation": {"type": "array", "items": _NUM},
                        "heading_error_rad": _NUM, "next_heading_error_rad": _NUM}),
    "latency": _schema("krabby.LiveLatency", "Stage latencies, microseconds (fields present "
                       "per source: tick, actor step, depth step).",
                       {"t_ns": _INT, "obs_to_command_us": _NUM, "actor_engine_us": _NUM,
                        "depth_engine_us": _NUM}),
    "stats": _schema("krabby.LiveStats", "Messages sent and dropped per stream by the live "
                     "publisher.", {"t_ns": _INT, "sent": {"type": "object"},
                                    "dropped": {"type": "object"}, "errors": _INT}),
}

_TYPED = {"pose": "PoseInFrameChannel", "tf": "FrameTransformsChannel",
          "scene": "SceneUpdateChannel", "camera": "RawImageChannel",
          "policy_depth": "RawImageChannel", "scan": "PointCloudChannel",
          "joint_states": "JointStatesChannel", "log": "LogChannel"}


class LiveChannels:
    """Every live channel, as attributes named by the keys of :data:`TOPICS`.

    Args:
        context: The foxglove-sdk ``Context`` (the server's).
        with_scene: Create ``/scene`` (the simulator has one).
    """

    def __init__(self, context: Any, with_scene: bool) -> None:
        foxglove = foxglove_sdk()
        from foxglove import channels as typed

        self._all: dict[str, Any] = {}
        for key, topic in TOPICS.items():
            if key == "scene" and not with_scene:
                continue
            if key in _TYPED:
                channel = getattr(typed, _TYPED[key])(topic, context=context)
            else:
                channel = foxglove.Channel(topic, schema=JSON_SCHEMAS[key],
                                           message_encoding="json", context=context)
            self._all[key] = channel
            setattr(self, key, channel)

    def any_sinks(self, *keys: str) -> bool:
        """True when a client subscribes to one of ``keys``' channels."""
        return any(self._all[k].has_sinks() for k in keys if k in self._all)

    def close(self) -> None:
        for channel in self._all.values():
            channel.close()

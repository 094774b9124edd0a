"""The Foxglove layout for the live view (``docs/foxglove-layout.json``), generated here.

Each panel's configuration is built with foxglove-sdk's typed layout classes (``foxglove.layouts``,
so the keys are the app's own) and placed in the layout file the Foxglove app exports and imports
("Layouts → Import from file…"): ``configById`` (panel id ``Type!name`` → configuration) and the
``layout`` tree of splits. Panels: the 3D view (scene, transforms, pose, height scan, following the
base), the policy's depth image and the camera's, the joint plots (policy target, safe target,
measured, for the thigh and calf of a front and a hind leg), the safety mode's state
transitions, and the log.

Regenerate: ``python -m hal.live.layout > docs/foxglove-layout.json`` (a test checks the file is
current and names only topics the live view publishes).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from hal.live.channels import TOPICS

__all__ = ["live_layout", "layout_topics", "JOINTS_SHOWN"]

JOINTS_SHOWN = ("FL_thigh_joint", "FL_calf_joint", "RR_thigh_joint", "RR_calf_joint")
"""The plotted joints (a front and a hind leg); all are in ``/joints``, in hardware order."""


def _dict(model: Any) -> dict[str, Any]:
    return json.loads(model.to_json())


def _split(direction: str, first: Any, second: Any, percentage: float) -> dict[str, Any]:
    return {"direction": direction, "first": first, "second": second,
            "splitPercentage": percentage}


def live_layout(robot_name: str = "go2") -> dict[str, Any]:
    """The layout as the Foxglove app's JSON (``configById``, ``layout``, ...), the joint plots
    indexed in ``robot_name``'s hardware joint order."""
    from hal.live.sdk import foxglove_sdk
    from hal.robot import load_robot

    hardware = list(load_robot(robot_name).joint_names_hardware)
    foxglove_sdk()
    import foxglove.layouts as fl

    three_d = fl.ThreeDeeConfig(
        follow_tf="base", follow_mode="follow-position",
        camera_state=fl.ThreeDeeCameraState(distance=3.0, perspective=True, phi=60.0,
                                            theta_offset=45.0),
        topics={TOPICS["scene"]: fl.BaseRendererSceneUpdateTopicSettings(visible=True),
                TOPICS["pose"]: fl.BaseRendererPoseTopicSettings(visible=True, type="axis",
                                                                 axis_scale=0.5),
                TOPICS["scan"]: fl.BaseRendererPointCloudTopicSettings(
                    visible=True, point_size=6.0, color_mode="colormap", color_field="z")})
    images = {name: fl.ImageConfig(image_mode=fl.ImageModeConfig(
        image_topic=TOPICS[key], color_mode="colormap", color_map="turbo"))
        for name, key in (("Image!policy_depth", "policy_depth"),
                          ("Image!camera_depth", "camera"))}
    joints = TOPICS["joints"]
    plots = {}
    for name in JOINTS_SHOWN:
        index, label = hardware.index(name), name.removesuffix("_joint")
        plots[f"Plot!{label}"] = fl.PlotConfig(
            paths=[fl.PlotSeries(value=f"{joints}.policy_target_rad[{index}]",
                                 label="policy target", enabled=True),
                   fl.PlotSeries(value=f"{joints}.safe_target_rad[{index}]",
                                 label="after safety", enabled=True),
                   fl.PlotSeries(value=f"{joints}.measured_rad[{index}]", label="measured",
                                 enabled=True)],
            show_legend=True, y_axis_label=f"{label} (rad)", time_window_mode="sliding",
            following_view_width=10.0)
    modes = fl.StateTransitionsConfig(paths=[
        fl.StateTransitionsSeries(value=f"{TOPICS['mode']}.mode", label="safety mode",
                                  enabled=True),
        fl.StateTransitionsSeries(value=f"{TOPICS['command']}.mode", label="command mode",
                                  enabled=True)], show_points=True)
    heading = fl.PlotConfig(paths=[
        fl.PlotSeries(value=f"{TOPICS['heading']}.heading_error_rad", label="heading error",
                      enabled=True),
        fl.PlotSeries(value=f"{TOPICS['latency']}.obs_to_command_us", label="obs→command µs",
                      enabled=True, use_right_y_axis=True)], show_legend=True)
    log = fl.LogConfig(topic_to_render=TOPICS["log"], min_log_level=1.0)
    config_by_id: dict[str, Any] = {"3D!scene": _dict(three_d), **{k: _dict(v) for k, v in
                                                                  images.items()},
                                    **{k: _dict(v) for k, v in plots.items()},
                                    "StateTransitions!safety": _dict(modes),
                                    "Plot!heading_latency": _dict(heading),
                                    "RosOut!log": _dict(log)}
    names = list(plots)
    joint_grid = _split("column", _split("row", names[0], names[1], 50),
                        _split("row", names[2], names[3], 50), 50)
    left = _split("column", "3D!scene",
                  _split("row", "Image!policy_depth", "Image!camera_depth", 50), 65)
    right = _split("column", joint_grid,
                   _split("column", "StateTransitions!safety",
                          _split("row", "Plot!heading_latency", "RosOut!log", 50), 35), 60)
    return {"configById": config_by_id, "globalVariables": {}, "userNodes": {},
            "playbackConfig": {"speed": 1}, "layout": _split("row", left, right, 50)}


def layout_topics(layout: dict[str, Any]) -> set[str]:
    """Every topic the layout's panels read (for the test that keeps it current)."""
    found: set[str] = set()

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k == "topics" and isinstance(v, dict):
                    found.update(v)
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and key in ("imageTopic", "topicToRender", "value"):
            found.add(value.split(".")[0] if key == "value" else value)

    walk(layout["configById"])
    return found


def main() -> int:
    sys.stdout.write(json.dumps(live_layout(), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

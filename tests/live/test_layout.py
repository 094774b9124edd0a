"""``docs/foxglove-layout.json``: current with its generator, reading only topics the live view
publishes, with the panels the README promises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("foxglove")

from hal.live.channels import TOPICS  # noqa: E402
from hal.live.layout import JOINTS_SHOWN, layout_topics, live_layout  # noqa: E402

LAYOUT = Path(__file__).resolve().parents[2] / "docs" / "foxglove-layout.json"


def test_layout_file_is_current():
    assert json.loads(LAYOUT.read_text()) == live_layout(), (
        "regenerate: python -m hal.live.layout > docs/foxglove-layout.json")


def test_layout_reads_only_published_topics_and_has_every_panel():
    from hal.robot import load_robot

    layout = json.loads(LAYOUT.read_text())
    assert layout_topics(layout) <= set(TOPICS.values())
    panels = layout["configById"]
    kinds = {panel_id.split("!")[0] for panel_id in panels}
    assert kinds == {"3D", "Image", "Plot", "StateTransitions", "RosOut"}
    assert panels["Image!policy_depth"]["imageMode"]["imageTopic"] == "/policy/depth"
    assert panels["3D!scene"]["followTf"] == "base" and "/scene" in panels["3D!scene"]["topics"]
    assert panels["StateTransitions!safety"]["paths"][0]["value"] == "/safety/mode.mode"
    assert panels["RosOut!log"]["topicToRender"] == "/log"
    # Each joint plot shows its joint: the index is the joint's place in the hardware order.
    hardware = list(load_robot("go2").joint_names_hardware)
    for name in JOINTS_SHOWN:
        values = [p["value"] for p in panels[f"Plot!{name.removesuffix('_joint')}"]["paths"]]
        index = hardware.index(name)
        assert values == [f"/joints.{field}[{index}]"
                          for field in ("policy_target_rad", "safe_target_rad", "measured_rad")]

    # Every panel in the tree is configured and every configured panel is in the tree.
    def leaves(node):
        return [node] if isinstance(node, str) else leaves(node["first"]) + leaves(node["second"])

    assert sorted(leaves(layout["layout"])) == sorted(panels)

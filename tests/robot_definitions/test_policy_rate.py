"""A robot definition names the policy's rate ``policy_rate_hz``; the loop's rate is the server's
``--control-rate``. Definitions written with the old name ``control_rate_hz`` still load."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hal.robot import RobotDefinitionError, load_robot

SHIPPED = Path(__file__).resolve().parents[2] / "hal" / "robots" / "go2.toml"


def _with_rate_line(tmp_path: Path, line: str) -> Path:
    text = SHIPPED.read_text()
    assert "policy_rate_hz = 50.0" in text
    path = tmp_path / "robot.toml"
    path.write_text(text.replace("policy_rate_hz = 50.0", line))
    return path


def test_the_shipped_robots_carry_the_policy_rate():
    assert load_robot("go2").policy_rate_hz == 50.0
    assert load_robot("a1").policy_rate_hz == 50.0
    assert not hasattr(load_robot("go2"), "control_rate_hz")


def test_the_old_name_still_loads_with_a_warning(tmp_path, caplog):
    path = _with_rate_line(tmp_path, "control_rate_hz = 40.0")
    with caplog.at_level(logging.WARNING, logger="hal.robot"):
        robot = load_robot(path)
    assert robot.policy_rate_hz == 40.0
    assert "rename it policy_rate_hz" in caplog.text


def test_both_names_are_refused(tmp_path):
    path = _with_rate_line(tmp_path, "policy_rate_hz = 50.0\ncontrol_rate_hz = 50.0")
    with pytest.raises(RobotDefinitionError, match="robot.control_rate_hz: the old name"):
        load_robot(path)


def test_a_missing_rate_names_the_new_field(tmp_path):
    path = _with_rate_line(tmp_path, "")
    with pytest.raises(RobotDefinitionError, match="robot.policy_rate_hz: missing field"):
        load_robot(path)

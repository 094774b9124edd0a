"""Measured joint velocity and position beyond the robot file's limits → damping."""

from __future__ import annotations

import numpy as np
import pytest

from hal.devices.base import CONTROL_MODE_DAMP, CONTROL_MODE_POSITION
from hal.safety import SafetyConfig
from hal.safety.config import SafetyConfigError

from .rig import Rig, by_name


def _velocity_limits(rig):
    return by_name(rig.robot, rig.robot.velocity_limit)


def test_velocity_just_inside_the_limit_runs_and_just_beyond_damps():
    rig = Rig()
    rig.to_policy()
    limit = _velocity_limits(rig)
    calf = int(np.argmin(limit))  # a calf: 15.7 rad/s on the Go2, the hips and thighs 30.1
    assert limit[calf] == pytest.approx(15.7)
    dq = np.zeros(rig.n)
    scale = rig.config.joint_velocity_limit_scale
    ticks = rig.config.joint_velocity_limit_ticks
    assert (scale, ticks) == (1.5, 3)
    dq[calf] = -0.99 * scale * limit[calf]
    for _ in range(2 * ticks):
        assert rig.tick(targets=rig.default, dq=dq).mode == CONTROL_MODE_POSITION
    assert rig.layer.mode == "policy"
    dq[calf] = -1.01 * scale * limit[calf]
    for _ in range(ticks - 1):  # an instant beyond the limit (a swing, an impact) passes
        assert rig.tick(targets=rig.default, dq=dq).mode == CONTROL_MODE_POSITION
    assert rig.tick(targets=rig.default, dq=dq * 0.5).mode == CONTROL_MODE_POSITION  # resets
    for _ in range(ticks - 1):
        assert rig.tick(targets=rig.default, dq=dq).mode == CONTROL_MODE_POSITION
    out = rig.tick(targets=rig.default, dq=dq)
    assert out.mode == CONTROL_MODE_DAMP and np.all(out.kp == 0)
    event = rig.layer.events()[-1]
    assert (event["from"], event["to"], event["reason"]) == ("policy", "damping",
                                                             "joint_velocity_limit")
    assert rig.robot.joint_names_hardware[calf] in event["detail"]


def test_position_beyond_the_limits_damps_and_refuses_a_start():
    rig = Rig()
    rig.to_policy()
    q = rig.default.copy()
    q[0] = rig.upper[0] + 0.05  # within the 0.1 rad margin (encoder noise, a stop's give)
    assert rig.tick(targets=rig.default, q=q).mode == CONTROL_MODE_POSITION
    q[0] = rig.upper[0] + 0.15
    assert rig.config.joint_position_limit_ticks == 2
    # One tick beyond (a stop hit at speed gives for an instant) passes; a reading back inside
    # starts the count again; two in a row damp.
    assert rig.tick(targets=rig.default, q=q).mode == CONTROL_MODE_POSITION
    assert rig.tick(targets=rig.default, q=rig.default).mode == CONTROL_MODE_POSITION
    assert rig.tick(targets=rig.default, q=q).mode == CONTROL_MODE_POSITION
    assert rig.tick(targets=rig.default, q=q).mode == CONTROL_MODE_DAMP
    assert rig.layer.events()[-1]["reason"] == "joint_position_limit"
    assert "2 ticks in a row" in rig.layer.events()[-1]["detail"]
    # A start is refused on the first reading beyond the stop.
    rig.layer.request_start()
    rig.tick(q=q)
    assert rig.layer.mode == "damping"
    assert rig.layer.counters()["request.start_refused_sensors"] == 1
    q[0] = rig.lower[0] - 0.15
    rig.layer.request_start()
    rig.tick(q=q)
    assert rig.layer.mode == "damping"


def test_checks_can_be_switched_off_and_bad_values_are_refused():
    rig = Rig(joint_velocity_limit_scale=None, joint_position_margin_rad=None)
    rig.to_policy()
    dq = 3 * _velocity_limits(rig)
    q = rig.upper + 0.5
    assert rig.tick(targets=rig.default, dq=dq, q=q).mode == CONTROL_MODE_POSITION
    for bad in ({"joint_velocity_limit_scale": 0.0}, {"joint_velocity_limit_scale": float("nan")},
                {"joint_position_margin_rad": -0.1}):
        with pytest.raises(SafetyConfigError, match=next(iter(bad))):
            SafetyConfig(**bad)

"""Attitude from the IMU quaternion, and SafetyConfig validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hal.robot import load_robot
from hal.safety import SafetyConfig, SafetyConfigError
from hal.safety.attitude import normalized_quaternion, roll_pitch, tilt_rad


def qmul(a, b):
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return (aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw)


def axis_angle(axis, angle):
    s = math.sin(angle / 2)
    return (math.cos(angle / 2), axis[0] * s, axis[1] * s, axis[2] * s)


def rotate(qt, v):
    w, x, y, z = qmul(qmul(qt, (0.0, *v)), (qt[0], -qt[1], -qt[2], -qt[3]))
    return np.array([x, y, z])


@pytest.mark.parametrize("roll,pitch,yaw", [(0.0, 0.0, 0.0), (0.3, -0.2, 1.0), (-1.2, 0.5, -2.5),
                                            (0.05, 1.3, 0.7), (2.8, 0.1, 0.0)])
def test_roll_pitch_and_tilt_recover_the_rotation(roll, pitch, yaw):
    # Z-Y-X: q = qz(yaw) * qy(pitch) * qx(roll).
    qt = qmul(axis_angle((0, 0, 1), yaw), qmul(axis_angle((0, 1, 0), pitch),
                                               axis_angle((1, 0, 0), roll)))
    got_roll, got_pitch = roll_pitch(*qt)
    assert got_roll == pytest.approx(roll, abs=1e-9)
    assert got_pitch == pytest.approx(pitch, abs=1e-9)
    # Tilt: angle between the rotated body z axis and world z.
    up = rotate(qt, (0.0, 0.0, 1.0))
    expected_tilt = math.acos(max(-1.0, min(1.0, up[2])))
    assert tilt_rad(*qt) == pytest.approx(expected_tilt, abs=1e-7)


def test_normalized_quaternion_rejects_garbage():
    assert normalized_quaternion(np.array([2.0, 0.0, 0.0, 0.0])) == (1.0, 0.0, 0.0, 0.0)
    assert normalized_quaternion(np.zeros(4)) is None
    assert normalized_quaternion(np.array([np.nan, 0, 0, 1.0])) is None
    assert normalized_quaternion(np.array([np.inf, 0, 0, 1.0])) is None


def test_defaults_are_valid_and_fit_go2():
    cfg = SafetyConfig()
    cfg.check_robot(load_robot("go2"))
    assert cfg.hold_after_ticks <= cfg.damp_after_ticks
    assert cfg.kp_min > 0


@pytest.mark.parametrize("field,value,match", [
    ("stand_up_duration_s", 0.0, "stand_up_duration_s=0.0"),
    ("max_target_rate_rad_s", -0.1, "max_target_rate_rad_s"),
    ("kp_min", 0.0, "kp_min"),
    ("imu_stale_ms", float("nan"), "imu_stale_ms"),
    ("depth_stale_ms", 0.0, "depth_stale_ms"),
    ("tilt_limit_rad", 4.0, "at most pi"),
    ("gate_settle_ticks", 0, "gate_settle_ticks=0"),
    ("hold_after_ticks", 1.5, "hold_after_ticks"),
    ("damping_kd", True, "damping_kd"),
])
def test_bad_values_name_the_field(field, value, match):
    with pytest.raises(SafetyConfigError, match=match):
        SafetyConfig(**{field: value})


def test_cross_field_rules():
    with pytest.raises(SafetyConfigError, match="kp_min=50.0 must not exceed kp_max=40.0"):
        SafetyConfig(kp_min=50.0, kp_max=40.0)
    with pytest.raises(SafetyConfigError, match="kd_min"):
        SafetyConfig(kd_min=3.0, kd_max=2.0)
    with pytest.raises(SafetyConfigError, match="hold_after_ticks=5 must not exceed"):
        SafetyConfig(hold_after_ticks=5, damp_after_ticks=4)


def test_feet_count_checked_against_robot():
    with pytest.raises(SafetyConfigError, match="has only 4 feet"):
        SafetyConfig(gate_min_feet_down=5).check_robot(load_robot("go2"))


def test_from_dict_round_trip_and_unknown_keys():
    cfg = SafetyConfig(blend_duration_s=0.8, depth_stale_ms=None)
    assert SafetyConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(SafetyConfigError, match=r"unknown safety field\(s\) \['blend_s'\]"):
        SafetyConfig.from_dict({"blend_s": 1.0})

"""The command-plausibility watchdog: a policy that keeps asking for what training never produced
(targets beyond the action range, joints slammed across it and back) ends damped; a trained-looking
one (a landing past a joint limit, the entry blend from a far-away command) never trips it."""

from __future__ import annotations

import numpy as np
import pytest

from hal.devices.base import CONTROL_MODE_DAMP
from hal.safety import SafetyConfig, SafetyConfigError

from .rig import Rig

# A wide step cap, so that the applied target follows the wild commands and the watchdog alone
# is seen (the slam rule judges the desired target, not the applied one, in any case).
THRESHOLDS = dict(max_target_rate_rad_s=150.0)


def wild(rig: Rig, k: int) -> np.ndarray:
    """±1.2 rad about the default pose (the action clip × scale), flipping sign every tick: the
    ends of the action range, a 2.4 rad reversal on every joint every policy step."""
    return rig.default + (1.2 if k % 2 == 0 else -1.2)


def to_policy_blended(rig: Rig) -> None:
    """Into ``policy`` with the default pose as command, and past the entry blend."""
    rig.to_policy()
    for _ in range(int(rig.config.blend_duration_s * 50) + 1):
        rig.tick(targets=rig.default)
    assert rig.layer.mode == "policy"


def assert_policy(rig: Rig) -> None:
    assert rig.layer.mode == "policy", rig.layer.events()[-1]


def assert_tripped(rig: Rig, out, kind: str) -> None:
    assert rig.layer.mode == "damping"
    assert out.mode == CONTROL_MODE_DAMP and np.all(out.kp == 0.0)
    event = rig.layer.events()[-1]
    assert (event["from"], event["to"], event["reason"]) == ("policy", "damping",
                                                             "implausible_command")
    assert kind in event["detail"]


@pytest.mark.parametrize("after", [1, 3, 10])
def test_slamming_commands_damp_on_the_nth_consecutive_slam(after):
    """The first wild command is a 1.2 rad step from the default pose; every one after it is a
    2.4 rad slam."""
    rig = Rig(implausible_after_ticks=after, **THRESHOLDS)
    to_policy_blended(rig)
    for k in range(after):
        rig.tick(targets=wild(rig, k))
        assert_policy(rig)
    out = rig.tick(targets=wild(rig, after))
    assert_tripped(rig, out, "slammed")
    assert rig.layer.counters()["command.implausible"] == after
    assert rig.layer.counters()["reason.implausible_command"] == 1


def test_slam_threshold_is_the_fraction_of_the_range():
    """Steps of `asked` rad on one joint: at 0.75 × 2.4 = 1.8 rad they slam, below they don't."""
    for asked, trips in ((1.79, False), (1.81, True)):
        rig = Rig(implausible_after_ticks=3, **THRESHOLDS)
        to_policy_blended(rig)
        targets = rig.default.copy()
        for k in range(12):
            targets[7] = rig.default[7] + (asked / 2 if k % 2 == 0 else -asked / 2)
            rig.tick(targets=targets)
            if rig.layer.mode != "policy":
                break
        assert (rig.layer.mode == "damping") is trips, (asked, rig.layer.events()[-1])
        if trips:
            # k = 0 steps asked / 2 from the default, k = 1, 2, 3 step asked: the third
            # consecutive implausible tick is k = 3.
            assert k == 3


def test_a_target_beyond_the_action_range_is_implausible_however_near_the_limits():
    # The counted torque window (the default): the 1.2 rad thigh step is not held back by it.
    rig = Rig(implausible_after_ticks=5, torque_window="count", **THRESHOLDS)
    to_policy_blended(rig)
    calf = 2  # FR_calf_joint in the Go2's hardware order
    leaning = rig.default.copy()
    leaning[calf] = rig.action_hi[calf]  # the range's end: 0.538 rad past the calf's limit
    assert leaning[calf] > rig.upper[calf] + 0.53
    for _ in range(30):
        out = rig.tick(targets=leaning)
        assert_policy(rig)
    assert out.target[calf] == leaning[calf]  # sent on, as training would have
    beyond = rig.default.copy()
    beyond[1] = rig.action_hi[1] + 0.01  # the thigh: inside its joint limits, beyond its range
    assert beyond[1] < rig.upper[1]
    for _ in range(4):
        out = rig.tick(targets=beyond)
        assert_policy(rig)
        assert out.target[1] == rig.action_hi[1]  # clipped to the range meanwhile
    out = rig.tick(targets=beyond)
    assert_tripped(rig, out, f"{rig.robot.joint_names_hardware[1]} target 2.010 rad, 0.010 rad "
                             "outside its action range [-0.400, 2.000] rad")


def test_a_plausible_command_resets_the_streak():
    rig = Rig(implausible_after_ticks=4, **THRESHOLDS)
    to_policy_blended(rig)
    for k in range(3):
        rig.tick(targets=wild(rig, k))  # two implausible (k = 1, 2)
    rig.tick(targets=rig.default)  # a 1.2 rad step: plausible
    for k in range(4):
        rig.tick(targets=wild(rig, k))  # k = 0 steps 1.2 rad, k = 1..3 slam
        assert_policy(rig)
    out = rig.tick(targets=wild(rig, 4))
    assert_tripped(rig, out, "slammed")


def test_missing_commands_neither_reset_nor_count():
    rig = Rig(implausible_after_ticks=6, damp_after_ticks=10, **THRESHOLDS)
    to_policy_blended(rig)
    for k in range(5):
        rig.tick(targets=wild(rig, k))  # four implausible (k = 1..4)
    for _ in range(5):
        rig.tick(targets=None)  # held, below the command watchdog
        assert_policy(rig)
    rig.tick(targets=wild(rig, 5))  # the fifth: a slam from the last command, wild(4)
    assert_policy(rig)
    out = rig.tick(targets=wild(rig, 6))
    assert_tripped(rig, out, "slammed")
    assert rig.layer.counters()["command.implausible"] == 6


def test_a_transition_resets_the_streak():
    rig = Rig(implausible_after_ticks=4, **THRESHOLDS)
    to_policy_blended(rig)
    for k in range(4):
        rig.tick(targets=wild(rig, k))  # three slams
    rig.run_until("stand", targets=rig.default, depth_age_ms=1000.0)  # stale depth → stand
    rig.run_until("policy", targets=rig.default)  # fresh depth: back through the gate
    for _ in range(10):
        rig.tick(targets=rig.default)  # through the blend
    for k in range(4):
        rig.tick(targets=wild(rig, k))  # three slams: the count began again
        assert_policy(rig)


def test_disabled_watchdog_never_trips():
    rig = Rig(implausible_after_ticks=0, **THRESHOLDS)
    to_policy_blended(rig)
    for k in range(50):
        rig.tick(targets=wild(rig, k))
        assert_policy(rig)
    assert "command.implausible" not in rig.layer.counters()


def test_the_entry_blend_to_a_far_command_never_trips():
    """A policy whose first commands are 1.2 rad from the stand pose is blended in, not judged
    on the jump: the desired target moves by a small fraction of the distance per tick."""
    rig = Rig(blend_duration_s=0.5, implausible_after_ticks=1, **THRESHOLDS)
    far = rig.default + np.where(np.arange(rig.n) % 2 == 0, 1.2, -1.2)
    rig.to_policy(far)
    for _ in range(60):  # 1.2 s: the blend and well after it
        out = rig.tick(targets=far)
        assert_policy(rig)
    np.testing.assert_allclose(out.target, far, atol=1e-9)
    assert "command.implausible" not in rig.layer.counters()


@pytest.mark.parametrize("field,value", [
    ("implausible_after_ticks", -1),
    ("implausible_after_ticks", 2.5),
    ("implausible_slam_fraction", 0.5),
    ("implausible_slam_fraction", 1.5),
    ("implausible_slam_fraction", float("inf")),
    ("policy_targets_past_limits", "ignore"),
])
def test_bad_watchdog_settings_name_the_field(field, value):
    with pytest.raises(SafetyConfigError, match=field):
        SafetyConfig(**{field: value})

"""The command-plausibility watchdog: a policy that keeps demanding impossible targets ends damped,
and a sane one (including the entry blend from a far-away command) never trips it."""

from __future__ import annotations

import numpy as np
import pytest

from hal.devices.base import CONTROL_MODE_DAMP
from hal.safety import SafetyConfig, SafetyConfigError

from .rig import Rig

# The thresholds these tests were written for: a cap of 0.3 rad and a margin of 0.3 rad per 20 ms
# command period, so a 1.2 rad step is plainly implausible.
THRESHOLDS = dict(max_target_rate_rad_s=15.0, implausible_rate_margin_rad_s=15.0)


def wild(rig: Rig, k: int) -> np.ndarray:
    """±1.2 rad about the default pose (the action clip × scale), flipping sign every tick."""
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
def test_wild_commands_damp_on_the_nth_consecutive_tick(after):
    rig = Rig(implausible_after_ticks=after, **THRESHOLDS)
    to_policy_blended(rig)
    for k in range(after - 1):
        rig.tick(targets=wild(rig, k))
        assert_policy(rig)
    out = rig.tick(targets=wild(rig, after - 1))
    assert_tripped(rig, out, "step of")
    assert rig.layer.counters()["command.implausible"] == after
    assert rig.layer.counters()["reason.implausible_command"] == 1


def test_step_threshold_is_cap_plus_margin():
    for asked, trips in ((0.59, False), (0.61, True)):
        rig = Rig(implausible_after_ticks=3, **THRESHOLDS)
        to_policy_blended(rig)
        for k in range(12):
            # Ask `asked` rad away from the last applied target, alternating direction, so the
            # applied target oscillates (capped at 0.3 rad) about the default pose.
            previous = rig.history[-1].target
            rig.tick(targets=previous + (asked if k % 2 == 0 else -asked))
            if rig.layer.mode != "policy":
                break
        assert (rig.layer.mode == "damping") is trips, (asked, rig.layer.events()[-1])
        if trips:
            assert k == 2  # the third consecutive implausible tick


def test_limit_threshold_is_the_margin():
    rig = Rig(implausible_limit_margin_rad=0.3, implausible_after_ticks=5, **THRESHOLDS)
    to_policy_blended(rig)
    leaning = rig.default.copy()
    leaning[2] = rig.upper[2] + 0.29  # a calf leaning on its limit: tolerated
    for _ in range(30):
        out = rig.tick(targets=leaning)
        assert_policy(rig)
    assert out.target[2] == rig.upper[2]  # the filter holds it at the limit
    parked = leaning.copy()
    parked[2] = rig.upper[2] + 0.31  # a step of 0.31 rad from the limit: only the limit rule
    for _ in range(4):
        rig.tick(targets=parked)
        assert_policy(rig)
    out = rig.tick(targets=parked)
    assert_tripped(rig, out, f"{rig.robot.joint_names_hardware[2]} 0.310 rad outside its limits")


def test_a_plausible_command_resets_the_streak():
    rig = Rig(implausible_after_ticks=4, **THRESHOLDS)
    to_policy_blended(rig)
    for k in range(3):
        rig.tick(targets=wild(rig, k))
    rig.tick(targets=rig.history[-1].target)  # plausible: stay where it is
    for k in range(3):
        rig.tick(targets=wild(rig, k))
        assert_policy(rig)
    out = rig.tick(targets=wild(rig, 3))
    assert_tripped(rig, out, "step of")


def test_missing_commands_neither_reset_nor_count():
    rig = Rig(implausible_after_ticks=6, damp_after_ticks=10, **THRESHOLDS)
    to_policy_blended(rig)
    for k in range(3):
        rig.tick(targets=wild(rig, k))
    for _ in range(5):
        rig.tick(targets=None)  # held, below the command watchdog
        assert_policy(rig)
    for k in range(2):
        rig.tick(targets=wild(rig, k))
        assert_policy(rig)
    out = rig.tick(targets=wild(rig, 2))
    assert_tripped(rig, out, "step of")
    assert rig.layer.counters()["command.implausible"] == 6


def test_a_transition_resets_the_streak():
    rig = Rig(implausible_after_ticks=4, **THRESHOLDS)
    to_policy_blended(rig)
    for k in range(3):
        rig.tick(targets=wild(rig, k))
    rig.run_until("stand", targets=rig.default, depth_age_ms=1000.0)  # stale depth → stand
    rig.run_until("policy", targets=rig.default)  # fresh depth: back through the gate
    for _ in range(10):
        rig.tick(targets=rig.default)  # through the blend
    for k in range(3):
        rig.tick(targets=wild(rig, k))
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
    far = np.clip(rig.default + np.where(np.arange(rig.n) % 2 == 0, 1.2, -1.2),
                  rig.lower, rig.upper)
    rig.to_policy(far)
    for _ in range(60):  # 1.2 s: the blend and well after it
        out = rig.tick(targets=far)
        assert_policy(rig)
    np.testing.assert_allclose(out.target, far, atol=1e-9)
    assert "command.implausible" not in rig.layer.counters()


@pytest.mark.parametrize("field,value", [
    ("implausible_after_ticks", -1),
    ("implausible_after_ticks", 2.5),
    ("implausible_rate_margin_rad_s", -0.1),
    ("implausible_limit_margin_rad", float("inf")),
])
def test_bad_watchdog_settings_name_the_field(field, value):
    with pytest.raises(SafetyConfigError, match=field):
        SafetyConfig(**{field: value})

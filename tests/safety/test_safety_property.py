"""Property: for arbitrary command streams and sensor readings, every command the layer returns is
safe — position targets finite, inside the joint limits, torque-feasible and within the step cap of
the previous applied target (each with the exception documented in hal.safety.targets), gains in
bounds; and damping is exactly kp 0 / kd damping_kd in the non-active modes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from hal.devices.base import CONTROL_MODE_DAMP, CONTROL_MODE_POSITION
from hal.safety.events import ACTIVE_MODES

from .guarantees import check_guarantees
from .rig import Rig

PERMISSIVE = dict(stand_up_duration_s=0.04, blend_duration_s=0.06, stand_ramp_duration_s=0.04,
                  gate_settle_ticks=1, gate_max_roll_rad=0.5, gate_max_pitch_rad=0.5,
                  gate_max_tracking_error_rad=10.0, gate_min_feet_down=0, hold_after_ticks=2,
                  damp_after_ticks=4, max_target_rate_rad_s=10.0, kp_min=5.0, kp_max=80.0,
                  kd_min=0.2, kd_max=4.0)

WILD = [np.nan, np.inf, -np.inf, 1e30, -1e300]


class Checker:
    """Steps a layer and checks every returned command against the guarantees."""

    def __init__(self, **overrides):
        values = dict(PERMISSIVE)
        values.update(overrides)
        self.rig = Rig(**values)
        self.rig.follow = False
        self.prev_position: np.ndarray | None = None
        self.modes_seen: set[str] = set()

    def step(self, q, dq, targets, kp, kd, depth_age_ms, imu_age_ms, quat):
        rig, cfg = self.rig, self.rig.config
        out = rig.tick(targets, kp, kd, q=q, dq=dq, depth_age_ms=depth_age_ms,
                       imu_age_ms=imu_age_ms, quat=quat)
        mode = rig.layer.mode
        self.modes_seen.add(mode.value)
        assert np.all(np.isfinite(out.target)) and np.all(np.isfinite(out.kp))
        lower, upper = rig.bounds()
        assert np.all(out.target >= lower) and np.all(out.target <= upper)
        if out.mode == CONTROL_MODE_DAMP:
            assert mode not in ACTIVE_MODES
            assert np.all(out.kp == 0.0) and np.all(out.kd == cfg.damping_kd)
            self.prev_position = None
            return
        assert out.mode == CONTROL_MODE_POSITION and mode in ACTIVE_MODES
        assert np.all(out.kp >= cfg.kp_min) and np.all(out.kp <= cfg.kp_max)
        assert np.all(out.kd >= cfg.kd_min) and np.all(out.kd <= cfg.kd_max)
        # A position target is only sent after healthy joint readings: q, dq are finite here.
        reference = (np.clip(q, rig.lower, rig.upper) if self.prev_position is None
                     else self.prev_position)
        check_guarantees(out.target, np.full(rig.n, np.nan), reference, q, dq, out.kp, out.kd,
                         lower, upper, rig.tau, rig.layer.max_step_rad)
        self.prev_position = out.target.copy()


def joint_vector(n, default, lower, upper):
    near = st.lists(st.floats(-1.0, 1.0), min_size=n, max_size=n).map(
        lambda v: np.clip(default + 2.0 * np.array(v), lower - 0.3, upper + 0.3))
    edge = st.lists(st.sampled_from([0, 1]), min_size=n, max_size=n).map(
        lambda v: np.where(np.array(v) == 1, upper + 0.05, lower - 0.05))
    broken = st.sampled_from(WILD).map(lambda w: np.where(np.arange(n) == 3, w, default))
    return st.one_of(*([near] * 30), edge, broken)


@st.composite
def tick_spec(draw, rig):
    n = rig.n
    action = draw(st.sampled_from(["cmd"] * 12 + ["none", "none", "estop", "reset", "start",
                                                  "start", "stand"]))
    kind = draw(st.sampled_from(["near"] * 12 + ["huge", "wild"]))
    if kind == "near":
        targets = rig.default + np.array(draw(st.lists(st.floats(-2.5, 2.5), min_size=n,
                                                       max_size=n)))
    elif kind == "huge":
        targets = np.full(n, draw(st.sampled_from([1e6, -1e9, 1e300])))
    else:
        targets = rig.default.copy()
        targets[draw(st.integers(0, n - 1))] = draw(st.sampled_from(WILD))
    gains = draw(st.sampled_from(["none"] * 6 + ["odd", "odd", "nan"]))
    kp = kd = None
    if gains == "odd":
        kp = np.full(n, draw(st.floats(-10.0, 1000.0)))
        kd = np.full(n, draw(st.floats(-1.0, 50.0)))
    elif gains == "nan":
        kp = np.full(n, np.nan)
    return dict(
        action=action, targets=targets, kp=kp, kd=kd,
        q=draw(joint_vector(n, rig.default, rig.lower, rig.upper)),
        dq=draw(st.one_of(*[st.lists(st.floats(-40.0, 40.0), min_size=n, max_size=n).map(
            np.array)] * 4, st.sampled_from([1e6, -1e6]).map(lambda v: np.full(n, v)))),
        depth_age_ms=draw(st.sampled_from([0.0] * 12 + [400.0, None])),
        imu_age_ms=draw(st.sampled_from([0.0] * 40 + [80.0])),
        roll=draw(st.sampled_from([0.0] * 30 + [0.3, 1.4])))


_RIG = Rig(**PERMISSIVE)


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(st.lists(tick_spec(_RIG), min_size=1, max_size=60))
def test_every_command_is_safe(stream):
    checker = Checker()
    layer = checker.rig.layer
    layer.request_start()
    for spec in stream:
        action = spec["action"]
        if action == "estop":
            layer.estop("property")
        elif action == "reset":
            layer.reset_estop()
        elif action == "start":
            layer.request_start()
        elif action == "stand":
            layer.request_stand()
        targets = None if action == "none" else spec["targets"]
        quat = np.array([np.cos(spec["roll"] / 2), np.sin(spec["roll"] / 2), 0.0, 0.0])
        checker.step(spec["q"], spec["dq"], targets, spec["kp"], spec["kd"], spec["depth_age_ms"],
                     spec["imu_age_ms"], quat)
    for mode in checker.modes_seen:
        event(f"reached {mode}")


def test_long_random_stream_reaches_policy_and_stays_safe():
    """A seeded 3000-tick stream with mostly sane data so every mode is visited many times."""
    rng = np.random.default_rng(1234)
    # Independent noise every tick is an implausible command stream by design (it exercises the
    # filter); the plausibility watchdog would end most policy stretches, so it is off here.
    checker = Checker(implausible_after_ticks=0)
    rig, layer = checker.rig, checker.rig.layer
    layer.request_start()
    q = rig.default.copy()
    for _k in range(3000):
        r = rng.random()
        if r < 0.002:
            layer.estop("random")
        elif r < 0.006:
            layer.reset_estop()
        elif r < 0.008:
            layer.request_stand()
        elif r < 0.03:
            layer.request_start()
        targets = rig.default + rng.normal(0.0, 0.4, rig.n)
        if rng.random() < 0.01:
            targets[rng.integers(rig.n)] = rng.choice(WILD)
        if rng.random() < 0.05:
            targets = None
        # Joints track the last command loosely, with noise and occasional shoves.
        last = rig.history[-1].target if rig.history else q
        q = np.clip(0.7 * q + 0.3 * last + rng.normal(0, 0.02, rig.n), rig.lower - 0.2,
                    rig.upper + 0.2)
        dq = rng.normal(0.0, 3.0, rig.n) + (rng.random() < 0.02) * rng.normal(0, 30.0, rig.n)
        depth_age = 400.0 if rng.random() < 0.01 else 0.0
        imu_age = 80.0 if rng.random() < 0.003 else 0.0
        checker.step(q.copy(), dq, targets, None, None, depth_age, imu_age,
                     np.array([1.0, 0.0, 0.0, 0.0]))
    counters = layer.counters()
    assert {"idle", "stand_up", "ready", "policy", "stand", "damping", "estop"} <= \
        checker.modes_seen, checker.modes_seen
    assert counters["ticks.policy"] > 500
    assert counters["check.torque_clamped"] > 0 and counters["check.step_capped"] > 0

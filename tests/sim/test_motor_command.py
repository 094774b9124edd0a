"""``MujocoWorld.set_motor_command``: a motor's own PD law, as the Go2's firmware runs it.

``tau = tau_ff + kp·(q* − q) + kd·(dq* − dq)``, from the state the physics step starts in, clipped
to the torque limit; a zero gain drops its term whatever its target (Unitree's stop markers).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mujoco")

from hal.sim import MujocoWorld, MujocoWorldConfig  # noqa: E402

POS_STOP_F, VEL_STOP_F = 2.146e9, 16000.0  # Unitree's "no target" markers (unitree_go2_const.py)


@pytest.fixture
def world(go2):
    w = MujocoWorld(go2, MujocoWorldConfig(camera_fps=0.0, settle_s=0.2, fixed_base=True,
                                           base_height_m=0.6, physics_dt_s=0.002))
    yield w
    w.close()


def test_the_applied_torque_is_the_firmware_pd_law(world):
    before = world.joint_state()
    q_star = before.position_rad + np.linspace(-0.05, 0.05, 12)
    dq_star = np.linspace(0.3, -0.3, 12)
    kp, kd = np.full(12, 20.0), np.full(12, 0.6)
    tau_ff = np.linspace(-1.0, 1.0, 12)
    world.set_motor_command(q_star, dq_star, kp, kd, tau_ff)
    world.advance(0.002)  # one physics step: its torque comes from the state it started in
    applied = world.joint_state().torque_nm
    for i in range(12):  # by hand, joint by joint
        expected = tau_ff[i] + kp[i] * (q_star[i] - before.position_rad[i]) \
            + kd[i] * (dq_star[i] - before.velocity_rad_s[i])
        assert applied[i] == pytest.approx(expected, abs=1e-9)


def test_zero_gains_drop_their_terms_and_the_stop_markers_apply_nothing(world):
    n = 12
    world.advance(0.01)
    # Damping as the backend sends it: q* = POS_STOP_F with kp 0, dq* = 0, kd 1.5.
    world.set_motor_command(np.full(n, POS_STOP_F), np.zeros(n), np.zeros(n), np.full(n, 1.5),
                            np.zeros(n))
    before = world.joint_state()
    world.advance(0.002)
    np.testing.assert_allclose(world.joint_state().torque_nm, -1.5 * before.velocity_rad_s, atol=1e-9)
    # An unused slot: both markers, no gains: no torque at all.
    world.set_motor_command(np.full(n, POS_STOP_F), np.full(n, VEL_STOP_F), np.zeros(n), np.zeros(n),
                            np.zeros(n))
    world.advance(0.002)
    np.testing.assert_array_equal(world.joint_state().torque_nm, np.zeros(n))


def test_a_non_finite_term_is_refused(world):
    n = 12
    with pytest.raises(ValueError, match="tau"):
        world.set_motor_command(np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n), np.full(n, np.nan))

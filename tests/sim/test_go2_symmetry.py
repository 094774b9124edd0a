"""The simulated Go2 is its own left-right mirror image, and a symmetric trot walks straight.

The mirror is y -> -y (M = diag(1, -1, 1)). A right leg at joint angles (hip, thigh, calf) is
mirrored by the left leg at (-hip, thigh, calf): hip axes are x on both sides (an axial vector
mirrors to -M a, so the same x axis turns the other way), thigh and calf axes are y (mirrored onto
themselves). Everything is compared in the world frame of the compiled model, after forward
kinematics at mirrored poses, so the test sees what the physics sees (body frames, centres of
mass, inertia tensors, collision geoms, contact parameters, joints, limits, motors).

The trunk's only asymmetry is the published products of inertia ixy and iyz of the training URDF
(training simulated them); the test pins them to those two numbers.
"""

from __future__ import annotations

import numpy as np
import pytest

mujoco = pytest.importorskip("mujoco")  # the [sim] extra

from benchmarks.gait_drift import (  # noqa: E402
    TrotGait,
    measure_trot_drift,
    symmetric_trunk_geometry,
)
from hal.sim.mjcf import build_mjcf  # noqa: E402

MIRROR = np.diag([1.0, -1.0, 1.0])
PAIRS = (("FR", "FL"), ("RR", "RL"))
PARTS = ("hip", "thigh", "calf", "foot")
# The training URDF's trunk products of inertia (go2.urdf: ixy 0.00012166, iyz -3.12E-05).
TRUNK_IXY, TRUNK_IYZ = 0.00012166, -3.12e-05


def _left(name: str) -> str:
    return name.replace("FR", "FL").replace("RR", "RL")


@pytest.fixture(scope="module")
def model(go2):
    return mujoco.MjModel.from_xml_string(build_mjcf(go2, scene="flat"))


def _pose(model, go2, right_angles: dict[str, tuple[float, float, float]]):
    """Data at a mirrored pose: right legs at ``right_angles``, left legs at (-hip, thigh, calf)."""
    d = mujoco.MjData(model)
    d.qpos[:7] = [0, 0, 1, 1, 0, 0, 0]
    for right, left in PAIRS:
        hip, thigh, calf = right_angles[right]
        for leg, sign in ((right, 1.0), (left, -1.0)):
            for part, q in (("hip", sign * hip), ("thigh", thigh), ("calf", calf)):
                d.qpos[model.joint(f"{leg}_{part}_joint").qposadr[0]] = q
    mujoco.mj_forward(model, d)
    return d


def _poses(go2):
    default = dict(zip(go2.joint_names_policy, go2.default_angles))
    yield {leg: tuple(default[f"{leg}_{p}_joint"] for p in ("hip", "thigh", "calf"))
           for leg in ("FR", "RR")}
    rng = np.random.default_rng(7)
    for _ in range(3):
        yield {leg: (rng.uniform(-0.8, 0.8), rng.uniform(0.0, 2.0), rng.uniform(-2.5, -1.0))
               for leg in ("FR", "RR")}


def _world_inertia(model, d, body: int) -> np.ndarray:
    r = d.ximat[body].reshape(3, 3)
    return r @ np.diag(model.body_inertia[body]) @ r.T


def test_legs_are_mirror_images_in_mass_inertia_and_geometry(model, go2):
    for d in (_pose(model, go2, angles) for angles in _poses(go2)):
        for right, left in PAIRS:
            for part in PARTS:
                a, b = model.body(f"{right}_{part}").id, model.body(f"{left}_{part}").id
                assert model.body_mass[a] == model.body_mass[b], part
                np.testing.assert_allclose(d.xpos[b], MIRROR @ d.xpos[a], atol=1e-12)
                np.testing.assert_allclose(d.xipos[b], MIRROR @ d.xipos[a], atol=1e-12)
                np.testing.assert_allclose(_world_inertia(model, d, b),
                                           MIRROR @ _world_inertia(model, d, a) @ MIRROR,
                                           atol=1e-12)
            for part in ("hip", "thigh", "calf", "foot"):
                ga, gb = model.geom(f"{right}_{part}").id, model.geom(f"{left}_{part}").id
                assert model.geom_type[ga] == model.geom_type[gb]
                np.testing.assert_array_equal(model.geom_size[ga], model.geom_size[gb])
                np.testing.assert_allclose(d.geom_xpos[gb], MIRROR @ d.geom_xpos[ga], atol=1e-12)
                # A capsule/cylinder's axis (the geom's z) mirrors as a direction.
                za, zb = d.geom_xmat[ga].reshape(3, 3)[:, 2], d.geom_xmat[gb].reshape(3, 3)[:, 2]
                assert abs(abs(float(zb @ (MIRROR @ za))) - 1.0) < 1e-12
                for field in ("geom_friction", "geom_solref", "geom_solimp", "geom_priority",
                              "geom_condim", "geom_contype", "geom_conaffinity", "geom_margin"):
                    np.testing.assert_array_equal(getattr(model, field)[ga],
                                                  getattr(model, field)[gb], err_msg=field)
            np.testing.assert_allclose(d.site(f"{left}_foot").xpos,
                                       MIRROR @ d.site(f"{right}_foot").xpos, atol=1e-12)


def test_joints_limits_and_motors_are_mirror_images(model, go2):
    d = _pose(model, go2, next(iter(_poses(go2))))
    for right, left in PAIRS:
        for part in ("hip", "thigh", "calf"):
            ja, jb = model.joint(f"{right}_{part}_joint"), model.joint(f"{left}_{part}_joint")
            axis_a, axis_b = d.xaxis[ja.id], d.xaxis[jb.id]
            mirrored = -MIRROR @ axis_a  # an axial vector
            sign = float(np.sign(axis_b @ mirrored))
            np.testing.assert_allclose(axis_b, sign * mirrored, atol=1e-12)
            assert sign == (-1.0 if part == "hip" else 1.0)
            # q_left = sign * q_right maps the right joint's range onto the left's.
            np.testing.assert_allclose(sorted(sign * ja.range), jb.range, atol=1e-12)
            i, k = go2.joint_names_policy.index(ja.name), go2.joint_names_policy.index(jb.name)
            assert go2.default_angles[k] == pytest.approx(sign * go2.default_angles[i])
            assert go2.kp[i] == go2.kp[k] and go2.kd[i] == go2.kd[k]
            for field in ("dof_armature", "dof_damping", "dof_frictionloss"):
                assert getattr(model, field)[ja.dofadr[0]] == getattr(model, field)[jb.dofadr[0]]
            np.testing.assert_array_equal(model.actuator(ja.name).ctrlrange,
                                          model.actuator(jb.name).ctrlrange)


def test_trunk_is_symmetric_but_for_the_published_products_of_inertia(model, go2):
    d = _pose(model, go2, next(iter(_poses(go2))))
    trunk = model.body("trunk").id
    assert d.xipos[trunk][1] == 0.0
    inertia = _world_inertia(model, d, trunk)
    asymmetry = inertia - MIRROR @ inertia @ MIRROR  # 2 * (the y-odd entries: ixy, iyz)
    expected = np.zeros((3, 3))
    expected[0, 1] = expected[1, 0] = 2 * TRUNK_IXY
    expected[1, 2] = expected[2, 1] = 2 * TRUNK_IYZ
    np.testing.assert_allclose(asymmetry, expected, atol=1e-9)
    assert abs(TRUNK_IXY) < 0.005 * model.body_inertia[trunk].min()
    for g in np.flatnonzero(model.geom_bodyid == trunk):
        assert d.geom_xpos[g][1] == pytest.approx(0.0, abs=1e-12)
    for site in ("imu", "depth_camera"):
        assert d.site(site).xpos[1] == pytest.approx(0.0, abs=1e-12)


def test_symmetric_trot_walks_straight():
    """An open-loop trot (sinusoids around the default pose) curves less than 3 cm per metre.

    The mirrored run (the other diagonal pair first) drifts to the other side by nearly the same
    amount: the mean of the two, the drift the model itself adds, stays under 3 mm per metre.
    """
    gait = TrotGait()
    plain = measure_trot_drift(gait=gait)
    mirrored = measure_trot_drift(gait=gait, mirrored=True)
    for run in (plain, mirrored):
        assert run.forward_m > 1.5  # it walks: ~0.27 m/s over 7 s
        assert run.curvature < 0.03, run
        assert abs(run.yaw_change_rad) < 0.05, run
    model_lateral = (plain.lateral_m + mirrored.lateral_m) / 2
    assert abs(model_lateral) / plain.forward_m < 0.003
    assert abs(plain.yaw_change_rad + mirrored.yaw_change_rad) / 2 < 0.005


def test_without_the_trunk_products_the_trot_and_its_mirror_are_exact_mirror_images():
    """Solver, contacts, integrator, PD path and joint order add no asymmetry of their own."""
    gait = TrotGait()
    geometry = symmetric_trunk_geometry()
    plain = measure_trot_drift(gait=gait, geometry=geometry)
    mirrored = measure_trot_drift(gait=gait, mirrored=True, geometry=geometry)
    assert plain.forward_m > 1.5
    assert plain.forward_m == pytest.approx(mirrored.forward_m, abs=1e-9)
    assert plain.lateral_m == pytest.approx(-mirrored.lateral_m, abs=1e-9)
    assert plain.yaw_change_rad == pytest.approx(-mirrored.yaw_change_rad, abs=1e-9)

"""The simulated Go2 is the Go2 the policy trained on, checked against tables typed by hand.

Two independent tables, transcribed by hand (not from ``hal.sim.mjcf``):

- ``UNITREE_MJCF``: Unitree's published MuJoCo model, ``unitree_robots/go2/go2.xml`` of
  unitreerobotics/unitree_mujoco (BSD-3), read from the fork Renkunzhao/unitree_mujoco at commit
  0283dec21fc33ed5ee68953470b36f01ccad80b5 (the upstream file plus sensors) and cross-checked
  against lupinjia/unitree_mujoco 7ddecd732db39fe0a4ffdb5701ba7748cc48bdbc. It gives principal
  inertias with a ``quat``; the test rebuilds the tensors from them.
- ``TRAINING_URDF``: the URDF legged_gym / extreme-parkour load into Isaac Gym for the Go2,
  ``resources/robots/go2/urdf/go2.urdf`` of unitree_rl_gym (Unitree's go2_description), read at
  Tipriest/unitree_rl_gym bdbbf3f7513c3522ed91c6a880be1b07231009be.

The two agree on the trunk, hips, thighs, kinematics, limits and foot sphere. They differ on the
calf: the URDF has a 0.154 kg calf and a 0.04 kg foot link (0.194 kg below the knee), Unitree's
MJCF a 0.241352 kg calf with a massless foot. The policy felt the URDF's, so the model follows it.
Joint dynamics and contacts follow training's simulator, not Unitree's MJCF (see hal.sim.mjcf).
"""

from __future__ import annotations

import numpy as np
import pytest

mujoco = pytest.importorskip("mujoco")  # the [sim] extra

from hal.sim import MujocoWorld, MujocoWorldConfig  # noqa: E402
from hal.sim.mjcf import build_mjcf  # noqa: E402

# ----------------------------------------------------------------------------------------------
# Unitree's go2.xml, by hand. Per body: (pos in parent, inertial pos, quat (w x y z), mass,
# diaginertia). Left legs as written for FL/RL, right legs for FR/RR.
UNITREE_MJCF = {
    "trunk": ((0, 0, 0), (0.021112, 0, -0.005366),
              (-0.000543471, 0.713435, -0.00173769, 0.700719), 6.921,
              (0.107027, 0.0980771, 0.0244531)),
    "FL_hip": ((0.1934, 0.0465, 0), (-0.0054, 0.00194, -0.000105),
               (0.497014, 0.499245, 0.505462, 0.498237), 0.678,
               (0.00088403, 0.000596003, 0.000479967)),
    "FR_hip": ((0.1934, -0.0465, 0), (-0.0054, -0.00194, -0.000105),
               (0.498237, 0.505462, 0.499245, 0.497014), 0.678,
               (0.00088403, 0.000596003, 0.000479967)),
    "RL_hip": ((-0.1934, 0.0465, 0), (0.0054, 0.00194, -0.000105),
               (0.505462, 0.498237, 0.497014, 0.499245), 0.678,
               (0.00088403, 0.000596003, 0.000479967)),
    "RR_hip": ((-0.1934, -0.0465, 0), (0.0054, -0.00194, -0.000105),
               (0.499245, 0.497014, 0.498237, 0.505462), 0.678,
               (0.00088403, 0.000596003, 0.000479967)),
    "FL_thigh": ((0, 0.0955, 0), (-0.00374, -0.0223, -0.0327),
                 (0.829533, 0.0847635, -0.0200632, 0.551623), 1.152,
                 (0.00594973, 0.00584149, 0.000878787)),
    "FR_thigh": ((0, -0.0955, 0), (-0.00374, 0.0223, -0.0327),
                 (0.551623, -0.0200632, 0.0847635, 0.829533), 1.152,
                 (0.00594973, 0.00584149, 0.000878787)),
    "RL_thigh": ((0, 0.0955, 0), (-0.00374, -0.0223, -0.0327),
                 (0.829533, 0.0847635, -0.0200632, 0.551623), 1.152,
                 (0.00594973, 0.00584149, 0.000878787)),
    "RR_thigh": ((0, -0.0955, 0), (-0.00374, 0.0223, -0.0327),
                 (0.551623, -0.0200632, 0.0847635, 0.829533), 1.152,
                 (0.00594973, 0.00584149, 0.000878787)),
}
UNITREE_CALF_MASS_KG = 0.241352  # the calf body; its FL_foot body has no mass
UNITREE_CALF_POS = (0, 0, -0.213)
UNITREE_FOOT_BODY_POS = (0, 0, -0.213)  # in the calf
UNITREE_FOOT_GEOM = {"size": 0.022, "pos_in_calf": (-0.002, 0, -0.213), "friction": 0.4,
                     "condim": 6}
UNITREE_JOINT_DEFAULTS = {"damping": 0.1, "armature": 0.01, "frictionloss": 0.2}
UNITREE_AXES = {"hip": (1, 0, 0), "thigh": (0, 1, 0), "calf": (0, 1, 0)}
UNITREE_RANGES = {"hip": (-1.0472, 1.0472), "F_thigh": (-1.5708, 3.4907),
                  "R_thigh": (-0.5236, 4.5379), "calf": (-2.7227, -0.83776)}
UNITREE_CTRLRANGE = {"hip": 23.7, "thigh": 23.7, "calf": 45.43}
UNITREE_TRUNK_BOX = (0.1881, 0.04675, 0.057)
UNITREE_HEAD = {"cylinder": ((0.05, 0.045), (0.285, 0, 0.01)),
                "sphere": ((0.047,), (0.293, 0, -0.06))}
UNITREE_IMU_POS = (-0.02557, 0, 0.04232)
UNITREE_HIP_CYLINDER = {"size": (0.046, 0.02), "pos_y": 0.08}  # at y = ±0.08 in the hip frame

# The training URDF's links, by hand: (origin xyz, mass, ixx ixy ixz iyy iyz izz).
TRAINING_URDF = {
    "trunk": ((0.021112, 0, -0.005366), 6.921,
              (0.02448, 0.00012166, 0.0014849, 0.098077, -3.12e-05, 0.107)),
    "FL_calf": ((0.00548, -0.000975, -0.115), 0.154,
                (0.00108, 3.4e-07, 1.72e-05, 0.0011, 8.28e-06, 3.29e-05)),
    "FR_calf": ((0.00548, 0.000975, -0.115), 0.154,
                (0.00108, -3.4e-07, 1.72e-05, 0.0011, -8.28e-06, 3.29e-05)),
    "RL_calf": ((0.00548, -0.000975, -0.115), 0.154,
                (0.00108, 3.4e-07, 1.72e-05, 0.0011, 8.28e-06, 3.29e-05)),
    "RR_calf": ((0.00548, 0.000975, -0.115), 0.154,
                (0.00108, -3.4e-07, 1.72e-05, 0.0011, -8.28e-06, 3.29e-05)),
    "FL_thigh": ((-0.00374, -0.0223, -0.0327), 1.152,
                 (0.00584, 8.72e-05, -0.000289, 0.0058, 0.000808, 0.00103)),
    "FR_hip": ((-0.0054, -0.00194, -0.000105), 0.678,
               (0.00048, 3.01e-06, 1.11e-06, 0.000884, 1.42e-06, 0.000596)),
    "RR_hip": ((0.0054, -0.00194, -0.000105), 0.678,
               (0.00048, -3.01e-06, -1.11e-06, 0.000884, 1.42e-06, 0.000596)),
}
TRAINING_FOOT = {"mass": 0.04, "inertia": 9.6e-06, "sphere": 0.022, "pos": (-0.002, 0, 0)}
# legged_gym's asset options and the terrain training walked on (extreme-parkour terrain cfg).
TRAINING_ARMATURE = 0.0
TRAINING_TERRAIN_FRICTION = 1.0

LEGS = ("FR", "FL", "RR", "RL")


def _quat_to_matrix(w: float, x: float, y: float, z: float) -> np.ndarray:
    """Rotation matrix of a quaternion (normalised here; typed quaternions carry rounding)."""
    n = np.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / n, x / n, y / n, z / n
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def _tensor(quat, diag) -> np.ndarray:
    r = _quat_to_matrix(*quat)
    return r @ np.diag(diag) @ r.T


def _urdf_tensor(ixx, ixy, ixz, iyy, iyz, izz) -> np.ndarray:
    return np.array([[ixx, ixy, ixz], [ixy, iyy, iyz], [ixz, iyz, izz]])


def _mass_matrix(model, data) -> np.ndarray:
    """The dense joint-space inertia matrix (MuJoCo 4: mj_fullM(m, d, dst); 3.x: (m, dst, qM))."""
    full = np.zeros((model.nv, model.nv))
    try:
        mujoco.mj_fullM(model, data, full)
    except TypeError:
        mujoco.mj_fullM(model, full, data.qM)
    return full


@pytest.fixture(scope="module")
def model(go2):
    return mujoco.MjModel.from_xml_string(build_mjcf(go2))


def _our_tensor(model, body: str) -> np.ndarray:
    b = model.body(body)
    return _tensor(b.iquat, b.inertia)


@pytest.mark.parametrize("body", list(UNITREE_MJCF))
def test_trunk_hips_thighs_match_unitree_mjcf(model, body):
    pos, ipos, quat, mass, diag = UNITREE_MJCF[body]
    b = model.body(body)
    np.testing.assert_allclose(b.pos, pos, atol=1e-12)
    np.testing.assert_allclose(b.ipos, ipos, atol=1e-12)
    assert b.mass[0] == pytest.approx(mass, rel=1e-9)
    # Principal inertias sorted alike, and the full tensor rebuilt from Unitree's quat.
    np.testing.assert_allclose(sorted(b.inertia), sorted(diag), rtol=1e-5)
    np.testing.assert_allclose(_our_tensor(model, body), _tensor(quat, diag),
                               atol=2e-5 * max(diag))


@pytest.mark.parametrize("body", list(TRAINING_URDF))
def test_links_match_the_training_urdf(model, body):
    ipos, mass, inertia = TRAINING_URDF[body]
    b = model.body(body)
    np.testing.assert_allclose(b.ipos, ipos, atol=1e-12)
    assert b.mass[0] == pytest.approx(mass, rel=1e-9)
    np.testing.assert_allclose(_our_tensor(model, body), _urdf_tensor(*inertia),
                               atol=1e-9 * 1e3 * max(inertia))


def test_calf_and_foot_follow_the_urdf_not_unitrees_mjcf(model):
    """Below the knee: the URDF's 0.154 + 0.04 kg (training), not the MJCF's 0.241352 kg."""
    for leg in LEGS:
        calf, foot = model.body(f"{leg}_calf"), model.body(f"{leg}_foot")
        np.testing.assert_allclose(calf.pos, UNITREE_CALF_POS, atol=1e-12)
        np.testing.assert_allclose(foot.pos, UNITREE_FOOT_BODY_POS, atol=1e-12)
        assert foot.mass[0] == pytest.approx(TRAINING_FOOT["mass"])
        np.testing.assert_allclose(foot.inertia, [TRAINING_FOOT["inertia"]] * 3, rtol=1e-9)
        below_knee = calf.mass[0] + foot.mass[0]
        assert below_knee == pytest.approx(0.194, rel=1e-9)
        assert below_knee != pytest.approx(UNITREE_CALF_MASS_KG, rel=0.1)
    total = 6.921 + 4 * (0.678 + 1.152 + 0.154 + 0.04)
    assert float(np.sum(model.body_mass)) == pytest.approx(total, rel=1e-9)


def test_joint_axes_ranges_and_motors_match_unitree_mjcf(model):
    for leg in LEGS:
        for part in ("hip", "thigh", "calf"):
            j = model.joint(f"{leg}_{part}_joint")
            np.testing.assert_allclose(j.axis, UNITREE_AXES[part], atol=1e-12)
            key = f"{leg[0]}_thigh" if part == "thigh" else part
            np.testing.assert_allclose(j.range, UNITREE_RANGES[key], atol=1e-12)
            limit = UNITREE_CTRLRANGE[part]
            np.testing.assert_allclose(model.actuator(f"{leg}_{part}_joint").ctrlrange,
                                       [-limit, limit], atol=1e-12)


def test_foot_sphere_hip_cylinder_trunk_head_and_imu_match_unitree_mjcf(model, go2):
    d = mujoco.MjData(model)
    d.qpos[:7] = [0, 0, 1, 1, 0, 0, 0]
    d.qpos[7:] = 0.0
    mujoco.mj_kinematics(model, d)
    for leg in LEGS:
        foot = model.geom(f"{leg}_foot")
        assert foot.type[0] == mujoco.mjtGeom.mjGEOM_SPHERE
        assert foot.size[0] == pytest.approx(UNITREE_FOOT_GEOM["size"])
        calf_pos = d.body(f"{leg}_calf").xpos
        np.testing.assert_allclose(d.geom(f"{leg}_foot").xpos - calf_pos,
                                   UNITREE_FOOT_GEOM["pos_in_calf"], atol=1e-12)
        hip = model.geom(f"{leg}_hip")
        assert hip.type[0] == mujoco.mjtGeom.mjGEOM_CYLINDER
        np.testing.assert_allclose(hip.size[:2], UNITREE_HIP_CYLINDER["size"], atol=1e-12)
        side = 1.0 if leg[1] == "L" else -1.0
        np.testing.assert_allclose(hip.pos, [0, side * UNITREE_HIP_CYLINDER["pos_y"], 0],
                                   atol=1e-12)
    trunk_geoms = [g for g in range(model.ngeom) if model.geom_bodyid[g] == model.body("trunk").id]
    by_type = {int(model.geom_type[g]): g for g in trunk_geoms}
    box = by_type[mujoco.mjtGeom.mjGEOM_BOX]
    np.testing.assert_allclose(model.geom_size[box], UNITREE_TRUNK_BOX, atol=1e-12)
    for kind, (size, pos) in UNITREE_HEAD.items():
        g = by_type[getattr(mujoco.mjtGeom, f"mjGEOM_{kind.upper()}")]
        np.testing.assert_allclose(model.geom_size[g][:len(size)], size, atol=1e-12)
        np.testing.assert_allclose(model.geom_pos[g], pos, atol=1e-12)
    np.testing.assert_allclose(model.site("imu").pos, UNITREE_IMU_POS, atol=1e-12)


def test_joint_dynamics_follow_training_not_unitrees_mjcf(model):
    """No damping or friction loss (the URDF has no <dynamics>); armature as stability needs."""
    for leg in LEGS:
        for part in ("hip", "thigh", "calf"):
            j = model.joint(f"{leg}_{part}_joint")
            dof = j.dofadr[0]
            assert model.dof_damping[dof] == 0.0 != UNITREE_JOINT_DEFAULTS["damping"]
            assert model.dof_frictionloss[dof] == 0.0 != UNITREE_JOINT_DEFAULTS["frictionloss"]
            assert TRAINING_ARMATURE < model.dof_armature[dof] < UNITREE_JOINT_DEFAULTS["armature"]


@pytest.mark.parametrize("fixed_base", [True, False])
def test_armature_keeps_the_explicit_pd_damping_stable_with_margin(go2, fixed_base):
    """Explicit damping is stable while kd dt eig(M^-1) < 2; the model keeps it below 1 in any pose.

    Without armature (training's value) the Go2's calves exceed 2 at kd 1, dt 5 ms: the test
    shows that too, so the armature is there for a reason and no larger than needed (> 0.5).
    """
    m = mujoco.MjModel.from_xml_string(build_mjcf(go2, fixed_base=fixed_base))
    bare = mujoco.MjModel.from_xml_string(build_mjcf(go2, fixed_base=fixed_base))
    bare.dof_armature[:] = 0.0
    kd, dt = max(go2.kd), 0.005
    rng = np.random.default_rng(0)
    lo, hi = m.jnt_range[-12:].T
    worst, worst_bare = 0.0, 0.0
    for model_, is_bare in ((m, False), (bare, True)):
        d = mujoco.MjData(model_)
        nj = 6 if not fixed_base else 0
        for _ in range(100):
            if not fixed_base:
                d.qpos[3:7] = [1, 0, 0, 0]
            d.qpos[-12:] = rng.uniform(lo, hi)
            mujoco.mj_forward(model_, d)
            full = _mass_matrix(model_, d)
            lam = float(np.linalg.eigvalsh(np.linalg.inv(full)[nj:, nj:]).max())
            if is_bare:
                worst_bare = max(worst_bare, kd * dt * lam)
            else:
                worst = max(worst, kd * dt * lam)
    assert 0.5 < worst < 1.0
    assert worst_bare > 2.0


def test_foot_contact_uses_training_friction_and_stiff_contacts(go2):
    """Standing on the floor: each foot touches with mu 1.0 and sinks about 1 mm, not 2.6 mm."""
    cfg = MujocoWorldConfig(scene="flat", camera_fps=0, settle_s=1.5)
    with MujocoWorld(go2, cfg) as world:
        m, d = world.model, world.data
        feet = {m.geom(f"{leg}_foot").id for leg in LEGS}
        touching = [i for i in range(d.ncon)
                    if {int(d.contact[i].geom[0]), int(d.contact[i].geom[1])} & feet]
        assert len(touching) == 4
        for i in touching:
            c = d.contact[i]
            assert c.friction[0] == pytest.approx(TRAINING_TERRAIN_FRICTION)
            assert c.friction[0] != pytest.approx(UNITREE_FOOT_GEOM["friction"])
            assert c.dim == 3
            assert -0.0015 < c.dist < 0.0


def test_feet_stick_inside_the_friction_cone_as_in_training(go2):
    """PhysX static friction holds a foot whose force is inside the cone; so does the model.

    A standing Go2 holds its default pose (MuJoCo's default soft friction let the feet slide
    apart while settling: hips 0.14 rad off their defaults), and a steady 40 N sideways push on
    the trunk (a quarter of mu N) moves it a few centimetres and then no more: the feet creep
    less than 1 mm/s (soft friction: 2-3 cm/s, a sideways drift no policy met in training).
    """
    cfg = MujocoWorldConfig(scene="flat", camera_fps=0, settle_s=2.0)
    with MujocoWorld(go2, cfg) as world:
        default = np.asarray(go2.to_hardware(go2.default_angles))
        hips = [i for i, n in enumerate(go2.joint_names_hardware) if n.endswith("hip_joint")]
        np.testing.assert_allclose(world.joint_state().position_rad[hips], default[hips], atol=0.02)
        world.data.xfrc_applied[world.model.body("trunk").id, 1] = 40.0
        world.advance(0.5)
        feet = [world.data.site(f"{leg}_foot").xpos[1] for leg in LEGS]
        world.advance(2.0)
        creep_m_s = np.mean([world.data.site(f"{leg}_foot").xpos[1] - y
                             for leg, y in zip(LEGS, feet)]) / 2.0
        assert abs(creep_m_s) < 1e-3
        assert world.base_position_m[1] < 0.06

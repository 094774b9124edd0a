"""MJCF of a Go2-like (or A1-like) quadruped built from primitive geoms and a robot definition.

The kinematics, masses, centres of mass and full inertia tensors are those of the robot the policy
trained on: the URDF that legged_gym / extreme-parkour load into Isaac Gym (for the Go2,
``resources/robots/go2/urdf/go2.urdf`` of unitree_rl_gym, which is Unitree's ``go2_description``).
The shapes are capsules, boxes, cylinders and spheres, so the model needs no meshes and
ray-casts fast; mass properties are explicit ``<inertial>`` elements, so they match exactly.
Joint names, limits and torque limits come from the :class:`~hal.robot.RobotConfig`, so the
model always matches the TOML it was built from. ``tests/sim/test_go2_model_vs_unitree.py``
compares the result with Unitree's published MJCF and the training URDF.

Where training's simulator (Isaac Gym / PhysX, legged_gym's asset options) and MuJoCo's defaults
differ, the model follows training:

- joints: no damping and no friction loss (the URDF has no ``<dynamics>``); Unitree's MJCF adds
  damping 0.1 and frictionloss 0.2, which the policy never felt. Armature: training had none
  (legged_gym ``asset.armature = 0``), but MuJoCo's explicit PD is unstable without it at a 5 ms
  step (see :attr:`QuadrupedGeometry.armature_kg_m2`): 0.004 kg m², the least with a 2x stability
  margin, against Unitree's 0.01;
- PD at the physics rate: torque-driven joints, one ``motor`` per joint with ``ctrlrange`` = ± the
  torque limit, the PD law recomputed in Python at every physics step (see :mod:`hal.sim.world`),
  as legged_gym's ``_compute_torques`` runs at every ``sim.dt`` substep of a policy step;
- contacts: PhysX contacts are rigid (``rest_offset`` 0); MuJoCo's default ``solref`` time
  constant of 0.02 s lets a standing Go2 sink millimetres into the ground. Robot contacts use
  ``solref`` 0.01 s (2 physics steps at 5 ms, the stiffest MuJoCo keeps stable);
- friction: PhysX averages the two shapes' coefficients; training's terrain has 1.0 and the
  robot's own coefficient is randomised around 1.0, so a foot meets the ground with 1.0. MuJoCo
  takes the larger coefficient, or the higher-priority geom's: the feet carry priority 1 and
  friction 1.0, so a foot's contact uses 1.0 whatever the scene geoms say. Contacts are
  ``condim`` 3 (sliding friction; PhysX has no rolling friction);
- static friction: a PhysX foot inside its friction cone sticks; MuJoCo's default soft
  friction lets it creep sideways under a steady sideways push (a drift no policy sees in
  training). Elliptic cones with ``impratio`` 100, as Unitree's MJCF has them, make it stick.

Regenerate the committed assets after changing this file::

    python -m hal.sim --write-assets
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

from hal.robot import RobotConfig
from hal.sim.scenes import LIGHT_XML, SCENE_GEOM_GROUP, TERRAIN_GEOM_GROUP, SceneBox, scene_xml
from hal.sim.terrains.grid import Terrain
from hal.sim.terrains.hfield import terrain_assets_xml, terrain_body_xml

__all__ = [
    "LEGS",
    "ROBOT_GEOM_GROUP",
    "IMU_SITE",
    "CAMERA_SITE",
    "TRUNK_BODY",
    "LinkInertia",
    "QuadrupedGeometry",
    "GO2_GEOMETRY",
    "A1_GEOMETRY",
    "geometry_for",
    "joint_name",
    "build_mjcf",
    "ASSET_SCENES",
    "asset_path",
]

LEGS: tuple[str, ...] = ("FR", "FL", "RR", "RL")
ROBOT_GEOM_GROUP = 1
IMU_SITE = "imu"
CAMERA_SITE = "depth_camera"
TRUNK_BODY = "trunk"
_PARTS = ("hip", "thigh", "calf")
ASSET_SCENES: tuple[str, ...] = ("flat", "parkour")
# Frictional over normal constraint impedance, with elliptic friction cones: PhysX's static
# friction holds a foot still under any force inside the cone; MuJoCo's default soft friction
# (pyramidal, impratio 1) lets a standing Go2 pushed sideways with 40 N (a quarter of mu N) creep
# 2-3 cm/s. Elliptic cones with impratio 100 (Unitree's go2.xml does the same) hold it to 0.1 mm/s.
_IMPRATIO = 100.0


@dataclass(frozen=True)
class LinkInertia:
    """Mass properties of one link, for the front-right leg (mirrored for the others).

    Attributes:
        mass_kg: the link's mass.
        com_m: centre of mass in the link frame.
        diag_inertia_kg_m2: (ixx, iyy, izz) about the centre of mass, link axes.
        products_kg_m2: (ixy, ixz, iyz) about the centre of mass, link axes (URDF convention).
    """

    mass_kg: float
    com_m: tuple[float, float, float]
    diag_inertia_kg_m2: tuple[float, float, float]
    products_kg_m2: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class QuadrupedGeometry:
    """Published dimensions and mass properties of a Unitree-style quadruped."""

    trunk_half_size_m: tuple[float, float, float]
    trunk: LinkInertia
    hip_offset_m: tuple[float, float]  # (x, |y|) of the hip joints in the trunk frame
    thigh_offset_m: float  # |y| of the thigh joint from the hip joint
    thigh_length_m: float
    calf_length_m: float
    foot_radius_m: float
    hip: LinkInertia
    thigh: LinkInertia
    calf: LinkInertia
    foot_mass_kg: float
    imu_position_m: tuple[float, float, float]
    hip_radius_m: float = 0.046
    hip_half_length_m: float = 0.02
    # |y| of the hip motor's collision cylinder from the hip joint (outboard, at the thigh motor).
    hip_geom_offset_m: float = 0.0
    thigh_radius_m: float = 0.02
    calf_radius_m: float = 0.013
    # x of the foot's collision sphere in the foot frame (the URDF's foot sphere sits 2 mm back).
    foot_offset_x_m: float = 0.0
    # The foot link's inertia (each axis); None: a solid sphere of the foot's mass and radius.
    foot_inertia_kg_m2: float | None = None
    # Extra trunk collision geoms (the Go2's head): (MJCF type, size, pos in the trunk frame).
    trunk_extra_geoms: tuple[tuple[str, tuple[float, ...], tuple[float, float, float]], ...] = ()
    # Joint dynamics training simulated: a URDF without <dynamics> (no damping, no friction);
    # see the module docstring. Training had no armature either (legged_gym asset.armature = 0),
    # but MuJoCo's explicit PD needs some: the damping step kd dt / I must stay below 2 for every
    # joint-space mode, and the Go2's lightest mode (calf + foot, other joints free) has
    # max eig(M^-1) = 529 /(kg m^2), so kd 1 at 5 ms gives 2.65 (the calves chatter). 0.004 brings
    # it to 0.85 (a 2x margin); Unitree's MJCF uses 0.01 (the rotor's reflected inertia).
    armature_kg_m2: float = 0.004
    joint_damping_nm_s: float = 0.0
    joint_frictionloss_nm: float = 0.0
    # Foot-ground friction training's nominal contact had (PhysX average of robot and terrain).
    foot_friction: float = 1.0
    # MuJoCo contact time constant (s) of robot contacts: stiff, as PhysX's rigid contacts.
    contact_timeconst_s: float = 0.01

    @property
    def total_mass_kg(self) -> float:
        leg = self.hip.mass_kg + self.thigh.mass_kg + self.calf.mass_kg + self.foot_mass_kg
        return self.trunk.mass_kg + 4 * leg


# The Go2 of the training URDF (unitree_rl_gym resources/robots/go2/urdf/go2.urdf, Unitree's
# go2_description): FR-leg links, full inertia tensors (the URDF's ixy, ixz, iyz included; the
# trunk's small ixy and iyz are the published CAD values, and training simulated them).
GO2_GEOMETRY = QuadrupedGeometry(
    trunk_half_size_m=(0.1881, 0.04675, 0.057),
    trunk=LinkInertia(6.921, (0.021112, 0.0, -0.005366), (0.02448, 0.098077, 0.107),
                      (0.00012166, 0.0014849, -3.12e-05)),
    hip_offset_m=(0.1934, 0.0465),
    thigh_offset_m=0.0955,
    thigh_length_m=0.213,
    calf_length_m=0.213,
    foot_radius_m=0.022,
    hip=LinkInertia(0.678, (-0.0054, -0.00194, -0.000105), (0.00048, 0.000884, 0.000596),
                    (3.01e-06, 1.11e-06, 1.42e-06)),
    thigh=LinkInertia(1.152, (-0.00374, 0.0223, -0.0327), (0.00584, 0.0058, 0.00103),
                      (-8.72e-05, -0.000289, -0.000808)),
    calf=LinkInertia(0.154, (0.00548, 0.000975, -0.115), (0.00108, 0.0011, 3.29e-05),
                     (-3.4e-07, 1.72e-05, -8.28e-06)),
    foot_mass_kg=0.04,
    imu_position_m=(-0.02557, 0.0, 0.04232),
    hip_geom_offset_m=0.08,
    foot_offset_x_m=-0.002,
    foot_inertia_kg_m2=9.6e-06,
    # Head_upper (cylinder r 0.05, length 0.09) and Head_lower (sphere r 0.047) of the URDF.
    trunk_extra_geoms=(("cylinder", (0.05, 0.045), (0.285, 0.0, 0.01)),
                       ("sphere", (0.047,), (0.293, 0.0, -0.06))),
)

A1_GEOMETRY = QuadrupedGeometry(
    trunk_half_size_m=(0.1335, 0.097, 0.057),
    trunk=LinkInertia(4.713, (0.012731, 0.002186, 0.000515), (0.01683993, 0.056579028, 0.064713601)),
    hip_offset_m=(0.183, 0.047),
    thigh_offset_m=0.08505,
    thigh_length_m=0.2,
    calf_length_m=0.2,
    foot_radius_m=0.02,
    hip=LinkInertia(0.696, (-0.003311, -0.000635, 3.1e-05), (0.000469246, 0.00080749, 0.000552929)),
    thigh=LinkInertia(1.013, (-0.003237, 0.022327, -0.027326), (0.005529065, 0.005139339, 0.001367788)),
    calf=LinkInertia(0.166, (0.006435, 0.0, -0.107388), (0.002997972, 0.003014022, 3.2426e-05)),
    foot_mass_kg=0.06,
    imu_position_m=(0.0, 0.0, 0.0),
)

_GEOMETRIES = {"go2": GO2_GEOMETRY, "a1": A1_GEOMETRY}


def geometry_for(robot: RobotConfig) -> QuadrupedGeometry:
    """The published geometry of the robot's simulator body: ``[robot] sim_body`` in its TOML,
    else the body named as the robot.

    Raises:
        ValueError: the simulator has no such body; the message names the robot, the body it
            looked for, the bodies there are, and how to choose one.
    """
    body = robot.sim_body or robot.name
    found = _GEOMETRIES.get(body)
    if found is None:
        asked = f"[robot] sim_body = {body!r}" if robot.sim_body else f"no [robot] sim_body, and " \
                                                                      f"no body named {body!r}"
        raise ValueError(
            f"robot {robot.name!r} ({robot.source}): the simulator has no body for it ({asked}); "
            f"it has bodies {sorted(_GEOMETRIES)}: set sim_body to one of them in the robot's "
            "[robot] table, or give the simulator a QuadrupedGeometry (MujocoWorldConfig.geometry)")
    return found


def joint_name(leg: str, part: str) -> str:
    return f"{leg}_{part}_joint"


def _check_robot(robot: RobotConfig) -> None:
    expected = {joint_name(leg, part) for leg in LEGS for part in _PARTS}
    if set(robot.joint_names_hardware) != expected:
        raise ValueError(
            f"robot {robot.name!r}: the simulator builds a 12-joint quadruped and needs exactly the "
            f"joints {sorted(expected)}; the definition has {list(robot.joint_names_hardware)}")
    feet = {f"{leg}_foot" for leg in LEGS}
    if set(robot.foot_names) != feet:
        raise ValueError(f"robot {robot.name!r}: foot_order must name the feet {sorted(feet)}, "
                         f"found {list(robot.foot_names)}")


def _v(*values: float) -> str:
    return " ".join(f"{v:.9g}" for v in values)


def _inertial(link: LinkInertia, sx: float, sy: float) -> str:
    """The link's ``<inertial>`` with its x (``sx`` = -1) and/or y (``sy`` = -1) mirrored.

    Mirroring x flips the products ixy and ixz; mirroring y flips ixy and iyz.
    """
    x, y, z = link.com_m
    ixy, ixz, iyz = link.products_kg_m2
    pos = f'pos="{_v(sx * x, sy * y, z)}" mass="{link.mass_kg:.9g}"'
    if ixy == ixz == iyz == 0.0:
        return f'<inertial {pos} diaginertia="{_v(*link.diag_inertia_kg_m2)}"/>'
    # MuJoCo's fullinertia order: ixx iyy izz ixy ixz iyz.
    full = _v(*link.diag_inertia_kg_m2, sx * sy * ixy, sx * ixz, sy * iyz)
    return f'<inertial {pos} fullinertia="{full}"/>'


def _camera_xml(robot: RobotConfig) -> str:
    """A site whose frame is the optical frame (x right, y down, z forward) and a viewer camera."""
    cam = robot.depth_camera
    pitch = math.radians(cam.pitch_deg)
    s, c = math.sin(pitch), math.cos(pitch)
    pos = _v(*cam.position_m)
    # MuJoCo cameras look along their -z with +y up: x = optical x, y = -optical y.
    return (f'<site name="{CAMERA_SITE}" pos="{pos}" xyaxes="{_v(0, -1, 0, -s, 0, -c)}" '
            f'size="0.01" rgba="0.1 0.8 0.1 1" group="{ROBOT_GEOM_GROUP}"/>\n'
            f'<camera name="{CAMERA_SITE}" pos="{pos}" xyaxes="{_v(0, -1, 0, s, 0, c)}" '
            f'fovy="{cam.vertical_fov_deg:.9g}"/>')


def _leg_xml(robot: RobotConfig, geo: QuadrupedGeometry, leg: str) -> str:
    sx = 1.0 if leg[0] == "F" else -1.0
    sy = -1.0 if leg[1] == "R" else 1.0
    names = list(robot.joint_names_policy)

    def joint(part: str, axis: str) -> str:
        name = joint_name(leg, part)
        i = names.index(name)
        lo, hi = robot.position_lower[i], robot.position_upper[i]
        return f'<joint name="{name}" axis="{axis}" range="{_v(lo, hi)}"/>'

    # Link COMs are published for the front-right leg: mirror y for the left side; the hip's x
    # mirrors for the rear legs (the thigh and calf keep theirs: the knee bends the same way).
    hip_y = geo.hip_offset_m[1] * sy
    thigh_y = geo.thigh_offset_m * sy
    hy, hw = geo.hip_geom_offset_m * sy, geo.hip_half_length_m  # hip motor cylinder along y
    hip_geom = (f'type="cylinder" fromto="{_v(0, hy - hw, 0, 0, hy + hw, 0)}" '
                f'size="{geo.hip_radius_m:.9g}"')
    thigh_geom = (f'type="capsule" fromto="{_v(0, 0, 0, 0, 0, -geo.thigh_length_m)}" '
                  f'size="{geo.thigh_radius_m:.9g}"')
    calf_end = geo.calf_length_m - geo.foot_radius_m  # the capsule stops inside the foot sphere
    calf_geom = f'type="capsule" fromto="{_v(0, 0, 0, 0, 0, -calf_end)}" size="{geo.calf_radius_m:.9g}"'
    foot_geom = (f'type="sphere" size="{geo.foot_radius_m:.9g}" '
                 f'pos="{_v(geo.foot_offset_x_m, 0, 0)}"')
    foot_inertia = geo.foot_inertia_kg_m2
    if foot_inertia is None:
        foot_inertia = 2 / 5 * geo.foot_mass_kg * geo.foot_radius_m ** 2  # solid sphere
    foot_inertial = (f'<inertial pos="0 0 0" mass="{geo.foot_mass_kg:.9g}" '
                     f'diaginertia="{_v(foot_inertia, foot_inertia, foot_inertia)}"/>')
    return f"""<body name="{leg}_hip" pos="{_v(geo.hip_offset_m[0] * sx, hip_y, 0)}">
  {_inertial(geo.hip, sx, -sy)}
  {joint("hip", "1 0 0")}
  <geom name="{leg}_hip" {hip_geom}/>
  <body name="{leg}_thigh" pos="{_v(0, thigh_y, 0)}">
    {_inertial(geo.thigh, 1.0, -sy)}
    {joint("thigh", "0 1 0")}
    <geom name="{leg}_thigh" {thigh_geom}/>
    <body name="{leg}_calf" pos="{_v(0, 0, -geo.thigh_length_m)}">
      {_inertial(geo.calf, 1.0, -sy)}
      {joint("calf", "0 1 0")}
      <geom name="{leg}_calf" {calf_geom}/>
      <body name="{leg}_foot" pos="{_v(0, 0, -geo.calf_length_m)}">
        {foot_inertial}
        <geom name="{leg}_foot" class="foot" {foot_geom}/>
        <site name="{leg}_foot" size="0.005" group="{ROBOT_GEOM_GROUP}"/>
      </body>
    </body>
  </body>
</body>"""


def build_mjcf(robot: RobotConfig, scene: str = "flat", *, extra_boxes: tuple[SceneBox, ...] = (),
               physics_dt_s: float = 0.005, fixed_base: bool = False,
               geometry: QuadrupedGeometry | None = None, terrain: Terrain | None = None) -> str:
    """The MJCF text of the robot standing in ``scene``.

    The trunk starts at the origin; the world places it (``qpos`` for a free base, ``body_pos``
    for a fixed one) before the first step.

    Args:
        robot: the robot definition (joint names, limits, torque limits, camera mount).
        scene: one of :data:`hal.sim.scenes.SCENES`.
        extra_boxes: static obstacles added to the scene.
        physics_dt_s: MuJoCo timestep.
        fixed_base: weld the trunk to the world (no free joint): legs swing in the air.
        geometry: link dimensions and masses; default :func:`geometry_for` the robot.
        terrain: a drawn terrain (:mod:`hal.sim.terrains`) in place of the named scene; its
            height field's data is written after compiling (:func:`write_hfield`).

    Raises:
        ValueError: the robot is not a 12-joint ``{FR,FL,RR,RL}_{hip,thigh,calf}_joint``
            quadruped, or the scene name is unknown.
    """
    _check_robot(robot)
    geo = geometry or geometry_for(robot)
    if terrain is not None:
        scene_body = "\n".join([LIGHT_XML, terrain_body_xml(terrain, SCENE_GEOM_GROUP,
                                                             TERRAIN_GEOM_GROUP)]
                               + [box.to_xml() for box in extra_boxes])
        hfield = "\n    " + terrain_assets_xml(terrain)
        scene = terrain.kind
    else:
        scene_body = scene_xml(scene, extra_boxes)
        hfield = ""
    legs = "\n".join(_leg_xml(robot, geo, leg) for leg in LEGS)
    torque = {n: robot.torque_limit[i] for i, n in enumerate(robot.joint_names_policy)}
    motors = "\n".join(f'<motor name="{n}" joint="{n}" ctrlrange="{_v(-torque[n], torque[n])}"/>'
                       for n in robot.joint_names_hardware)
    free = "" if fixed_base else '<freejoint name="root"/>'
    head = "".join(f'\n      <geom name="{TRUNK_BODY}_extra{i}" type="{kind}" size="{_v(*size)}" '
                   f'pos="{_v(*pos)}"/>'
                   for i, (kind, size, pos) in enumerate(geo.trunk_extra_geoms))
    return f"""<mujoco model="krabby_{robot.name}_{scene}">
  <!-- Generated by hal.sim.mjcf from {robot.source}; do not edit by hand. -->
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{physics_dt_s:.9g}" integrator="implicitfast" cone="elliptic"
          impratio="{_IMPRATIO:.9g}"/>
  <visual><global offwidth="1280" offheight="720"/></visual>
  <asset>
    <texture name="floor" type="2d" builtin="checker" rgb1="0.42 0.44 0.48" rgb2="0.5 0.52 0.56"
             width="256" height="256"/>
    <material name="floor" texture="floor" texrepeat="8 8" texuniform="true"/>{hfield}
  </asset>
  <default>
    <default class="robot">
      <!-- solreflimit: the stiffest joint stop stable at a 5 ms step. Training's PhysX stops
           are hard; MuJoCo's default (0.02 s) lets a calf pushed 0.54 rad past its limit by a
           landing sink 0.11 rad into it, this 0.065 rad. -->
      <joint armature="{geo.armature_kg_m2:.9g}" damping="{geo.joint_damping_nm_s:.9g}"
             frictionloss="{geo.joint_frictionloss_nm:.9g}" solreflimit="0.01 1"/>
      <geom contype="1" conaffinity="0" group="{ROBOT_GEOM_GROUP}" density="0" rgba="0.2 0.2 0.22 1"
            priority="1" solref="{geo.contact_timeconst_s:.9g} 1"
            friction="{geo.foot_friction:.9g} 0.005 0.0001"/>
      <default class="foot">
        <geom rgba="0.1 0.1 0.1 1"/>
      </default>
    </default>
    <geom contype="1" conaffinity="1" group="{SCENE_GEOM_GROUP}" friction="1 0.005 0.0001"/>
  </default>
  <worldbody>
{textwrap.indent(scene_body, ' ' * 4)}
    <body name="{TRUNK_BODY}" childclass="robot">
      {free}
      {_inertial(geo.trunk, 1.0, 1.0)}
      <geom name="{TRUNK_BODY}" type="box" size="{_v(*geo.trunk_half_size_m)}"
            rgba="0.85 0.85 0.88 1"/>{head}
      <site name="{IMU_SITE}" pos="{_v(*geo.imu_position_m)}" size="0.01" group="{ROBOT_GEOM_GROUP}"/>
{textwrap.indent(_camera_xml(robot), ' ' * 6)}
{textwrap.indent(legs, ' ' * 6)}
    </body>
  </worldbody>
  <actuator>
{textwrap.indent(motors, ' ' * 4)}
  </actuator>
  <sensor>
    <framequat name="imu_quat" objtype="site" objname="{IMU_SITE}"/>
    <gyro name="imu_gyro" site="{IMU_SITE}"/>
    <accelerometer name="imu_acc" site="{IMU_SITE}"/>
  </sensor>
</mujoco>
"""


def asset_path(robot_name: str, scene: str) -> Path:
    """Where the committed MJCF of a shipped robot in a scene lives (``hal/sim/assets``)."""
    return Path(__file__).resolve().parent / "assets" / f"{robot_name}_{scene}.xml"

"""The simulated world: one MuJoCo model of the robot in a scene, advanced by the server.

:class:`MujocoWorld` owns the physics and every simulated sensor; the device backends in this
package (:mod:`hal.sim.joints`, :mod:`hal.sim.imu`, :mod:`hal.sim.contacts`,
:mod:`hal.sim.camera`) are views of one shared world. The server calls :meth:`MujocoWorld.advance`
once per control tick (:class:`hal.devices.base.Steppable`); the world steps physics in
``physics_dt_s`` increments, runs the joint PD law at every physics step from the newest command,
renders depth frames at ``camera_fps`` of simulated time, and publishes the sensor readings of the
state it ends in.

Clock. Timestamps are ``clock_origin_ns + sim_time_ns``, where the origin is
``time.monotonic_ns()`` taken when the world finished settling (or ``clock_origin_ns`` from the
config). When the server paces the simulation in real time, sim time tracks wall time and these
timestamps compare directly with ``time.monotonic_ns()``. In fast mode (as fast as possible) sim
time runs ahead of wall time: the server must then measure data ages against
:meth:`MujocoWorld.now_ns` (the simulated "now"), never against ``time.monotonic_ns()``.

Sampling. Joint positions/velocities, orientation and angular velocity are sampled at the end of
an ``advance``; the accelerometer, foot contact forces and applied torques come from the last
physics step's acceleration stage (one ``physics_dt_s`` earlier), as MuJoCo computes forces before
it integrates. All three samples carry the end time.

Start. The robot is placed with its lowest point on the ground at the initial joint angles (the
default pose unless configured) and holds that pose with the robot's kp/kd for ``settle_s``; it
keeps holding it until the first command arrives. The clock starts after settling.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time

import numpy as np

from hal.devices.base import (
    CONTROL_MODE_DAMP,
    CONTROL_MODE_POSITION,
    CameraIntrinsics,
    ContactSample,
    DepthFrameInfo,
    DeviceNotConnectedError,
    ImuSample,
    JointCommand,
    JointState,
)
from hal.optional import require
from hal.robot import RobotConfig
from hal.sim.config import MujocoWorldConfig, quaternion_from_euler
from hal.sim.mjcf import CAMERA_SITE, TRUNK_BODY, build_mjcf
from hal.sim.raycast import DepthRaycaster, pinhole_intrinsics
from hal.sim.render_thread import RenderThread
from hal.sim.scene_heights import SceneHeights
from hal.sim.scenes import SCENE_GEOM_GROUP, TERRAIN_GEOM_GROUP
from hal.sim.terrains import resolve_scene
from hal.sim.terrains.hfield import write_hfield
from hal.sim.terrains.raycast import TerrainRaycaster

__all__ = ["MujocoWorld"]

log = logging.getLogger(__name__)


def _as_index(indices: np.ndarray) -> slice | np.ndarray:
    """A slice when the indices are consecutive (a view instead of a copy in the physics loop)."""
    if len(indices) and np.array_equal(indices, np.arange(indices[0], indices[0] + len(indices))):
        return slice(int(indices[0]), int(indices[0]) + len(indices))
    return indices


class MujocoWorld:
    """A MuJoCo simulation of a quadruped, stepped by the server, read by the sim devices.

    Args:
        robot: the robot definition; the model's joints, limits and camera mount come from it.
        config: how to build and start the world.

    Raises:
        hal.optional.MissingDependencyError: mujoco is not installed.
        ValueError: the robot is not a 12-joint quadruped, or a config value is bad.
    """

    def __init__(self, robot: RobotConfig, config: MujocoWorldConfig | None = None) -> None:
        self._mj = mj = require("mujoco", "the MuJoCo simulator")
        self.robot = robot
        self.config = cfg = config or MujocoWorldConfig()
        initial_q = self._initial_joint_positions()
        self.terrain = resolve_scene(cfg.scene, cfg.seed, cfg.terrain_roughness)
        xml = build_mjcf(robot, cfg.scene if self.terrain is None else "flat",
                         extra_boxes=cfg.extra_boxes, physics_dt_s=cfg.physics_dt_s,
                         fixed_base=cfg.fixed_base, geometry=cfg.geometry, terrain=self.terrain)
        self.model = mj.MjModel.from_xml_string(xml)
        self._terrain_rays = None
        if self.terrain is not None:
            write_hfield(mj, self.model, self.terrain)
            self._terrain_rays = TerrainRaycaster(self.terrain)
        self._apply_physical_draws()
        self.data = mj.MjData(self.model)
        self._index_model()
        self._torque_limit = np.asarray(robot.to_hardware(robot.torque_limit), dtype=np.float64)
        self._dt_ns = int(round(cfg.physics_dt_s * 1e9))
        self._rng = np.random.default_rng(cfg.seed)
        self._lock = threading.Lock()
        self._closed = False
        self._sim_ns = 0
        self._target_ns = 0
        # Physics-loop scratch and the values captured from the last acceleration stage.
        self._tau = np.zeros(robot.n_joints)
        self._acc = np.zeros(3)
        self._forces = np.zeros(robot.n_feet)
        self._force6 = np.zeros(6)
        self._foot_force_xyz = np.zeros((robot.n_feet, 3))
        self._delay_ns = int(round(cfg.action_delay_s * 1e9))
        self._strength = (float(cfg.motor_strength[0]), float(cfg.motor_strength[1]))
        self._camera_latency_ns = int(round(cfg.camera_latency_s * 1e9))
        self._late_frames: collections.deque = collections.deque()  # (due ns, frame, capture ns)
        self._pending: collections.deque = collections.deque()  # (effective sim ns, command)

        # Until the first command the joints hold the initial pose with the robot's own gains.
        self._command = (initial_q.copy(), np.asarray(robot.to_hardware(robot.kp), dtype=np.float64),
                         np.asarray(robot.to_hardware(robot.kd), dtype=np.float64))
        self._place(initial_q)
        self._apply_pd(self._command)
        mj.mj_forward(self.model, self.data)
        self._capture_acceleration_stage()
        if cfg.settle_s > 0:
            self._step(int(round(cfg.settle_s * 1e9)) // self._dt_ns, render=False)
        self.data.time = 0.0
        self._sim_ns = 0
        self._origin_ns = cfg.clock_origin_ns if cfg.clock_origin_ns is not None else time.monotonic_ns()

        self._scene_groups = np.zeros(6, dtype=np.uint8)
        self._scene_groups[SCENE_GEOM_GROUP] = 1  # rays see the scene, never the robot
        self._scene_heights: SceneHeights | None = None
        self._raycaster: DepthRaycaster | None = None
        self._renderer: RenderThread | None = None
        self._frame_seq = 0
        self._frame_ns = 0
        if cfg.camera_fps > 0:
            self._start_camera()
        self._publish()
        log.info("MuJoCo world: robot %s, scene %s, dt %.4f s, camera %s, base at %s",
                 robot.name, cfg.scene, cfg.physics_dt_s,
                 f"{cfg.camera_fps:g} fps" if self._raycaster else "off",
                 self.base_position_m.round(3))

    # ----------------------------------------------------------------------------- set-up
    def _initial_joint_positions(self) -> np.ndarray:
        robot, given = self.robot, self.config.initial_joint_positions_rad
        if given is None:
            return np.asarray(robot.to_hardware(robot.default_angles), dtype=np.float64)
        names = robot.joint_names_hardware
        if len(given) != len(names):
            raise ValueError(f"initial_joint_positions_rad needs {len(names)} values in hardware "
                             f"order {list(names)}, found {len(given)}")
        lower = robot.to_hardware(robot.position_lower)
        upper = robot.to_hardware(robot.position_upper)
        for name, q, lo, hi in zip(names, given, lower, upper):
            if not lo <= q <= hi:
                raise ValueError(f"initial_joint_positions_rad: {name} = {q} is outside its "
                                 f"limits [{lo}, {hi}]")
        return np.asarray(given, dtype=np.float64)

    def _apply_physical_draws(self) -> None:
        """Friction, added trunk mass and centre-of-mass offset (training's domain_rand)."""
        m, cfg = self.model, self.config
        if cfg.friction is not None:
            # every geom: whichever of a contact's two MuJoCo takes (the feet's contact priority,
            # else the larger), the contact has this friction
            m.geom_friction[:, 0] = cfg.friction
        trunk = self._id("mjOBJ_BODY", TRUNK_BODY)
        if cfg.added_mass_kg:
            mass = float(m.body_mass[trunk])
            new = mass + cfg.added_mass_kg
            if new <= 0:
                raise ValueError(f"added_mass_kg {cfg.added_mass_kg} leaves the trunk no mass")
            m.body_inertia[trunk] *= new / mass
            m.body_mass[trunk] = new
        if any(cfg.com_offset_m):
            m.body_ipos[trunk] += np.asarray(cfg.com_offset_m)

    def _id(self, kind: str, name: str) -> int:
        return int(self._mj.mj_name2id(self.model, getattr(self._mj.mjtObj, kind), name))

    def _index_model(self) -> None:
        """Addresses of the joints (hardware order), feet, trunk and IMU sensors in the model."""
        m, robot = self.model, self.robot
        joint_ids = [self._id("mjOBJ_JOINT", name) for name in robot.joint_names_hardware]
        self._qidx = _as_index(np.array([m.jnt_qposadr[j] for j in joint_ids]))
        self._vidx = _as_index(np.array([m.jnt_dofadr[j] for j in joint_ids]))
        self._trunk = self._id("mjOBJ_BODY", TRUNK_BODY)
        self._robot_geoms = np.flatnonzero((m.geom_group != SCENE_GEOM_GROUP)
                                           & (m.geom_group != TERRAIN_GEOM_GROUP))
        foot_geoms = [self._id("mjOBJ_GEOM", foot) for foot in robot.foot_names]
        self._foot_geoms = np.array(foot_geoms, dtype=np.intp)
        self._foot_of_geom = np.full(m.ngeom, -1, dtype=np.intp)
        self._foot_of_geom[foot_geoms] = np.arange(robot.n_feet)

        def sensor(name: str) -> slice:
            s = self._id("mjOBJ_SENSOR", name)
            return slice(int(m.sensor_adr[s]), int(m.sensor_adr[s] + m.sensor_dim[s]))

        self._quat_s = sensor("imu_quat")
        self._gyro_s = sensor("imu_gyro")
        self._acc_s = sensor("imu_acc")
        self._imu_site = int(m.sensor_objid[self._id("mjOBJ_SENSOR", "imu_acc")])

    def _start_camera(self) -> None:
        cfg, cam = self.config, self.robot.depth_camera
        width, height = cfg.camera_width or cam.width, cfg.camera_height or cam.height
        reported_fov = cfg.camera_horizontal_fov_deg or cam.horizontal_fov_deg
        self._camera_intrinsics = pinhole_intrinsics(width, height, reported_fov)
        lens = pinhole_intrinsics(width, height, cfg.camera_lens_hfov_deg or reported_fov)
        groups = np.zeros(6, dtype=np.uint8)
        groups[SCENE_GEOM_GROUP] = 1  # the scene only: the robot never sees itself
        self._raycaster = DepthRaycaster(self._mj, self.model, self._id("mjOBJ_SITE", CAMERA_SITE),
                                         lens, groups, cfg.camera_min_range_m,
                                         cfg.camera_max_range_m, terrain=self._terrain_rays)
        self._frame_period_ns = max(1, int(round(1e9 / cfg.camera_fps)))
        self._front = np.full(self._raycaster.frame_shape, np.inf, dtype=np.float32)
        self._back = np.empty_like(self._front)
        # Depth noise has its own generator: the render thread must not share the IMU's.
        self._depth_rng = np.random.default_rng([cfg.seed, 1])
        self._render_frame()  # the first frame exists before anyone reads
        if cfg.render_thread:
            self._renderer = RenderThread(self._mj, self.model, self._raycaster.render,
                                          self._raycaster.frame_shape, self._deliver_frame)

    def _place(self, joint_q: np.ndarray) -> None:
        """Put the joints at ``joint_q`` and the trunk at the configured pose, feet on the ground."""
        mj, m, d, cfg = self._mj, self.model, self.data, self.config
        quat = quaternion_from_euler(math.radians(cfg.initial_roll_deg),
                                     math.radians(cfg.initial_pitch_deg),
                                     math.radians(cfg.initial_yaw_deg))
        d.qpos[self._qidx] = joint_q
        self._set_base(np.zeros(3), quat)
        mj.mj_kinematics(m, d)
        # 1 mm above the ground: the first steps make the contact, no interpenetration to resolve.
        x, y = cfg.initial_xy_m
        ground = self.terrain.max_height_near(x, y, 0.5) if self.terrain is not None else 0.0
        height = (cfg.base_height_m if cfg.base_height_m is not None
                  else ground + 1e-3 - self._lowest_robot_z())
        self._set_base(np.array([x, y, height]), quat)
        d.qvel[:] = 0.0

    def _set_base(self, pos: np.ndarray, quat: np.ndarray) -> None:
        if self.config.fixed_base:
            # A body without joints is placed by the model itself.
            self.model.body_pos[self._trunk] = pos
            self.model.body_quat[self._trunk] = quat
        else:
            self.data.qpos[0:3] = pos
            self.data.qpos[3:7] = quat

    def _lowest_robot_z(self) -> float:
        """Lowest world z of the robot's geoms (spheres, capsules, cylinders, boxes) right now."""
        m, d, geom = self.model, self.data, self._mj.mjtGeom
        lowest = math.inf
        for g in self._robot_geoms:
            z, size, rot = d.geom_xpos[g][2], m.geom_size[g], d.geom_xmat[g].reshape(3, 3)
            kind = m.geom_type[g]
            if kind == geom.mjGEOM_BOX:
                low = z - float(np.abs(rot[2]) @ size)
            elif kind == geom.mjGEOM_SPHERE:
                low = z - size[0]
            else:  # capsule or cylinder: axis along the geom's z, half length size[1]
                if kind == geom.mjGEOM_CAPSULE:
                    rim = size[0]
                else:
                    rim = size[0] * math.hypot(rot[2, 0], rot[2, 1])
                low = z - abs(rot[2, 2]) * size[1] - rim
            lowest = min(lowest, low)
        return lowest

    # ----------------------------------------------------------------------------- physics
    def _apply_pd(self, command: tuple[np.ndarray, ...]) -> None:
        """``tau = kp·(q* − q) − kd·dq`` (+ ``kd·dq* + tau_ff`` for a motor command), clipped."""
        target, kp, kd = command[:3]
        d, tau = self.data, self._tau
        np.subtract(target, d.qpos[self._qidx], out=tau)
        tau *= kp * self._strength[0]
        tau -= kd * self._strength[1] * d.qvel[self._vidx]
        if len(command) == 4:  # (q*, kp, kd, kd·dq* + tau_ff) from set_motor_command
            tau += command[3]
        np.clip(tau, -self._torque_limit, self._torque_limit, out=tau)
        d.ctrl[:] = tau

    def _capture_acceleration_stage(self) -> None:
        """Accelerometer and foot contact forces, valid between the acceleration stage and step1.

        A foot's force is the norm of the sum of its contact forces (normal and friction, in the
        world frame), as training's ``norm(contact_forces[feet])`` measures it.
        """
        mj, m, d = self._mj, self.model, self.data
        if self.config.fixed_base:
            # A welded trunk does not accelerate: it reads the reaction to gravity in the site's
            # axes. MuJoCo 3.x reports 0 for an accelerometer on a static body (4.x computes it).
            self._acc[:] = d.site_xmat[self._imu_site].reshape(3, 3).T @ -m.opt.gravity
        else:
            self._acc[:] = d.sensordata[self._acc_s]
        self._foot_force_xyz[:] = 0.0
        ncon = d.ncon
        if ncon:
            geoms = d.contact.geom[:ncon]
            feet = np.maximum(self._foot_of_geom[geoms[:, 0]], self._foot_of_geom[geoms[:, 1]])
            touching = np.flatnonzero(feet >= 0)
            if touching.size:
                local = np.empty((touching.size, 3))
                for k, i in enumerate(touching):
                    mj.mj_contactForce(m, d, int(i), self._force6)
                    local[k] = self._force6[:3]
                # contact.frame rows are the normal and the two tangents, in world coordinates.
                frames = d.contact.frame[:ncon].reshape(-1, 3, 3)[touching]
                np.add.at(self._foot_force_xyz, feet[touching],
                          np.einsum("kj,kji->ki", local, frames))
        self._forces[:] = np.sqrt(np.einsum("ij,ij->i", self._foot_force_xyz,
                                            self._foot_force_xyz))

    def _step(self, n_steps: int, render: bool) -> None:
        """``n_steps`` physics steps; the state after ``mj_step1`` (kinematics done) is the invariant."""
        mj, m, d = self._mj, self.model, self.data
        with self._lock:
            command = self._command
        for i in range(n_steps):
            if self._pending:
                command = self._take_due_command()
            self._apply_pd(command)
            mj.mj_step2(m, d)
            if i == n_steps - 1:
                self._capture_acceleration_stage()
            mj.mj_step1(m, d)
            self._sim_ns += self._dt_ns
            if render and self._sim_ns >= self._frame_ns + self._frame_period_ns:
                self._render_frame()
            while self._late_frames and self._late_frames[0][0] <= self._sim_ns:
                _, frame, captured_ns = self._late_frames.popleft()
                self._deliver_frame(frame, captured_ns)

    def _render_frame(self) -> None:
        assert self._raycaster is not None
        self._frame_ns = self._sim_ns - self._sim_ns % self._frame_period_ns
        if self._renderer is not None:
            self._renderer.submit(self.data, self._sim_ns)
            return
        self._raycaster.render(self.data, self._back)
        if self._camera_latency_ns and self._frame_seq:
            # published once the latency has passed, stamped at capture (the very first frame
            # exists before anyone reads)
            self._late_frames.append((self._sim_ns + self._camera_latency_ns, self._back.copy(),
                                      self._sim_ns))
            return
        self._deliver_frame(self._back, self._sim_ns)

    def _deliver_frame(self, frame: np.ndarray, capture_sim_ns: int) -> None:
        """Noise, then publish ``frame`` (captured at ``capture_sim_ns``) as the newest frame."""
        if self.config.depth_noise_std_m > 0:
            finite = np.isfinite(frame)
            noise = self._depth_rng.normal(0.0, self.config.depth_noise_std_m, int(finite.sum()))
            frame[finite] += noise.astype(np.float32)
        with self._lock:
            np.copyto(self._front, frame)
            self._frame_seq += 1
            self._frame_info = DepthFrameInfo(self._frame_seq, self._origin_ns + capture_sim_ns,
                                              self._camera_intrinsics)

    def _publish(self) -> None:
        d, cfg, now = self.data, self.config, self.now_ns()
        gyro = d.sensordata[self._gyro_s].copy()
        acc = self._acc.copy()
        if cfg.gyro_noise_std_rad_s > 0:
            gyro += self._rng.normal(0.0, cfg.gyro_noise_std_rad_s, 3)
        if cfg.accel_noise_std_m_s2 > 0:
            acc += self._rng.normal(0.0, cfg.accel_noise_std_m_s2, 3)
        joints = JointState(d.qpos[self._qidx].copy(), d.qvel[self._vidx].copy(), self._tau.copy(),
                            now)
        imu = ImuSample(d.sensordata[self._quat_s].copy(), gyro, acc, now)
        contacts = ContactSample(self._forces.copy(), now)
        with self._lock:
            self._joint_state, self._imu_sample, self._contact_sample = joints, imu, contacts

    # ----------------------------------------------------------------------------- public
    def advance(self, duration_s: float) -> None:
        """Advance physics and sensors by ``duration_s`` of simulated time (Steppable).

        Steps whole ``physics_dt_s`` increments; a remainder carries over to the next call, so
        the simulated time never drifts from the sum of the durations asked for. The command read
        at the start applies (PD recomputed) at every physics step of the call.
        """
        self._check_open()
        if not (math.isfinite(duration_s) and duration_s >= 0):
            raise ValueError(f"duration_s must be a finite number >= 0, found {duration_s}")
        self._target_ns += int(round(duration_s * 1e9))
        n_steps = (self._target_ns - self._sim_ns) // self._dt_ns
        if n_steps > 0:
            self._step(n_steps, render=self._raycaster is not None)
            self._publish()

    def set_command(self, command: JointCommand) -> None:
        """Make ``command`` (hardware order) the PD command of the following physics steps.

        Raises:
            ValueError: wrong array sizes, non-finite values, negative gains or unknown mode.
        """
        n = self.robot.n_joints
        arrays = {}
        for name in ("target_rad", "kp", "kd"):
            value = np.asarray(getattr(command, name), dtype=np.float64)
            if value.shape != (n,):
                raise ValueError(f"JointCommand.{name} must have shape ({n},), found {value.shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"JointCommand.{name} holds non-finite values: {value}")
            arrays[name] = value.copy()
        if np.any(arrays["kp"] < 0) or np.any(arrays["kd"] < 0):
            raise ValueError(f"JointCommand gains must be >= 0, found kp={arrays['kp']} "
                             f"kd={arrays['kd']}")
        if command.mode == CONTROL_MODE_DAMP:
            arrays["kp"][:] = 0.0
        elif command.mode != CONTROL_MODE_POSITION:
            raise ValueError(f"JointCommand.mode {command.mode!r} is unknown; valid: "
                             f"{CONTROL_MODE_POSITION} (position), {CONTROL_MODE_DAMP} (damp)")
        with self._lock:
            if self._delay_ns:
                self._pending.append((self._sim_ns + self._delay_ns,
                                      (arrays["target_rad"], arrays["kp"], arrays["kd"])))
            else:
                self._command = (arrays["target_rad"], arrays["kp"], arrays["kd"])

    def set_motor_command(self, q_rad: np.ndarray, dq_rad_s: np.ndarray, kp: np.ndarray,
                          kd: np.ndarray, tau_nm: np.ndarray) -> None:
        """A motor's own PD law (hardware order), from the next physics step on:
        ``tau = tau_ff + kp·(q* − q) + kd·(dq* − dq)``, clipped to the torque limit.

        A gain of 0 removes its term whatever its target (Unitree's "stop" markers), so only
        the terms with a non-zero gain need finite targets. No action delay applies: the robot
        double (:mod:`hal.sim.go2_dds`) carries its own wire latency.
        """
        kp, kd, tau = (np.asarray(a, dtype=np.float64) for a in (kp, kd, tau_nm))
        q = np.where(kp != 0.0, np.asarray(q_rad, dtype=np.float64), 0.0)
        dq = np.where(kd != 0.0, np.asarray(dq_rad_s, dtype=np.float64), 0.0)
        feed = kd * dq + tau
        for name, value in (("q", q), ("dq", dq), ("kp", kp), ("kd", kd), ("tau", feed)):
            if value.shape != (self.robot.n_joints,) or not np.all(np.isfinite(value)):
                raise ValueError(f"motor command {name} must be {self.robot.n_joints} finite "
                                 f"values, found {value}")
        with self._lock:
            self._pending.clear()
            self._command = (q, kp.copy(), kd.copy(), feed)

    @property
    def command_in_force(self) -> tuple[np.ndarray, ...]:
        """Copies of the PD command the physics steps use now: ``(q*, kp, kd)``, plus
        ``kd·dq* + tau_ff`` after :meth:`set_motor_command`."""
        with self._lock:
            return tuple(a.copy() for a in self._command)

    def _take_due_command(self) -> tuple:
        """The newest delayed command whose time has come (physics thread)."""
        with self._lock:
            while self._pending and self._pending[0][0] <= self._sim_ns:
                self._command = self._pending.popleft()[1]
            return self._command

    def joint_state(self) -> JointState:
        with self._lock:
            s = self._joint_state
        return JointState(s.position_rad.copy(), s.velocity_rad_s.copy(), s.torque_nm.copy(),
                          s.timestamp_ns)

    def imu_sample(self) -> ImuSample:
        with self._lock:
            s = self._imu_sample
        return ImuSample(s.quaternion_wxyz.copy(), s.angular_velocity_rad_s.copy(),
                         s.linear_acceleration_m_s2.copy(), s.timestamp_ns)

    def contact_sample(self) -> ContactSample:
        with self._lock:
            s = self._contact_sample
        return ContactSample(s.force_n.copy(), s.timestamp_ns)

    def height_scan(self, points_xy: np.ndarray, out: np.ndarray) -> None:
        """Ground truth: the trunk's height above the scene at ``points_xy`` ((n, 2), the
        yaw-aligned base frame), written into ``out`` ((n,)); +inf where no ray hits."""
        d = self.data
        base = d.xpos[self._trunk]
        w, x, y, z = d.xquat[self._trunk]
        yaw = math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
        c, s_ = math.cos(yaw), math.sin(yaw)
        points = np.asarray(points_xy, dtype=np.float64)
        world = np.empty_like(points)
        world[:, 0] = base[0] + c * points[:, 0] - s_ * points[:, 1]
        world[:, 1] = base[1] + s_ * points[:, 0] + c * points[:, 1]
        if self._scene_heights is None:
            self._scene_heights = SceneHeights(self._mj, self.model, d, self._scene_groups)
        # a ray from 1 m above the base: above any step the robot can stand next to
        ground = self._scene_heights.heights(world, d, base[2] + 1.0)
        if self._terrain_rays is not None:
            np.maximum(ground, self._terrain_rays.surface(world[:, 0], world[:, 1]), out=ground)
        out[:] = np.where(np.isfinite(ground), base[2] - ground, np.inf)

    @property
    def camera_intrinsics(self) -> CameraIntrinsics | None:
        """Intrinsics of the depth frames; None when the camera is off (``camera_fps`` 0)."""
        return self._camera_intrinsics if self._raycaster else None

    @property
    def depth_frame_seq(self) -> int:
        """Seq of the newest depth frame (0 when the camera is off): a cheap "is there a new one"."""
        return self._frame_seq

    def read_depth_into(self, out: np.ndarray, newer_than_seq: int = 0) -> DepthFrameInfo | None:
        """Copy the newest depth frame into ``out`` if its seq exceeds ``newer_than_seq``."""
        if self._raycaster is None:
            raise RuntimeError("the depth camera is off (camera_fps is 0)")
        with self._lock:
            if self._frame_seq <= newer_than_seq:
                return None
            np.copyto(out, self._front)
            return self._frame_info

    @property
    def sim_time_s(self) -> float:
        return self._sim_ns * 1e-9

    @property
    def clock_origin_ns(self) -> int:
        return self._origin_ns

    def now_ns(self) -> int:
        """The simulated clock: ``clock_origin_ns + sim_time_ns`` (see the module docstring)."""
        return self._origin_ns + self._sim_ns

    @property
    def base_position_m(self) -> np.ndarray:
        """Ground truth: the trunk's position in the world frame."""
        return self.data.xpos[self._trunk].copy()

    def set_base_velocity_xy(self, vx_m_s: float, vy_m_s: float) -> None:
        """Set the trunk's horizontal velocity (world frame): training's ``_push_robots``."""
        if self.config.fixed_base:
            raise ValueError("a fixed-base world cannot be pushed")
        self.data.qvel[0] = vx_m_s
        self.data.qvel[1] = vy_m_s

    def foot_positions_m(self) -> np.ndarray:
        """Ground truth: the feet's centres (n_feet, 3), world frame, the robot's foot order."""
        return self.data.geom_xpos[self._foot_geoms].copy()

    @property
    def base_quaternion_wxyz(self) -> np.ndarray:
        """Ground truth: the trunk's orientation in the world frame."""
        return self.data.xquat[self._trunk].copy()

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise DeviceNotConnectedError("the MuJoCo world is closed; build a new MujocoWorld")

    def close(self) -> None:
        """Stop the world; advancing it afterwards raises. Safe to call twice."""
        self._closed = True
        if self._renderer is not None:
            self._renderer.close()

    def __enter__(self) -> MujocoWorld:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

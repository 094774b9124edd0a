"""``krabby-go2-sim``: the MuJoCo Go2 behind the robot's own wire (Unitree's SDK over Cyclone DDS).

A robot double for the Go2 backend (:mod:`hal.jetson.unitree_go2`): it talks to the outside only
the way the robot does, through ``unitree_sdk2py`` on a named interface and DDS domain::

    krabby-go2-sim --network lo --domain-id 42 --duration 30 --report go2sim.json
    krabby-hal-server-jetson --motors go2 --network lo --domain-id 42 --camera none ...

- ``rt/lowstate`` (``LowState_``) every physics step, 500 Hz: per motor slot ``q``, ``dq``,
  ``tau_est`` (the applied torque), ``temperature``, ``lost``; the IMU's quaternion (w, x, y, z),
  gyroscope, accelerometer and rpy; foot forces (1 count = 1 N, the backend's default
  calibration); the 40 ``wireless_remote`` bytes (sticks centred, no button); ``tick``
  (milliseconds of simulated time); the CRC.
- ``rt/sportmodestate`` (``SportModeState_``) at 50 Hz: mode, position, velocity, yaw speed,
  body height (ground truth standing in for the robot's odometry).
- ``rt/lowcmd`` (``LowCmd_``): a message whose CRC is wrong is dropped and counted; otherwise each
  slot in servo mode (0x01) runs ``tau = tau_ff + kp·(q* − q) + kd·(dq* − dq)`` at every physics
  step (:meth:`hal.sim.world.MujocoWorld.set_motor_command`) until the next one; a slot in any
  other mode is passive. The robot keeps the last command when they stop.
- The motion switcher (service ``motion_switcher``: CheckMode 1001, ReleaseMode 1003) and the
  sport service's StandDown (1005), StandUp (1004) and Damp (1001). Until released the robot is in
  "sport mode": its own controller holds it standing and LowCmds are ignored (and counted, as
  the robot's own controller would fight them); StandDown lies it down; ReleaseMode leaves the
  motors passive until LowCmds arrive.

Ground truth (distance, heading, falls; :mod:`hal.sim.ground_truth`) is measured from the hand-over
proxy: the first moment after release that LowCmds drive the robot and its trunk is above
``--handover-height`` (it stood up), to the hand-back: a damping LowCmd (kp 0 on every motor) or
no LowCmd for 0.1 s. ``--fault`` rehearses wire faults (:mod:`hal.sim.go2_faults`).
``--camera-bind tcp://127.0.0.1:PORT`` publishes the simulated depth camera, the ZED's stand-in
(:mod:`hal.sim.depth_link`). The report (``--report``, JSON) holds the wire counters, the faults, the last applied command per
joint and the ``sim`` section.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import math
import signal
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

import numpy as np

from hal.jetson.unitree_go2 import GO2_FOOT_NAMES, GO2_MOTOR_NAMES, GO2_MOTOR_SLOTS, SERVO_MODE
from hal.optional import require
from hal.robot import load_robot
from hal.safety import Mode
from hal.sim.config import MujocoWorldConfig
from hal.sim.go2_faults import WireFault, WireFaultState, parse_wire_fault
from hal.sim.ground_truth import GroundTruthTracker, euler_zyx
from hal.unitree_dds import NETWORK_HELP, initialize_dds

__all__ = ["Go2DoubleConfig", "SimulatedGo2", "build_parser", "main", "LIE_DOWN_Q_RAD"]

logger = logging.getLogger(__name__)

# Unitree's lying pose per leg (hip, thigh, calf), FR FL RR RL (unitree_mujoco's stand_go2 example).
LIE_DOWN_Q_RAD = (0.0473, 1.2219, -2.4438, -0.0473, 1.2219, -2.4438,
                  0.0473, 1.2219, -2.4438, -0.0473, 1.2219, -2.4438)
_STAND_DOWN_S = 1.0
_RPC_NOT_AVAILABLE = 3203  # RPC_ERR_SERVER_API_NOT_IMPL: the sport service is off once released
_HOT_MOTOR_SLOT = 2  # FR_calf
_RPC_MUTE_S = 6.0  # krabby's clients wait 5 s for an answer
_NORMAL_TEMPERATURE_C = 35


class Go2DoubleConfig(types.SimpleNamespace):
    """Settings (built from the command line; see :func:`build_parser`)."""


class SimulatedGo2:
    """The MuJoCo Go2, its wire (DDS topics, CRC, RPC) and its sport-mode controller."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.robot = load_robot(args.robot)
        names = self.robot.joint_names_hardware
        unknown = [n for n in names if n not in GO2_MOTOR_NAMES]
        if unknown:
            raise ValueError(f"robot {self.robot.name!r} has joints {unknown} that are not Go2 motors "
                             f"{list(GO2_MOTOR_NAMES)}")
        # Hardware index i of the world ↔ LowCmd/LowState slot slot_of[i].
        self.slot_of = np.array([GO2_MOTOR_NAMES.index(n) for n in names], dtype=np.intp)
        self.foot_slot_of = np.array([GO2_FOOT_NAMES.index(f) for f in self.robot.foot_names])
        self.faults = WireFaultState(tuple(args.faults))
        self.dt_s = args.physics_dt_ms / 1e3
        world_mod = require("hal.sim.world")
        self.world = world_mod.MujocoWorld(self.robot, MujocoWorldConfig(
            scene=args.scene, seed=args.seed, physics_dt_s=self.dt_s,
            camera_fps=args.camera_fps if args.camera_bind else 0.0, render_thread=True,
            settle_s=1.0, fixed_base=args.fixed_base, base_height_m=0.6 if args.fixed_base else None,
            initial_joint_positions_rad=args.initial_pose))
        self.stand_q = self.world.joint_state().position_rad.copy()
        self.kp = np.asarray(self.robot.to_hardware(self.robot.kp), dtype=np.float64)
        self.kd = np.asarray(self.robot.to_hardware(self.robot.kd), dtype=np.float64)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.sport_mode = "normal"  # "" once released
        self.sport_target: tuple[np.ndarray, np.ndarray, float, float] | None = None
        self.command: dict[str, np.ndarray] | None = None
        self.counters = collections.Counter()
        self.events: dict[str, float] = {}
        self.t0_ns = time.monotonic_ns()
        self.first_cmd_ns: int | None = None
        self.handover = False
        self.handback = False
        self.last_cmd_ns = 0
        self.last_position_command: dict[str, np.ndarray] | None = None
        self.tracker = GroundTruthTracker(self.world)
        self.delayed: collections.deque = collections.deque()
        self.sdk: dict[str, Any] = {}
        self.depth_link = None
        if args.camera_bind:
            from hal.sim.depth_link import DepthLinkPublisher

            self.depth_link = DepthLinkPublisher(args.camera_bind)
            k = self.world.camera_intrinsics
            self._depth = np.empty((k.height, k.width), np.float32)
            self._depth_seq = 0

    # ------------------------------------------------------------------ the wire (SDK threads)
    def now_s(self) -> float:
        return (time.monotonic_ns() - self.t0_ns) / 1e9

    def _fault(self) -> dict[str, float | None]:
        since = None if self.first_cmd_ns is None else (time.monotonic_ns() - self.first_cmd_ns) / 1e9
        return self.faults.active(since, self.now_s())

    def on_low_cmd(self, msg: Any) -> None:
        if msg.crc != self.sdk["crc"].Crc(msg):
            self.counters["lowcmd_crc_rejected"] += 1
            return
        with self.lock:
            if self.sport_mode:
                self.counters["lowcmd_in_sport_mode"] += 1
                self.events.setdefault("first_lowcmd_in_sport_mode_s", round(self.now_s(), 4))
                return
            motors = msg.motor_cmd
            slots = self.slot_of
            servo = np.array([motors[s].mode == SERVO_MODE for s in slots])
            self.command = {
                "q": np.array([motors[s].q for s in slots]),
                "dq": np.array([motors[s].dq for s in slots]),
                "kp": np.where(servo, [motors[s].kp for s in slots], 0.0),
                "kd": np.where(servo, [motors[s].kd for s in slots], 0.0),
                "tau": np.where(servo, [motors[s].tau for s in slots], 0.0),
            }
            self.counters["lowcmd_accepted"] += 1
            self.last_cmd_ns = time.monotonic_ns()
            if self.command["kp"].any():
                self.last_position_command = self.command
            elif self.handover:
                self.handback = True  # damping: krabby let go
            if self.first_cmd_ns is None:
                self.first_cmd_ns = time.monotonic_ns()
                self.events["first_lowcmd_s"] = round(self.now_s(), 4)

    def _rpc(self, name: str) -> None:
        """Count a call; while the robot is silent or its RPC is muted, answer too late."""
        self.counters[f"rpc_{name}"] += 1
        faults = self._fault()
        if "silent" in faults or "mute-rpc" in faults:
            time.sleep(_RPC_MUTE_S)  # past the client's timeout: it gets RPC_ERR_CLIENT_API_TIMEOUT

    def check_mode(self, _parameter: str) -> tuple[int, str]:
        self._rpc("check_mode")
        with self.lock:
            return 0, json.dumps({"form": "0", "name": self.sport_mode})

    def release_mode(self, _parameter: str) -> tuple[int, str]:
        self._rpc("release_mode")
        if "refuse-release" in self._fault():
            return 0, ""  # answers, but the sport controller stays on
        with self.lock:
            if self.sport_mode:
                self.sport_mode = ""
                self.sport_target = None
                self.events["released_s"] = round(self.now_s(), 4)
                zeros = np.zeros(len(self.slot_of))
                self.world.set_motor_command(self.stand_q, zeros, zeros, zeros, zeros)  # passive
        return 0, ""

    def _sport_move(self, target: np.ndarray) -> tuple[int, str]:
        with self.lock:
            if not self.sport_mode:
                return _RPC_NOT_AVAILABLE, ""
            start = self.world.joint_state().position_rad
            self.sport_target = (start, np.asarray(target, dtype=np.float64), self.now_s(), _STAND_DOWN_S)
        time.sleep(_STAND_DOWN_S)
        return 0, ""

    def stand_down(self, _parameter: str) -> tuple[int, str]:
        self._rpc("stand_down")
        return self._sport_move(np.asarray(LIE_DOWN_Q_RAD)[self.slot_of])

    def stand_up(self, _parameter: str) -> tuple[int, str]:
        self._rpc("stand_up")
        return self._sport_move(self.stand_q)

    def damp(self, _parameter: str) -> tuple[int, str]:
        self._rpc("damp")
        with self.lock:
            if not self.sport_mode:
                return _RPC_NOT_AVAILABLE, ""
            zeros = np.zeros(len(self.slot_of))
            self.sport_target = None
            self.world.set_motor_command(self.stand_q, zeros, zeros, np.full(len(zeros), 1.0), zeros)
        return 0, ""

    # ------------------------------------------------------------------ physics and LowState
    def _drive(self) -> None:
        """Set this physics step's motor command: the sport controller's, or the newest LowCmd."""
        world, zeros = self.world, np.zeros(len(self.slot_of))
        with self.lock:
            target, command = self.sport_target, self.command
            if self.sport_mode:
                if target is not None:
                    start, end, t0_s, span_s = target
                    frac = min(1.0, (self.now_s() - t0_s) / span_s)
                    world.set_motor_command(start + frac * (end - start), zeros, self.kp, self.kd, zeros)
                    if frac >= 1.0:
                        self.sport_target = None
                return
            if command is not None:
                world.set_motor_command(command["q"], command["dq"], command["kp"], command["kd"],
                                        command["tau"])
                self.command = None  # applied: the world keeps it until the next

    def _fill_low_state(self, msg: Any, faults: dict[str, float | None], tick_ms: int) -> None:
        world = self.world
        joints, imu, contacts = world.joint_state(), world.imu_sample(), world.contact_sample()
        elapsed_s = self.now_s()
        lost = 0
        if "lost-packets" in faults:
            began = self.faults.began_s.get("lost-packets", 0.0)
            lost = int((elapsed_s - began) * float(faults["lost-packets"]))
        for i, slot in enumerate(self.slot_of):
            motor = msg.motor_state[slot]
            motor.mode = SERVO_MODE
            motor.q = float(joints.position_rad[i])
            motor.dq = float(joints.velocity_rad_s[i])
            motor.tau_est = float(joints.torque_nm[i])
            motor.temperature = _NORMAL_TEMPERATURE_C
            motor.lost = lost % (1 << 32)
        if "hot-motor" in faults:
            msg.motor_state[_HOT_MOTOR_SLOT].temperature = int(min(255.0, float(faults["hot-motor"])))
        state = msg.imu_state
        state.quaternion = [float(v) for v in imu.quaternion_wxyz]
        state.gyroscope = [float(v) for v in imu.angular_velocity_rad_s]
        state.accelerometer = [float(v) for v in imu.linear_acceleration_m_s2]
        state.rpy = [float(v) for v in euler_zyx(imu.quaternion_wxyz)]
        state.temperature = _NORMAL_TEMPERATURE_C
        force = [0, 0, 0, 0]
        for i, slot in enumerate(self.foot_slot_of):
            force[slot] = int(min(32767.0, round(float(contacts.force_n[i]))))
        msg.foot_force = force
        msg.foot_force_est = list(force)
        msg.tick = tick_ms % (1 << 32)
        msg.wireless_remote = self._remote
        msg.head = [0xFE, 0xEF]
        msg.level_flag = 0xFF
        msg.crc = self.sdk["crc"].Crc(msg)
        if "corrupt-lowstate" in faults:
            msg.crc = (msg.crc ^ 0xA5A5A5A5) & 0xFFFFFFFF

    def _publish_sport_state(self) -> None:
        world, msg = self.world, self.sdk["new_sport_state"]()
        pos = world.base_position_m
        msg.mode = 1 if self.sport_mode else 0  # 1: balance stand (sport); 0: idle (released)
        msg.position = [float(v) for v in pos]
        msg.body_height = float(pos[2])
        msg.velocity = [float(v) for v in world.data.qvel[0:3]]
        msg.yaw_speed = float(world.data.qvel[5])
        imu = world.imu_sample()
        msg.imu_state.quaternion = [float(v) for v in imu.quaternion_wxyz]
        self.sdk["sport_pub"].Write(msg)

    def _track(self) -> None:
        """Ground truth from the hand-over proxy (commanded and stood up) to the hand-back
        (a damping command, or no LowCmd for 0.1 s)."""
        if self.handover and time.monotonic_ns() - self.last_cmd_ns > 100_000_000:
            self.handback = True
        if self.handback:
            self.events.setdefault("handback_s", round(self.now_s(), 4))
            return
        pos_z = float(self.world.base_position_m[2])
        if not self.handover and not self.sport_mode and self.first_cmd_ns is not None \
                and pos_z > self.args.handover_height:
            self.handover = True
            self.events["handover_s"] = round(self.now_s(), 4)
        self.tracker(types.SimpleNamespace(safety_mode=Mode.POLICY if self.handover else Mode.IDLE))

    def run(self) -> None:
        """Step physics in real time, publish LowState every step, until stopped or the duration."""
        sdk, args = self.sdk, self.args
        from hal.operator.go2_remote import encode_wireless_remote

        self._remote = list(encode_wireless_remote(frozenset(), 0.0, 0.0, 0.0, 0.0, 0.0))
        dt_ns = int(round(self.dt_s * 1e9))
        step = 0
        next_ns = time.monotonic_ns()
        end_ns = None if args.duration is None else next_ns + int(args.duration * 1e9)
        while not self.stop.is_set() and (end_ns is None or time.monotonic_ns() < end_ns):
            self._drive()
            self.world.advance(self.dt_s)
            step += 1
            faults = self._fault()
            msg = sdk["new_low_state"]()
            self._fill_low_state(msg, faults, int(round(self.world.sim_time_s * 1e3)))
            now = time.monotonic_ns()
            if "silent" in faults or "drop-lowstate" in faults:
                self.counters["lowstate_withheld"] += 1
            elif "delay-lowstate" in faults:
                self.delayed.append((now + int(float(faults["delay-lowstate"]) * 1e6), msg))
            else:
                self._write_low_state(msg)
            while self.delayed and self.delayed[0][0] <= now:
                self._write_low_state(self.delayed.popleft()[1])
            if step % 10 == 0 and "silent" not in faults:
                self._publish_sport_state()
            if step % 5 == 0:
                self._track()
            if self.depth_link is not None and self.world.depth_frame_seq > self._depth_seq:
                self._publish_depth()
            next_ns += dt_ns
            wait_ns = next_ns - time.monotonic_ns()
            if wait_ns > 0:
                time.sleep(wait_ns / 1e9)
            elif wait_ns < -50_000_000:  # far behind (a stalled machine): drop the backlog
                self.counters["physics_overruns"] += 1
                next_ns = time.monotonic_ns()

    def _publish_depth(self) -> None:
        """The newest rendered frame to the ZED stand-in, stamped on this machine's clock."""
        from hal.devices.base import DepthFrameInfo

        info = self.world.read_depth_into(self._depth, self._depth_seq)
        if info is None:
            return
        self._depth_seq = info.seq
        age_ns = self.world.now_ns() - info.timestamp_ns
        self.depth_link.publish(self._depth, DepthFrameInfo(info.seq, time.monotonic_ns() - age_ns,
                                                            info.intrinsics))

    def _write_low_state(self, msg: Any) -> None:
        if self.sdk["low_state_pub"].Write(msg) is False:
            self.counters["lowstate_write_errors"] += 1
        else:
            self.counters["lowstate_published"] += 1

    # ------------------------------------------------------------------ start and report
    def start_wire(self) -> None:
        """Open the DDS topics and the RPC services (the domain must be initialised)."""
        require("unitree_sdk2py", "krabby-go2-sim")
        channel = require("unitree_sdk2py.core.channel")
        dds = require("unitree_sdk2py.idl.unitree_go.msg.dds_")
        defaults = require("unitree_sdk2py.idl.default")
        crc = require("unitree_sdk2py.utils.crc")
        server_mod = require("unitree_sdk2py.rpc.server")
        switcher_api = require("unitree_sdk2py.comm.motion_switcher.motion_switcher_api")
        sport_api = require("unitree_sdk2py.go2.sport.sport_api")
        self.sdk.update(crc=crc.CRC(), new_low_state=defaults.unitree_go_msg_dds__LowState_,
                        new_sport_state=defaults.unitree_go_msg_dds__SportModeState_)
        self.sdk["low_state_pub"] = channel.ChannelPublisher("rt/lowstate", dds.LowState_)
        self.sdk["low_state_pub"].Init()
        self.sdk["sport_pub"] = channel.ChannelPublisher("rt/sportmodestate", dds.SportModeState_)
        self.sdk["sport_pub"].Init()
        self.sdk["low_cmd_sub"] = channel.ChannelSubscriber("rt/lowcmd", dds.LowCmd_)
        self.sdk["low_cmd_sub"].Init(self.on_low_cmd, 0)  # no SDK queue thread (see the backend)
        handlers = {
            (switcher_api.MOTION_SWITCHER_SERVICE_NAME, switcher_api.MOTION_SWITCHER_API_VERSION): {
                switcher_api.MOTION_SWITCHER_API_ID_CHECK_MODE: self.check_mode,
                switcher_api.MOTION_SWITCHER_API_ID_RELEASE_MODE: self.release_mode},
            (sport_api.SPORT_SERVICE_NAME, sport_api.SPORT_API_VERSION): {
                sport_api.SPORT_API_ID_STANDDOWN: self.stand_down,
                sport_api.SPORT_API_ID_STANDUP: self.stand_up,
                sport_api.SPORT_API_ID_DAMP: self.damp},
        }
        self.sdk["servers"] = []
        for (name, version), apis in handlers.items():
            server = server_mod.Server(name)
            server._SetApiVersion(version)  # noqa: SLF001 - the SDK's way to declare a service
            for api_id, handler in apis.items():
                server._RegistHandler(api_id, handler, False)  # noqa: SLF001
            server.Start(False)
            self.sdk["servers"].append(server)

    def report(self) -> dict[str, Any]:
        joints = self.world.joint_state()
        cmd_q = self.world._command  # noqa: SLF001 - the command in force, for the report
        names = self.robot.joint_names_hardware
        return {
            "wire": {"network": self.args.network, "domain_id": self.args.domain_id,
                     "counters": dict(self.counters), "events": dict(self.events),
                     "sport_mode": self.sport_mode or None},
            "faults": {"asked": [vars(f) for f in self.faults.faults], "began_s": self.faults.began_s},
            "motor_slots": {n: int(s) for n, s in zip(names, self.slot_of)},
            "command_in_force": {n: {"q": float(cmd_q[0][i]), "kp": float(cmd_q[1][i]),
                                     "kd": float(cmd_q[2][i]),
                                     "kd_dq_plus_tau": float(cmd_q[3][i]) if len(cmd_q) > 3 else 0.0}
                                 for i, n in enumerate(names)},
            "last_position_command": None if self.last_position_command is None else {
                n: {k: float(v[i]) for k, v in self.last_position_command.items()}
                for i, n in enumerate(names)},
            "joint_position_rad": {n: float(q) for n, q in zip(names, joints.position_rad)},
            "depth_frames_published": None if self.depth_link is None else self.depth_link.published,
            "sim": self.tracker.report(),
        }

    def close(self) -> None:
        for name in ("low_cmd_sub", "low_state_pub", "sport_pub"):
            channel = self.sdk.get(name)
            if channel is not None:
                try:
                    channel.Close()
                except Exception:  # noqa: BLE001 - closing at exit
                    logger.debug("closing %s failed", name, exc_info=True)
        if self.depth_link is not None:
            self.depth_link.close()
        self.world.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="krabby-go2-sim", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", required=False, default=None, help=NETWORK_HELP)
    parser.add_argument("--domain-id", dest="domain_id", type=int, default=0,
                        help="DDS domain id (0 on the robot; give tests their own)")
    parser.add_argument("--robot", default="go2")
    parser.add_argument("--scene", default="flat", help="flat or parkour")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--physics-dt-ms", dest="physics_dt_ms", type=float, default=2.0,
                        help="physics step and LowState period (default 2 ms: 500 Hz)")
    parser.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    parser.add_argument("--report", help="write the report (JSON) here at exit")
    parser.add_argument("--fault", dest="faults", action="append", default=[], type=_fault_arg,
                        metavar="KIND[=VALUE][@T]", help="wire fault (hal.sim.go2_faults), repeatable")
    parser.add_argument("--handover-height", dest="handover_height", type=float, default=0.22,
                        help="ground truth starts when the commanded robot's trunk first rises "
                             "above this (m)")
    parser.add_argument("--fixed-base", dest="fixed_base", action="store_true",
                        help="bolt the trunk in the air (wire tests: the legs move freely)")
    parser.add_argument("--initial-pose", dest="initial_pose", type=_pose_arg, default=None,
                        metavar="Q0,...,Q11", help="initial joint angles, hardware order (rad)")
    parser.add_argument("--camera-bind", dest="camera_bind", metavar="tcp://127.0.0.1:PORT",
                        help="publish the simulated depth camera here, the ZED's stand-in for "
                             "krabby-hal-server-jetson --camera go2-sim (hal.sim.depth_link)")
    parser.add_argument("--camera-fps", dest="camera_fps", type=float, default=30.0,
                        help="with --camera-bind: frames per second (default 30)")
    parser.add_argument("--log-level", dest="log_level", default="INFO")
    return parser


def _fault_arg(text: str) -> WireFault:
    try:
        return parse_wire_fault(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _pose_arg(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--initial-pose {text!r}: 12 comma-separated numbers") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.network:
        print(f"krabby-go2-sim: --network is required: {NETWORK_HELP}", file=sys.stderr)
        return 2
    if args.camera_bind and not (math.isfinite(args.camera_fps) and args.camera_fps > 0):
        print(f"krabby-go2-sim: --camera-fps {args.camera_fps}: must be a positive number", file=sys.stderr)
        return 2
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        print(f"krabby-go2-sim: --duration {args.duration}: must be a positive number", file=sys.stderr)
        return 2
    try:
        initialize_dds(args.domain_id, args.network)
        go2 = SimulatedGo2(args)
    except Exception as exc:  # noqa: BLE001 - one line for the user
        print(f"krabby-go2-sim: {exc}", file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: go2.stop.set())
    try:
        go2.start_wire()
        print(f"krabby-go2-sim: ready on {args.network}, DDS domain {args.domain_id}: rt/lowstate at "
              f"{1e3 / args.physics_dt_ms:g} Hz; sport mode on until released", flush=True)
        go2.run()
    finally:
        report = go2.report()
        go2.close()
        if args.report:
            Path(args.report).write_text(json.dumps(report, indent=1, default=str))
        counters = report["wire"]["counters"]
        print("krabby-go2-sim: " + ", ".join(f"{k} {v}" for k, v in sorted(counters.items())), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

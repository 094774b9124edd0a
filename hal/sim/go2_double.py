"""The simulated Go2 behind its wire: :class:`SimulatedGo2` (physics, DDS topics, CRC, RPC).

The command line and what it publishes are described in :mod:`hal.sim.go2_dds`
(``krabby-go2-sim``); this module is the robot double itself.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
import types
from typing import TYPE_CHECKING, Any

import numpy as np

from hal.backends.go2_messages import GO2_FOOT_NAMES, GO2_MOTOR_NAMES, SERVO_MODE
from hal.optional import require
from hal.robot import load_robot
from hal.safety import Mode
from hal.sim.config import MujocoWorldConfig
from hal.sim.go2_faults import WireFault, WireFaultState
from hal.sim.ground_truth import GroundTruthTracker, euler_zyx
from hal.sim.world import MujocoWorld
from hal.unitree_dds import close_subscriber

if TYPE_CHECKING:
    from hal.sim.go2_dds import Go2SimConfig
    from hal.sim.go2_report import Go2SimReport

__all__ = ["SimulatedGo2", "LIE_DOWN_Q_RAD"]

log = logging.getLogger(__name__)

# Unitree's lying pose per leg (hip, thigh, calf), FR FL RR RL (unitree_mujoco's stand_go2 example).
LIE_DOWN_Q_RAD = (0.0473, 1.2219, -2.4438, -0.0473, 1.2219, -2.4438,
                  0.0473, 1.2219, -2.4438, -0.0473, 1.2219, -2.4438)
_STAND_DOWN_S = 1.0
_RPC_NOT_AVAILABLE = 3203  # RPC_ERR_SERVER_API_NOT_IMPL: the sport service is off once released
_HOT_MOTOR_SLOT = 2  # FR_calf
_RPC_MUTE_S = 6.0  # krabby's clients wait 5 s for an answer
_NORMAL_TEMPERATURE_C = 35


class SimulatedGo2:
    """The MuJoCo Go2, its wire (DDS topics, CRC, RPC) and its sport-mode controller.

    Args:
        config: ``krabby-go2-sim``'s configuration (:class:`hal.sim.go2_dds.Go2SimConfig`).
        faults: the wire faults to rehearse (``--fault``, parsed).
    """

    def __init__(self, config: Go2SimConfig, faults: tuple[WireFault, ...] = ()) -> None:
        self.config = config
        self.robot = load_robot(config.robot.robot)
        names = self.robot.joint_names_hardware
        unknown = [n for n in names if n not in GO2_MOTOR_NAMES]
        if unknown:
            raise ValueError(f"robot {self.robot.name!r} has joints {unknown} that are not Go2 motors "
                             f"{list(GO2_MOTOR_NAMES)}")
        # Hardware index i of the world ↔ LowCmd/LowState slot slot_of[i].
        self.slot_of = np.array([GO2_MOTOR_NAMES.index(n) for n in names], dtype=np.intp)
        self.foot_slot_of = np.array([GO2_FOOT_NAMES.index(f) for f in self.robot.foot_names])
        self.faults = WireFaultState(tuple(faults))
        self.dt_s = config.go2_sim.physics_dt_ms / 1e3
        self.world = MujocoWorld(self.robot, MujocoWorldConfig(
            scene=config.scene.scene, seed=config.scene.seed, physics_dt_s=self.dt_s,
            camera_fps=config.sim_camera.fixed_fps() if config.go2_sim.camera_bind else 0.0, render_thread=True,
            settle_s=1.0, fixed_base=config.go2_sim.fixed_base,
            base_height_m=0.6 if config.go2_sim.fixed_base else None,
            initial_joint_positions_rad=config.go2_sim.initial_pose))
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
        if config.go2_sim.camera_bind:
            from hal.sim.depth_link import DepthLinkPublisher

            self.depth_link = DepthLinkPublisher(config.go2_sim.camera_bind)
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
                self.command = None  # applied: the world keeps it until the next
                try:
                    world.set_motor_command(command["q"], command["dq"], command["kp"], command["kd"],
                                            command["tau"])
                except ValueError as exc:  # NaN/inf where a gain makes it count: not applied
                    self.counters["lowcmd_non_finite"] += 1
                    log.warning("go2-sim: LowCmd not applied: %s", exc)

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
                and pos_z > self.config.go2_sim.handover_height:
            self.handover = True
            self.events["handover_s"] = round(self.now_s(), 4)
        self.tracker(types.SimpleNamespace(safety_mode=Mode.POLICY if self.handover else Mode.IDLE))

    def run(self) -> None:
        """Step physics in real time, publish LowState every step, until stopped or the duration."""
        sdk, config = self.sdk, self.config
        from hal.operator.go2_remote import encode_wireless_remote

        self._remote = list(encode_wireless_remote(frozenset(), 0.0, 0.0, 0.0, 0.0, 0.0))
        dt_ns = int(round(self.dt_s * 1e9))
        step = 0
        next_ns = time.monotonic_ns()
        end_ns = None if config.duration.duration_s is None else next_ns + int(config.duration.duration_s * 1e9)
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

    def report(self) -> Go2SimReport:
        """The double's report (``--report``), typed (:mod:`hal.sim.go2_report`)."""
        from hal.sim.go2_report import Go2SimReport

        return Go2SimReport.from_dict(self._report_dict(), "go2sim")

    def _report_dict(self) -> dict[str, Any]:
        joints = self.world.joint_state()
        cmd_q = self.world.command_in_force
        names = self.robot.joint_names_hardware
        return {
            "wire": {"network": self.config.go2_network.network, "domain_id": self.config.go2_network.domain_id,
                     "counters": dict(self.counters), "events": dict(self.events),
                     "sport_mode": self.sport_mode or None, "t0_monotonic_ns": self.t0_ns},
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
            if channel is None:
                continue
            try:
                close_subscriber(channel) if name == "low_cmd_sub" else channel.Close()
            except Exception:  # noqa: BLE001 - closing at exit
                log.debug("closing %s failed", name, exc_info=True)
        if self.depth_link is not None:
            self.depth_link.close()
        self.world.close()


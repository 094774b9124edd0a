"""Unitree Go2 low-level backend through Unitree's public Python SDK (``unitree_sdk2py``, DDS).

The Go2 publishes ``LowState_`` on ``rt/lowstate`` (~500 Hz: 20 motor slots of which 12 are the
legs, the body IMU, raw foot-pad forces, a tick) and takes ``LowCmd_`` on ``rt/lowcmd`` (per motor
slot: ``mode`` 0x01 = servo, ``q``, ``dq``, ``kp``, ``kd``, ``tau``; a CRC over the message).
One :class:`UnitreeGo2` session owns the DDS channels; :class:`Go2JointDriver`, :class:`Go2Imu`
and :class:`Go2FootContacts` are views of it.

The mapping between the robot definition (hardware order, by joint name) and the SDK's motor
slots, the command packing and the state unpacking are pure functions tested without a robot;
only :class:`UnitreeGo2` calls the SDK (through ``hal.optional.require("unitree_sdk2py")``).

Start-up (:meth:`UnitreeGo2._open`): DDS on the named interface (``network_interface``, required:
:mod:`hal.unitree_dds`), LowState arriving with good CRCs, then the entry checks, then the
sport-mode release, and only then the ``rt/lowcmd`` publisher. Entry is refused while a motor is
too hot (``MotorState_.temperature``, °C) or the motor links lose packets (``MotorState_.lost``, a
running count, rising faster than allowed over ``entry_check_ms``); a refused robot is left in
Unitree's own controller. Before low-level control the sport-mode controller must be released
(``MotionSwitcherClient.ReleaseMode``); with ``release_sport_mode`` the session lies the robot down
(``SportClient.StandDown``) and releases it, as Unitree's low-level example does. A failed
``CheckMode`` RPC (a non-zero code, ``data`` None) is not "released": the backend refuses to start.

While running: a LowState whose CRC is wrong is dropped and counted (the previous state stays and
grows stale: the safety layer damps once it is too old); the CRC is checked when the loop reads a
state, not for every one of the 500 a second (the SDK's CRC packs the struct in Python). A motor
that gets too hot, or lost-packet counters rising faster than ``max_lost_per_s`` over
``lost_window_ms``, latch a motor fault: the joint state then reads NaN, so the safety layer damps
(``joints_invalid``). :meth:`UnitreeGo2.health` reports temperatures, losses and the wire counters
for the run's record. The LowState handler runs on the SDK's DDS listener thread without the SDK's
queue: its queue thread can miss the wake-up at ``Close()`` and hang the join. Test double:
``krabby-go2-sim`` (:mod:`hal.sim.go2_dds`).

Foot-pad forces are raw sensor counts: calibrate ``foot_force_offset``/``foot_force_scale_n``
(counts at no load, newtons per count) on the robot before trusting the contact threshold.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from hal.devices.base import (
    ContactSample,
    DeviceError,
    DeviceNotConnectedError,
    FootContactSensor,
    Imu,
    ImuSample,
    JointCommand,
    JointDriver,
    JointState,
)
from hal.backends.go2_messages import (
    GO2_FOOT_NAMES,
    GO2_MOTOR_NAMES,
    GO2_MOTOR_SLOTS,
    LEVEL_LOW,
    LOW_CMD_HEAD,
    POS_STOP_F,
    SERVO_MODE,
    VEL_STOP_F,
    Go2State,
    LowCmdArrays,
    entry_problems,
    foot_force_newton,
    low_cmd_arrays,
    low_state_arrays,
    lost_since,
    motor_slots,
)
from hal.config.sections import NETWORK_HELP
from hal.optional import require
from hal.robot import RobotConfig
from hal.unitree_dds import close_subscriber, initialize_dds

__all__ = [
    "GO2_MOTOR_NAMES", "GO2_FOOT_NAMES", "GO2_MOTOR_SLOTS", "POS_STOP_F", "VEL_STOP_F", "SERVO_MODE",
    "UnitreeGo2Config", "LowCmdArrays", "Go2State", "Go2Health",
    "motor_slots", "low_cmd_arrays", "low_state_arrays", "foot_force_newton", "entry_problems",
    "UnitreeGo2", "Go2JointDriver", "Go2Imu", "Go2FootContacts", "make_go2_devices",
]

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class UnitreeGo2Config:
    """Settings of the Go2 backend.

    Attributes:
        network_interface: Interface on the robot's network (``eth0``), ``lo`` for
            ``krabby-go2-sim``; required (:data:`hal.config.sections.NETWORK_HELP`): left to itself
            Cyclone DDS picks the first non-loopback interface and multicasts there.
        domain_id: DDS domain (0 on the robot).
        joint_names: The robot definition's hardware order (names from :data:`GO2_MOTOR_NAMES`).
        foot_names: The robot definition's foot order (names from :data:`GO2_FOOT_NAMES`).
        foot_force_offset: Raw foot-pad counts at no load, per foot (in ``foot_names`` order).
        foot_force_scale_n: Newtons per count above the offset.
        state_timeout_ms: ``LowState`` older than this is stale.
        connect_timeout_ms: ``connect()`` fails without a ``LowState`` within this.
        release_sport_mode: Lie down and release Unitree's sport controller on connect.
        shutdown_kd: Damping gain the joint driver leaves the motors in when it closes.
        max_motor_temperature_c: Refuse to start while a leg motor reports this or hotter.
        max_lost_per_s: Refuse to start while the motors' lost-packet counters rise faster;
            while running, a rise faster than this over ``lost_window_ms`` is a motor fault.
        entry_check_ms: How long connect() watches the counters before deciding.
        lost_window_ms: The running check's window for the lost-packet rate.
        send_commands: False opens no ``rt/lowcmd`` publisher at all (``--dry-run``): reads only.
    """

    network_interface: str | None = None
    domain_id: int = 0
    joint_names: tuple[str, ...] = GO2_MOTOR_NAMES
    foot_names: tuple[str, ...] = GO2_FOOT_NAMES
    foot_force_offset: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)
    foot_force_scale_n: float = 1.0
    state_timeout_ms: float = 50.0
    connect_timeout_ms: float = 3000.0
    release_sport_mode: bool = True
    shutdown_kd: float = 1.0
    max_motor_temperature_c: float = 70.0
    max_lost_per_s: float = 5.0
    entry_check_ms: float = 200.0
    lost_window_ms: float = 1000.0
    send_commands: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "joint_names", tuple(self.joint_names))
        object.__setattr__(self, "foot_names", tuple(self.foot_names))
        motor_slots(self.joint_names)  # validates
        unknown = [f for f in self.foot_names if f not in GO2_FOOT_NAMES]
        if unknown or len(set(self.foot_names)) != len(self.foot_names):
            raise ValueError(f"UnitreeGo2Config.foot_names {self.foot_names} must be distinct names from "
                             f"{GO2_FOOT_NAMES}")
        if len(self.foot_force_offset) != len(self.foot_names):
            raise ValueError(f"foot_force_offset needs {len(self.foot_names)} values, got {self.foot_force_offset}")
        if not (math.isfinite(self.foot_force_scale_n) and self.foot_force_scale_n > 0):
            raise ValueError(f"foot_force_scale_n must be positive, got {self.foot_force_scale_n}")
        for name in ("state_timeout_ms", "connect_timeout_ms", "shutdown_kd", "max_motor_temperature_c",
                     "max_lost_per_s", "entry_check_ms", "lost_window_ms"):
            if not getattr(self, name) > 0:
                raise ValueError(f"UnitreeGo2Config.{name} must be positive, got {getattr(self, name)!r}")

    @classmethod
    def from_robot(cls, robot: RobotConfig, **overrides: Any) -> UnitreeGo2Config:
        """Joint and foot order from a robot definition (which must use the Go2's names)."""
        return cls(joint_names=robot.joint_names_hardware, foot_names=robot.foot_names, **overrides)


@dataclass(frozen=True)
class Go2Health:
    """Motor temperatures and link losses since connect, for the run's record."""

    motor_temperature_c: dict[str, float]
    max_temperature_c: float
    lost_since_connect: dict[str, int]
    stale: bool
    wire: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"motor_temperature_c": self.motor_temperature_c, "max_temperature_c": self.max_temperature_c,
                "lost_since_connect": self.lost_since_connect, "stale": self.stale, "wire": self.wire}


class UnitreeGo2:
    """The DDS session with one Go2: newest ``LowState_`` in, ``LowCmd_`` out. Reference-counted."""

    def __init__(self, config: UnitreeGo2Config | None = None) -> None:
        self.config = config or UnitreeGo2Config()
        self.slots = motor_slots(self.config.joint_names)
        self.foot_slots = np.array([GO2_FOOT_NAMES.index(f) for f in self.config.foot_names], dtype=np.intp)
        self._lock = threading.Lock()
        self._users = 0
        self._state: Go2State | None = None
        self._state_ns = 0
        self._first_state: Go2State | None = None
        self._raw: tuple[Any, int] | None = None  # the newest LowState_ not yet checked, receive ns
        self._remote: bytes | None = None
        self._sdk: dict[str, Any] = {}
        self._lost_window: collections.deque = collections.deque()  # (receive ns, lost counters)
        self.motor_fault: str | None = None
        self._crc: Any = None
        self.counters = {"lowstate_received": 0, "lowstate_crc_rejected": 0, "lowcmd": 0}

    # -- lifecycle ------------------------------------------------------------------------------

    def acquire(self) -> None:
        with self._lock:
            first = self._users == 0
            self._users += 1
        if first:
            try:
                self._open()
            except BaseException:
                with self._lock:
                    self._users -= 1
                raise

    def release(self) -> None:
        with self._lock:
            if self._users == 0:
                return
            self._users -= 1
            last = self._users == 0
        if last:
            if self._state is not None:
                log.info("Go2: closing; %s", self.health().to_dict())
            subscriber, publisher = self._sdk.get("subscriber"), self._sdk.get("publisher")
            if subscriber is not None:
                close_subscriber(subscriber)
            if publisher is not None:
                publisher.Close()
            self._sdk.clear()
            self._state, self._state_ns, self._first_state, self._raw = None, 0, None, None
            self.motor_fault = None
            self._lost_window.clear()

    def _open(self) -> None:
        """Start-up: DDS on the named interface, LowState arriving with good CRCs, the motors
        healthy (temperatures, lost-packet counters), then the sport-mode release, and only then
        the ``rt/lowcmd`` publisher. A robot that fails a check is left as it was, in Unitree's
        own controller."""
        cfg = self.config
        if not cfg.network_interface:
            raise DeviceError(f"Go2: no network interface given (--network): {NETWORK_HELP}")
        require("unitree_sdk2py", "the Unitree Go2 backend")
        channel = require("unitree_sdk2py.core.channel")
        dds = require("unitree_sdk2py.idl.unitree_go.msg.dds_")
        defaults = require("unitree_sdk2py.idl.default")
        crc = require("unitree_sdk2py.utils.crc")
        initialize_dds(cfg.domain_id, cfg.network_interface)
        self._crc = crc.CRC()
        subscriber = channel.ChannelSubscriber("rt/lowstate", dds.LowState_)
        # No SDK queue (queueLen 0): the handler only keeps a reference, on the DDS listener
        # thread; the SDK's queue thread can miss its wake-up at Close() and hang the join.
        subscriber.Init(self._on_low_state, 0)
        self._sdk.update(subscriber=subscriber, publisher=None,
                         new_cmd=defaults.unitree_go_msg_dds__LowCmd_)
        try:
            first = self._entry_check()
            if cfg.release_sport_mode:
                _release_sport_mode()
        except BaseException:
            close_subscriber(subscriber)
            self._sdk.clear()
            self._state, self._state_ns, self._raw = None, 0, None
            raise
        if cfg.send_commands:
            publisher = channel.ChannelPublisher("rt/lowcmd", dds.LowCmd_)
            publisher.Init()
            self._sdk["publisher"] = publisher
        self._first_state = first

    def _entry_check(self) -> Go2State:
        """Wait for LowState, watch it for ``entry_check_ms``; the first state, or DeviceError."""
        cfg = self.config
        deadline = time.monotonic() + cfg.connect_timeout_ms / 1e3
        while self._newest() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        if self._newest() is None:
            rejected = self.counters["lowstate_crc_rejected"]
            bad = f" ({rejected} arrived with a wrong CRC and were dropped)" if rejected else ""
            raise DeviceError(f"Go2: no valid LowState on rt/lowstate within {cfg.connect_timeout_ms:.0f} ms "
                              f"on {cfg.network_interface} (DDS domain {cfg.domain_id}){bad}. Check the "
                              "Ethernet link to the robot (192.168.123.x), the interface name, and that "
                              "the robot is powered on.")
        first, first_ns = self._newest()
        time.sleep(cfg.entry_check_ms / 1e3)
        last, last_ns = self._newest()
        problems = entry_problems(first, last, (last_ns - first_ns) / 1e9, cfg) if last_ns > first_ns else []
        if last_ns == first_ns:
            problems.append(f"LowState stopped arriving within {cfg.entry_check_ms:.0f} ms of connecting")
        if problems:
            raise DeviceError("Go2: refusing to start: " + "; ".join(problems)
                              + ". Let the motors cool / check the leg cables, then retry.")
        log.info("Go2: connected; motor temperatures %s °C (max %.0f), lost-packet counters steady",
                 last.motor_temperature_c.astype(int).tolist(), float(last.motor_temperature_c.max()))
        return first

    def _on_low_state(self, msg: Any) -> None:
        # Runs on the SDK's DDS thread at 500 Hz: keep a reference and let the thread go. The
        # CRC check and the unpacking run when the state is read (:meth:`_take_newest`), once per
        # message the control loop uses, not for every message the robot sends.
        received_ns = time.monotonic_ns()
        with self._lock:
            self._raw = (msg, received_ns)
            self.counters["lowstate_received"] += 1

    def _newest(self) -> tuple[Go2State, int] | None:
        with self._lock:
            self._take_newest()
            return None if self._state is None else (self._state, self._state_ns)

    def _take_newest(self) -> None:
        """Check and unpack the newest LowState (lock held): a wrong CRC drops it (counted) and
        the previous state stays, growing older."""
        if self._raw is None:
            return
        msg, received_ns = self._raw
        self._raw = None
        if msg.crc != self._crc.Crc(msg):  # the robot's CRC32 over the packed LowState_
            self.counters["lowstate_crc_rejected"] += 1
            self._warn_crc()
            return
        self._state = state = low_state_arrays(msg, self.slots, self.foot_slots)
        self._state_ns = received_ns
        self._remote = bytes(getattr(msg, "wireless_remote", b"") or b"")
        if self._first_state is not None and self.motor_fault is None:
            self._watch_motors(state, received_ns)

    def _warn_crc(self) -> None:
        n = self.counters["lowstate_crc_rejected"]
        if n & (n - 1) == 0:  # 1, 2, 4, 8, ...: a rate-limited warning
            log.warning("Go2: dropped a LowState with a wrong CRC (%d so far)", n)

    def _watch_motors(self, state: Go2State, received_ns: int) -> None:
        """While running: a hot motor, or lost-packet counters rising faster than
        ``max_lost_per_s`` over ``lost_window_ms``, latches a motor fault (lock held)."""
        cfg, window = self.config, self._lost_window
        window.append((received_ns, state.motor_lost))
        while len(window) > 2 and received_ns - window[1][0] >= cfg.lost_window_ms * 1e6:
            window.popleft()
        first_ns, first_lost = window[0]
        seconds = (received_ns - first_ns) / 1e9
        if seconds * 2e3 < cfg.lost_window_ms:  # too short a window to judge a rate yet
            first_lost, seconds = state.motor_lost, 1.0
        problems = entry_problems(replace(state, motor_lost=first_lost), state, seconds, cfg)
        if problems:
            self.motor_fault = "; ".join(problems)
            log.error("Go2: motor fault while running: %s; the joint state reads invalid from now "
                      "on, so the safety layer damps the motors", self.motor_fault)

    # -- data -----------------------------------------------------------------------------------

    def latest(self) -> tuple[Go2State, int]:
        """The newest state and its receive time (``time.monotonic_ns``)."""
        newest = self._newest()
        if newest is None:
            raise DeviceNotConnectedError("Go2: no LowState yet (connect first)")
        return newest

    def stats(self) -> dict[str, Any]:
        """Wire counters (LowStates taken and dropped for a wrong CRC, LowCmds sent) and the
        motor fault, if one latched."""
        return {**self.counters, "motor_fault": self.motor_fault}

    def health(self) -> Go2Health:
        """Temperatures now and packets lost since connect, per joint."""
        state, _ = self.latest()
        first = self._first_state or state
        names = self.config.joint_names
        lost = lost_since(first, state)
        return Go2Health(motor_temperature_c={n: float(t) for n, t in zip(names, state.motor_temperature_c)},
                         max_temperature_c=float(state.motor_temperature_c.max()),
                         lost_since_connect={n: int(v) for n, v in zip(names, lost)}, stale=self.stale(),
                         wire=self.stats())

    def wireless_remote(self) -> tuple[bytes, int] | None:
        """The newest ``LowState_.wireless_remote`` (40 raw bytes) and its receive time, or None
        before the first (decoded by :mod:`hal.operator.go2_remote`)."""
        with self._lock:
            self._take_newest()
            if self._remote is None:
                return None
            return self._remote, self._state_ns

    def stale(self) -> bool:
        self._newest()
        return self._state_ns == 0 or time.monotonic_ns() - self._state_ns > self.config.state_timeout_ms * 1e6

    def send(self, command: JointCommand) -> None:
        """Publish one ``LowCmd_`` built from a hardware-order command."""
        if not self._sdk:
            raise DeviceNotConnectedError("Go2: not connected (call connect() first)")
        if self._sdk["publisher"] is None:
            raise DeviceError("Go2: commands are off (send_commands=False, a dry run): nothing was sent")
        arrays = low_cmd_arrays(command, self.slots)
        cmd = self._sdk["new_cmd"]()
        cmd.head[0], cmd.head[1] = LOW_CMD_HEAD
        cmd.level_flag = LEVEL_LOW
        cmd.gpio = 0
        for i in range(GO2_MOTOR_SLOTS):
            motor = cmd.motor_cmd[i]
            motor.mode = int(arrays.mode[i])
            motor.q, motor.dq = float(arrays.q[i]), float(arrays.dq[i])
            motor.kp, motor.kd, motor.tau = float(arrays.kp[i]), float(arrays.kd[i]), float(arrays.tau[i])
        cmd.crc = self._crc.Crc(cmd)
        if self._sdk["publisher"].Write(cmd) is False:
            raise DeviceError("Go2: publishing LowCmd on rt/lowcmd failed (DDS writer error)")
        self.counters["lowcmd"] += 1


_RELEASE_WAIT_S = 1.0  # Unitree's example waits this long between a release and the next check


def _release_sport_mode(max_tries: int = 5) -> None:
    switcher_mod = require("unitree_sdk2py.comm.motion_switcher.motion_switcher_client")
    sport_mod = require("unitree_sdk2py.go2.sport.sport_client")
    sport = sport_mod.SportClient()
    sport.SetTimeout(5.0)
    sport.Init()
    switcher = switcher_mod.MotionSwitcherClient()
    switcher.SetTimeout(5.0)
    switcher.Init()
    for _ in range(max_tries):
        code, result = switcher.CheckMode()
        if code != 0:  # the SDK returns (code, None) on a failed RPC: nothing is known, so refuse
            raise DeviceError(f"Go2: MotionSwitcherClient.CheckMode failed (code {code}): cannot tell whether "
                              "the sport-mode controller is released, so low-level commands stay off. "
                              "Check the robot's network link and that its services are up, then retry")
        if not result or not result.get("name"):
            return
        log.info("Go2: sport mode %r active; lying down and releasing it", result.get("name"))
        sport.StandDown()
        code, _ = switcher.ReleaseMode()
        if code != 0:
            log.warning("Go2: MotionSwitcherClient.ReleaseMode returned code %s; checking again", code)
        time.sleep(_RELEASE_WAIT_S)
    raise DeviceError(f"Go2: the sport-mode controller is still active after {max_tries} release attempts; "
                      "release it from the Unitree app and retry")


class _Go2View:
    """connect/close of a device that is a view of a shared :class:`UnitreeGo2` session."""

    def __init__(self, session: UnitreeGo2) -> None:
        self.session = session
        self._connected = False

    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        if not self._connected:
            self.session.acquire()
            self._connected = True

    def close(self) -> None:
        if self._connected:
            self._connected = False
            self.session.release()

    def _latest(self) -> tuple[Go2State, int]:
        if not self._connected:
            raise DeviceNotConnectedError(f"{type(self).__name__}: not connected (call connect() first)")
        return self.session.latest()


class Go2JointDriver(_Go2View, JointDriver):
    """The Go2's 12 leg motors in the robot definition's hardware order."""

    def health(self) -> Go2Health:
        """Motor temperatures and lost packets since connect."""
        if not self._connected:
            raise DeviceNotConnectedError("Go2JointDriver: not connected (call connect() first)")
        return self.session.health()

    def wireless_remote(self) -> tuple[bytes, int] | None:
        """The Go2 remote's newest frame and its receive time (:meth:`UnitreeGo2.wireless_remote`):
        the remote rides on the motors' session (:class:`hal.operator.go2_remote.CarriesGo2Remote`)."""
        return self.session.wireless_remote()

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.session.config.joint_names

    def read(self) -> JointState:
        """The newest joint state; all NaN once a motor fault latched (the safety layer then
        damps: ``joints_invalid``), until the session is reopened."""
        state, stamp = self._latest()
        if self.session.motor_fault is not None:
            nan = np.full(len(state.position_rad), np.nan)
            return JointState(nan, nan.copy(), state.torque_nm.copy(), stamp)
        return JointState(state.position_rad.copy(), state.velocity_rad_s.copy(), state.torque_nm.copy(), stamp)

    def write(self, command: JointCommand) -> None:
        if not self._connected:
            raise DeviceNotConnectedError("Go2JointDriver: not connected (call connect() first)")
        self.session.send(command)

    def close(self) -> None:
        """Leave the motors damped (``shutdown_kd``), then release the session."""
        if self._connected and self.session.config.send_commands:
            try:
                self.damp(np.full(len(self.joint_names), self.session.config.shutdown_kd))
            except Exception:  # noqa: BLE001 - shutdown must go on
                log.exception("Go2: damping command at shutdown failed")
        super().close()


class Go2Imu(_Go2View, Imu):
    """The Go2's body IMU (base frame; quaternion already w, x, y, z)."""

    def read(self) -> ImuSample:
        state, stamp = self._latest()
        return ImuSample(state.quaternion_wxyz.copy(), state.angular_velocity_rad_s.copy(),
                         state.linear_acceleration_m_s2.copy(), stamp)


class Go2FootContacts(_Go2View, FootContactSensor):
    """The Go2's foot pads, calibrated to newtons by the config's offset and scale."""

    def read(self) -> ContactSample:
        state, stamp = self._latest()
        cfg = self.session.config
        return ContactSample(foot_force_newton(state.foot_force_raw, cfg.foot_force_offset, cfg.foot_force_scale_n),
                             stamp)


def make_go2_devices(config: UnitreeGo2Config | None = None,
                     ) -> tuple[Go2JointDriver, Go2Imu, Go2FootContacts]:
    """The three devices of one Go2, sharing one session (not yet connected)."""
    session = UnitreeGo2(config)
    return Go2JointDriver(session), Go2Imu(session), Go2FootContacts(session)

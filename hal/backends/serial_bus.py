"""Serial motor-bus backend: a :class:`~hal.devices.base.JointDriver` talking to a motor MCU.

The protocol is specified in ``SERIAL_PROTOCOL.md`` (beside this module). One I/O thread reads the
port, decodes telemetry and status frames (rejecting and counting corrupted ones, resynchronising
on garbage) and sends a heartbeat every ``heartbeat_period_ms``; :meth:`SerialJointDriver.write`
sends targets from the caller's thread. A silent MCU never raises out of :meth:`read`: the joint
state keeps its last timestamp, so the server's staleness check moves the robot to damping, and
:meth:`SerialJointDriver.health` reports ``stale``.

``connect()`` is passive (it opens the port and waits for telemetry; it never powers the motors),
so ``krabby-hal-doctor`` can use it. The first :meth:`write` enables the power stage;
:meth:`close` leaves the motors damped, never unpowered.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from hal.devices.base import (
    CONTROL_MODE_DAMP,
    CONTROL_MODE_POSITION,
    DeviceError,
    DeviceNotConnectedError,
    JointCommand,
    JointDriver,
    JointState,
)
from hal.backends import serial_protocol as sp
from hal.config.fields import setting
from hal.log_limit import RateLimitedLog
from hal.optional import require
from hal.robot import RobotConfig

__all__ = ["SerialPortSection", "SerialBusConfig", "SerialBusHealth", "SerialJointDriver"]

log = logging.getLogger(__name__)

_WIRE_MODE = {CONTROL_MODE_POSITION: 0, CONTROL_MODE_DAMP: 1}
_READ_TIMEOUT_S = 0.002  # bounds the heartbeat jitter of the I/O thread


@dataclass(frozen=True)
class SerialPortSection:
    """The serial motor bus's settings on a command line: which port (the joints come from the
    robot definition, :meth:`SerialBusConfig.from_robot`)."""

    section: ClassVar[str] = "serial"
    title: ClassVar[str] = "serial motor bus"

    serial_port: str | None = setting(None, metavar="DEVICE",
                                      help="the motor MCU's serial device (/dev/ttyUSB0, or "
                                           "python -m hal.tools.mcu_emulator's pty): --motors "
                                           "serial drives it; krabby-hal-doctor queries it, the "
                                           "motors unpowered")
    baudrate: int = setting(2_000_000, help="the serial line's rate, baud")

    def __post_init__(self) -> None:
        if self.baudrate <= 0:
            raise ValueError(f"--baudrate {self.baudrate}: must be a positive number of baud")

    def bus_config(self, robot: RobotConfig) -> SerialBusConfig:
        """The bus's full settings for ``robot`` (refused without a port)."""
        if not self.serial_port:
            raise ValueError("motors 'serial' need a serial port (--serial-port /dev/ttyUSB0)")
        return SerialBusConfig.from_robot(robot, self.serial_port, baudrate=self.baudrate)


@dataclass(frozen=True)
class SerialBusConfig:
    """Settings of the serial motor bus.

    Attributes:
        port: Serial device (``/dev/ttyUSB0``, ``/dev/ttyTHS1``, or the emulator's pty).
        joint_names: Joints in the MCU's motor order (the robot's hardware order).
        baudrate: Line rate; see the bandwidth note in ``SERIAL_PROTOCOL.md``.
        timeout_ms: No telemetry for this long → the MCU is silent (stale).
        connect_timeout_ms: ``connect()`` fails without telemetry within this.
        heartbeat_period_ms: Heartbeat interval; keep it well under the MCU's link timeout.
        shutdown_kd: Damping gain :meth:`SerialJointDriver.close` leaves the motors in.
    """

    port: str
    joint_names: tuple[str, ...]
    baudrate: int = 2_000_000
    timeout_ms: float = 50.0
    connect_timeout_ms: float = 1000.0
    heartbeat_period_ms: float = 20.0
    shutdown_kd: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.port, str) or not self.port:
            raise ValueError(f"SerialBusConfig.port must name a serial device, got {self.port!r}")
        names = tuple(self.joint_names)
        if not names or len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"SerialBusConfig.joint_names must be unique non-empty names, got {self.joint_names!r}")
        if len(names) > 40:
            raise ValueError(f"{len(names)} joints do not fit the protocol's 512-byte payload (max 40)")
        object.__setattr__(self, "joint_names", names)
        if not isinstance(self.baudrate, int) or self.baudrate <= 0:
            raise ValueError(f"SerialBusConfig.baudrate must be a positive integer, got {self.baudrate!r}")
        for name in ("timeout_ms", "connect_timeout_ms", "heartbeat_period_ms"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"SerialBusConfig.{name} must be a positive number, got {value!r}")
        if not (math.isfinite(self.shutdown_kd) and self.shutdown_kd > 0):
            raise ValueError(f"SerialBusConfig.shutdown_kd must be positive, got {self.shutdown_kd!r}")

    @classmethod
    def from_robot(cls, robot: RobotConfig, port: str, **overrides: Any) -> SerialBusConfig:
        """Joint names (hardware order) from a robot definition; damping kd from its gains."""
        overrides.setdefault("shutdown_kd", float(np.max(robot.kd)) or 1.0)
        return cls(port=port, joint_names=robot.joint_names_hardware, **overrides)


@dataclass(frozen=True)
class SerialBusHealth:
    """Counters and freshness of the serial link."""

    connected: bool
    stale: bool  # no telemetry within timeout_ms
    telemetry_frames: int
    telemetry_age_ms: float
    mcu_time_us: int
    flags: int  # the MCU's status flags (serial_protocol.FLAG_*)
    mcu_rx_errors: int  # frames the MCU rejected
    bad_crc: int
    bad_length: int
    bad_version: int
    unknown_type: int
    bad_payload: int
    garbage_bytes: int
    seq_gaps: int
    commands_sent: int
    rejected_commands: int  # STATUS answers other than OK to our commands
    io_errors: int
    last_status: str

    @property
    def flags_text(self) -> str:
        return sp.describe_flags(self.flags)

    def to_dict(self) -> dict[str, Any]:
        """The counters for the run report (:class:`hal.devices.protocols.HealthReport`)."""
        return asdict(self)

    def summary(self) -> str:
        state = "STALE" if self.stale else "live"
        return (f"{state}, {self.telemetry_frames} telemetry frames (newest {self.telemetry_age_ms:.0f} ms old), "
                f"MCU flags {self.flags_text}, rejected here: {self.bad_crc} CRC / {self.bad_length} length / "
                f"{self.unknown_type} type / {self.bad_payload} payload, {self.garbage_bytes} garbage bytes, "
                f"MCU rejected {self.mcu_rx_errors}, commands rejected {self.rejected_commands}"
                + (f", last status: {self.last_status}" if self.last_status else ""))


class SerialJointDriver(JointDriver):
    """Joints behind a motor MCU on a serial line (see the module docstring)."""

    def __init__(self, config: SerialBusConfig) -> None:
        self.config = config
        n = len(config.joint_names)
        self._serial: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._state_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._decoder = sp.FrameDecoder(sp.MCU_MESSAGES)
        self._position = np.zeros(n)
        self._velocity = np.zeros(n)
        self._torque = np.zeros(n)
        self._telemetry_ns = 0
        self._telemetry_frames = 0
        self._mcu_time_us = 0
        self._flags = 0
        self._mcu_rx_errors = 0
        self._bad_payload = 0
        self._commands_sent = 0
        self._rejected = 0
        self._io_errors = 0
        self._last_status = ""
        self._mismatch = ""
        self._tx_seq = 0
        self._enabled_sent = False
        self._log = RateLimitedLog(log)

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.config.joint_names

    @property
    def is_connected(self) -> bool:
        return self._serial is not None

    # -- lifecycle ------------------------------------------------------------------------------

    def connect(self) -> None:
        if self._serial is not None:
            return
        serial = require("serial", "the serial motor bus")
        cfg = self.config
        try:
            port = serial.Serial(cfg.port, cfg.baudrate, timeout=_READ_TIMEOUT_S, write_timeout=0.1)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceError(f"motor bus: cannot open {cfg.port} at {cfg.baudrate} baud ({exc}). Check "
                              "the cable and the device name, and that this user may open it (group "
                              "'dialout').") from None
        port.reset_input_buffer()  # telemetry queued before we opened is old
        self._serial = port
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="serial-bus", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + cfg.connect_timeout_ms / 1e3
        while self._telemetry_frames == 0 and not self._mismatch and time.monotonic() < deadline:
            time.sleep(0.001)
        if self._mismatch:
            self._shutdown()
            raise DeviceError(f"motor bus on {cfg.port}: {self._mismatch}")
        if self._telemetry_frames == 0:
            health = self.health()
            self._shutdown()
            raise DeviceError(f"motor bus: no telemetry from the MCU on {cfg.port} within "
                              f"{cfg.connect_timeout_ms:.0f} ms ({health.garbage_bytes} stray bytes, "
                              f"{health.bad_crc + health.bad_length + health.bad_version} bad frames). Check "
                              f"the MCU's power and firmware and that both sides use {cfg.baudrate} baud.")
        log.info("motor bus on %s: MCU answering, flags %s", cfg.port, sp.describe_flags(self._flags))

    def close(self) -> None:
        """Leave the motors damped (if this driver enabled them), stop the thread, close the port."""
        if self._serial is None:
            return
        if self._enabled_sent:
            try:
                self.damp(np.full(len(self.joint_names), self.config.shutdown_kd))
            except DeviceError as exc:
                log.error("motor bus: could not send the damping command at shutdown: %s", exc)
        self._shutdown()

    def _shutdown(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self._serial is not None:
            self._serial.close()
            self._serial = None
        self._enabled_sent = False

    # -- commands -------------------------------------------------------------------------------

    def _send(self, msg_type: int, payload: bytes = b"") -> None:
        port = self._serial
        if port is None:
            raise DeviceNotConnectedError("motor bus: not connected (call connect() first)")
        with self._write_lock:
            self._tx_seq = (self._tx_seq + 1) & 0xFFFF
            frame = sp.encode_frame(msg_type, self._tx_seq, payload)
            try:
                port.write(frame)
            except Exception as exc:  # noqa: BLE001 - pyserial raises several types for a dead port
                self._io_errors += 1
                raise DeviceError(f"motor bus: writing to {self.config.port} failed: {exc}") from None

    def enable(self) -> None:
        """Power the motor stage (the MCU damps until the first position command)."""
        self._send(sp.MSG_ENABLE)
        self._enabled_sent = True

    def disable(self) -> None:
        """Unpower the motor stage: the joints go limp. Not part of a normal shutdown."""
        self._send(sp.MSG_DISABLE)
        self._enabled_sent = False

    def write(self, command: JointCommand) -> None:
        n = len(self.joint_names)
        arrays = [np.asarray(a, dtype=np.float64) for a in (command.target_rad, command.kp, command.kd)]
        for name, arr in zip(("target_rad", "kp", "kd"), arrays):
            if arr.shape != (n,):
                raise ValueError(f"JointCommand.{name} must have shape ({n},) for joints "
                                 f"{self.joint_names}, got {arr.shape}")
        if command.mode not in _WIRE_MODE:
            raise ValueError(f"JointCommand.mode {command.mode!r} is unknown; valid: {sorted(_WIRE_MODE)}")
        if not self._enabled_sent:
            self.enable()
        self._send(sp.MSG_SET_TARGETS, sp.encode_targets(_WIRE_MODE[command.mode], *arrays))
        self._commands_sent += 1

    # -- state ----------------------------------------------------------------------------------

    def read(self) -> JointState:
        if self._serial is None:
            raise DeviceNotConnectedError("motor bus: not connected (call connect() first)")
        with self._state_lock:
            return JointState(self._position.copy(), self._velocity.copy(), self._torque.copy(), self._telemetry_ns)

    @property
    def stale(self) -> bool:
        """True when no telemetry arrived within ``timeout_ms`` (or none ever)."""
        return self._telemetry_ns == 0 or time.monotonic_ns() - self._telemetry_ns > self.config.timeout_ms * 1e6

    def health(self) -> SerialBusHealth:
        stats = self._decoder.stats
        age_ms = math.inf if self._telemetry_ns == 0 else (time.monotonic_ns() - self._telemetry_ns) / 1e6
        return SerialBusHealth(
            connected=self._serial is not None, stale=self.stale, telemetry_frames=self._telemetry_frames,
            telemetry_age_ms=age_ms, mcu_time_us=self._mcu_time_us, flags=self._flags,
            mcu_rx_errors=self._mcu_rx_errors, bad_crc=stats.bad_crc, bad_length=stats.bad_length,
            bad_version=stats.bad_version, unknown_type=stats.unknown_type, bad_payload=self._bad_payload,
            garbage_bytes=stats.garbage_bytes, seq_gaps=stats.seq_gaps, commands_sent=self._commands_sent,
            rejected_commands=self._rejected, io_errors=self._io_errors, last_status=self._last_status)

    # -- I/O thread -----------------------------------------------------------------------------

    def _log_limited(self, message: str, *args: Any) -> None:
        # One key: at most one bus warning a second, whatever its kind.
        self._log.warning("bus", message, *args)

    def _on_telemetry(self, frame: sp.Frame, received_ns: int) -> None:
        try:
            telemetry = sp.decode_telemetry(frame.payload)
        except sp.ProtocolError as exc:
            self._bad_payload += 1
            self._log_limited("motor bus: bad telemetry payload: %s", exc)
            return
        n = len(self.joint_names)
        if len(telemetry.position_rad) != n:
            self._bad_payload += 1
            self._mismatch = (f"the MCU reports {len(telemetry.position_rad)} joints, the config names {n}: "
                              f"{self.joint_names}")
            self._log_limited("motor bus: %s", self._mismatch)
            return
        with self._state_lock:
            self._position, self._velocity, self._torque = (telemetry.position_rad, telemetry.velocity_rad_s,
                                                            telemetry.torque_nm)
            self._telemetry_ns = received_ns
        self._mcu_time_us = telemetry.mcu_time_us
        self._flags = telemetry.flags
        self._mcu_rx_errors = telemetry.rx_error_count
        self._telemetry_frames += 1

    def _on_status(self, frame: sp.Frame) -> None:
        try:
            status = sp.decode_status(frame.payload)
        except sp.ProtocolError as exc:
            self._bad_payload += 1
            self._log_limited("motor bus: bad status payload: %s", exc)
            return
        self._last_status = f"{status.name}: {status.text}" if status.text else status.name
        if status.code in (sp.STATUS_REJECTED_DISABLED, sp.STATUS_BAD_JOINT_COUNT, sp.STATUS_BAD_COMMAND):
            self._rejected += 1
        if status.code != sp.STATUS_OK:
            log.warning("motor bus: MCU status %s (answering frame %d)", self._last_status, status.ref_seq)

    def _run(self) -> None:
        port = self._serial
        period_s = self.config.heartbeat_period_ms / 1e3
        next_heartbeat = time.monotonic()
        while not self._stop.is_set():
            try:
                data = port.read(max(1, port.in_waiting))
            except Exception as exc:  # noqa: BLE001 - a vanished USB adapter raises various types
                self._io_errors += 1
                self._log_limited("motor bus: reading %s failed: %s", self.config.port, exc)
                self._stop.wait(0.01)
                continue
            if data:
                received_ns = time.monotonic_ns()
                for frame in self._decoder.feed(data):
                    if frame.msg_type == sp.MSG_TELEMETRY:
                        self._on_telemetry(frame, received_ns)
                    else:
                        self._on_status(frame)
            if time.monotonic() >= next_heartbeat:
                next_heartbeat += period_s
                if next_heartbeat < time.monotonic():
                    next_heartbeat = time.monotonic() + period_s
                try:
                    self._send(sp.MSG_HEARTBEAT, sp.encode_heartbeat(time.monotonic_ns()))
                except DeviceError as exc:
                    self._log_limited("%s", exc)

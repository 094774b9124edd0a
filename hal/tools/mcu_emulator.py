"""A motor microcontroller in software, speaking the serial protocol over a pseudo-terminal.

It stands in for the real MCU in tests and during bring-up: the host driver opens the pty's path
exactly like ``/dev/ttyUSB0``. The emulator runs each joint as a first-order system under PD
(viscous friction ``b``: ``b·dq = kp (target − q) − kd·dq``, torque clamped), answers with
telemetry at a fixed rate, applies the protocol's link and command timeouts (falling back to
damping), and can be told to misbehave: go silent, send corrupted frames, garbage or unknown types.

Run it standalone and point a driver (or ``krabby-hal-doctor --serial-port``) at the printed path::

    python -m hal.tools.mcu_emulator --robot go2
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import sys
import threading
import time
import tty
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from hal.backends import serial_protocol as sp
from hal.config import build_parser as build_config_parser
from hal.config import parse_cli, part, setting
from hal.config.sections import MeasureSection, RobotSection

__all__ = ["McuEmulatorConfig", "McuSnapshot", "McuEmulator", "first_order_pd_step", "main"]

log = logging.getLogger(__name__)


def first_order_pd_step(q: np.ndarray, target: np.ndarray, kp: np.ndarray, kd: np.ndarray,
                        viscous: float, torque_limit: float, dt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Advance first-order joints ``b·dq = kp (target − q) − kd·dq`` by ``dt`` seconds.

    Unsaturated joints follow the exact solution ``q* + (q − q*)·exp(−kp·dt / (b + kd))``; a joint
    whose torque would exceed ``torque_limit`` moves at the clamped torque's speed instead.

    Returns:
        New positions, velocities and torques (``tau = b·dq``).
    """
    rate = kp / (viscous + kd)
    velocity = rate * (target - q)
    torque = viscous * velocity
    saturated = np.abs(torque) > torque_limit
    q_exact = target + (q - target) * np.exp(-rate * dt)
    q_sat = q + np.clip(torque, -torque_limit, torque_limit) / viscous * dt
    q_new = np.where(saturated, q_sat, q_exact)
    velocity_new = np.where(saturated, np.clip(torque, -torque_limit, torque_limit) / viscous,
                            rate * (target - q_new))
    return q_new, velocity_new, viscous * velocity_new


@dataclass(frozen=True)
class McuEmulatorConfig:
    """Behaviour of the emulated MCU.

    Attributes:
        n_joints: Joints on the bus.
        telemetry_rate_hz: Telemetry frames per second.
        link_timeout_ms: No valid host frame for this long → damping (``LINK_TIMEOUT``).
        command_timeout_ms: Position mode without a new ``SET_TARGETS`` → damping.
        damping_kd: Damping gain the MCU uses when it damps on its own.
        viscous_nm_s_rad: Joint friction ``b`` of the first-order model.
        torque_limit_nm: Motor torque clamp.
        initial_position_rad: Start positions (None: zeros).
    """

    n_joints: int = 12
    telemetry_rate_hz: float = 500.0
    link_timeout_ms: float = 100.0
    command_timeout_ms: float = 250.0
    damping_kd: float = 1.0
    viscous_nm_s_rad: float = 0.2
    torque_limit_nm: float = 45.0
    initial_position_rad: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not 0 < self.n_joints <= 40:
            raise ValueError(f"n_joints must be in 1..40 (512-byte payloads), got {self.n_joints}")
        for name in ("telemetry_rate_hz", "link_timeout_ms", "command_timeout_ms", "viscous_nm_s_rad",
                     "torque_limit_nm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"McuEmulatorConfig.{name} must be positive, got {getattr(self, name)!r}")
        if self.initial_position_rad is not None and len(self.initial_position_rad) != self.n_joints:
            raise ValueError(f"initial_position_rad has {len(self.initial_position_rad)} values for "
                             f"{self.n_joints} joints")


@dataclass(frozen=True)
class McuSnapshot:
    """The emulator's state at one instant (for tests and the CLI)."""

    position_rad: np.ndarray
    velocity_rad_s: np.ndarray
    torque_nm: np.ndarray
    flags: int
    mode: int
    enabled: bool
    last_targets: sp.Targets | None
    rx_errors: int
    telemetry_sent: int
    statuses_sent: tuple[sp.Status, ...]


class McuEmulator:
    """The emulated MCU on its own thread, reachable at :attr:`port` once started."""

    def __init__(self, config: McuEmulatorConfig | None = None) -> None:
        self.config = config or McuEmulatorConfig()
        n = self.config.n_joints
        initial = self.config.initial_position_rad
        self._q = np.zeros(n) if initial is None else np.array(initial, dtype=np.float64)
        self._dq = np.zeros(n)
        self._tau = np.zeros(n)
        self._target = self._q.copy()
        self._kp = np.zeros(n)
        self._kd = np.full(n, self.config.damping_kd)
        self._mode = 1
        self._enabled = False
        self._fault = False
        self._link_timed_out = False
        self._command_timed_out = False
        self._last_targets: sp.Targets | None = None
        self._statuses: list[sp.Status] = []
        self._decoder = sp.FrameDecoder(sp.HOST_MESSAGES)
        self._payload_errors = 0
        self._telemetry_sent = 0
        self._tx_seq = 0
        self._silent = False
        self._corrupt_next = 0
        self._outbox: list[bytes] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._master = self._slave = -1
        self.port = ""

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> str:
        """Open the pseudo-terminal and start answering; returns the port path."""
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line editing: a byte pipe like a UART
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)
        self._start_ns = time.monotonic_ns()
        now = self._start_ns
        self._last_rx_ns = self._last_cmd_ns = self._last_step_ns = now
        self._thread = threading.Thread(target=self._run, name="mcu-emulator", daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        """Stop the thread and close the pty. Safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1

    def __enter__(self) -> McuEmulator:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- fault injection ------------------------------------------------------------------------

    def set_silent(self, silent: bool) -> None:
        """Stop (or resume) sending anything, like a hung MCU; commands are still received."""
        self._silent = silent

    def corrupt_telemetry(self, count: int = 1) -> None:
        """Send the next ``count`` telemetry frames with a wrong CRC."""
        with self._lock:
            self._corrupt_next += count

    def send_raw(self, data: bytes) -> None:
        """Queue raw bytes (noise, half frames) onto the line."""
        with self._lock:
            self._outbox.append(bytes(data))

    def send_frame(self, msg_type: int, payload: bytes = b"") -> None:
        """Queue a well-formed frame of any type (an unknown one, to test the host's filter)."""
        with self._lock:
            self._outbox.append(self._frame(msg_type, payload))

    def trigger_fault(self, text: str = "over-temperature") -> None:
        """Enter ``FAULT``: damp until the host disables and re-enables."""
        with self._lock:
            self._fault = True
            self._damp()
            self._queue_status(sp.STATUS_FAULT, 0, text)

    # -- inspection -----------------------------------------------------------------------------

    def snapshot(self) -> McuSnapshot:
        with self._lock:
            return McuSnapshot(self._q.copy(), self._dq.copy(), self._tau.copy(), self._flags(), self._mode,
                               self._enabled, self._last_targets, self._rx_errors(), self._telemetry_sent,
                               tuple(self._statuses))

    @property
    def decoder_stats(self) -> sp.DecoderStats:
        return self._decoder.stats

    # -- internals (emulator thread; state guarded by _lock) --------------------------------------

    def _rx_errors(self) -> int:
        return self._decoder.stats.rejected + self._payload_errors

    def _flags(self) -> int:
        flags = 0
        if self._enabled:
            flags |= sp.FLAG_ENABLED
            if self._mode == 1:
                flags |= sp.FLAG_DAMPING
        if self._link_timed_out:
            flags |= sp.FLAG_LINK_TIMEOUT
        if self._command_timed_out:
            flags |= sp.FLAG_COMMAND_TIMEOUT
        if self._fault:
            flags |= sp.FLAG_FAULT
        return flags

    def _frame(self, msg_type: int, payload: bytes) -> bytes:
        self._tx_seq = (self._tx_seq + 1) & 0xFFFF
        return sp.encode_frame(msg_type, self._tx_seq, payload)

    def _queue_status(self, code: int, ref_seq: int, text: str) -> None:
        status = sp.Status(code, ref_seq, text)
        self._statuses.append(status)
        self._outbox.append(self._frame(sp.MSG_STATUS, sp.encode_status(code, ref_seq, text)))

    def _damp(self) -> None:
        self._mode = 1
        self._kp[:] = 0.0
        self._kd[:] = self.config.damping_kd

    def _handle(self, frame: sp.Frame, now_ns: int) -> None:
        self._last_rx_ns = now_ns
        if frame.msg_type == sp.MSG_HEARTBEAT:
            try:
                sp.decode_heartbeat(frame.payload)
            except sp.ProtocolError:
                self._payload_errors += 1
            return
        if frame.msg_type == sp.MSG_ENABLE:
            self._enabled = True
            self._queue_status(sp.STATUS_OK, frame.seq, "enabled")
            return
        if frame.msg_type == sp.MSG_DISABLE:
            self._enabled = False
            self._fault = False
            self._damp()
            self._queue_status(sp.STATUS_OK, frame.seq, "disabled")
            return
        try:
            targets = sp.decode_targets(frame.payload)
        except sp.ProtocolError as exc:
            self._payload_errors += 1
            self._queue_status(sp.STATUS_BAD_COMMAND, frame.seq, str(exc))
            return
        if len(targets.target_rad) != self.config.n_joints:
            self._queue_status(sp.STATUS_BAD_JOINT_COUNT, frame.seq,
                               f"{len(targets.target_rad)} joints, this MCU has {self.config.n_joints}")
            return
        problem = sp.targets_are_valid(targets)
        if problem:
            self._queue_status(sp.STATUS_BAD_COMMAND, frame.seq, problem)
            return
        if not self._enabled:
            self._queue_status(sp.STATUS_REJECTED_DISABLED, frame.seq, "send ENABLE first")
            return
        if self._fault:
            self._queue_status(sp.STATUS_FAULT, frame.seq, "fault latched: DISABLE then ENABLE")
            return
        self._last_targets = targets
        self._last_cmd_ns = now_ns
        self._link_timed_out = self._command_timed_out = False
        self._mode = targets.mode
        self._target = targets.target_rad.copy()
        self._kp = np.zeros_like(targets.kp) if targets.mode == 1 else targets.kp.copy()
        self._kd = targets.kd.copy()

    def _check_timeouts(self, now_ns: int) -> None:
        if not self._enabled:
            return
        if not self._link_timed_out and now_ns - self._last_rx_ns > self.config.link_timeout_ms * 1e6:
            self._link_timed_out = True
            self._damp()
            self._queue_status(sp.STATUS_LINK_TIMEOUT, 0, "no host frame: damping")
        if (self._mode == 0 and not self._command_timed_out
                and now_ns - self._last_cmd_ns > self.config.command_timeout_ms * 1e6):
            self._command_timed_out = True
            self._damp()
            self._queue_status(sp.STATUS_COMMAND_TIMEOUT, 0, "no fresh targets: damping")

    def _integrate(self, now_ns: int) -> None:
        dt = (now_ns - self._last_step_ns) / 1e9
        self._last_step_ns = now_ns
        if dt <= 0:
            return
        if not self._enabled:
            self._dq[:] = 0.0
            self._tau[:] = 0.0
            return
        cfg = self.config
        self._q, self._dq, self._tau = first_order_pd_step(self._q, self._target, self._kp, self._kd,
                                                           cfg.viscous_nm_s_rad, cfg.torque_limit_nm, dt)

    def _telemetry_frame(self, now_ns: int) -> bytes:
        payload = sp.encode_telemetry((now_ns - self._start_ns) // 1000, self._flags(), self._rx_errors(),
                                      self._mode, self._q, self._dq, self._tau)
        frame = bytearray(self._frame(sp.MSG_TELEMETRY, payload))
        if self._corrupt_next > 0:
            self._corrupt_next -= 1
            frame[-1] ^= 0xFF
        self._telemetry_sent += 1
        return bytes(frame)

    def _write(self, data: bytes) -> None:
        try:
            os.write(self._master, data)
        except (BlockingIOError, OSError):
            pass  # nobody is reading: the line drops bytes, as a UART would

    def _run(self) -> None:
        period_ns = int(1e9 / self.config.telemetry_rate_hz)
        next_tx = time.monotonic_ns()
        while not self._stop.is_set():
            timeout_s = max(0.0, (next_tx - time.monotonic_ns()) / 1e9)
            try:
                readable, _, _ = select.select([self._master], [], [], min(timeout_s, 0.01))
                data = os.read(self._master, 4096) if readable else b""
            except (BlockingIOError, InterruptedError):
                data = b""
            except OSError:
                data = b""
                time.sleep(0.001)
            now = time.monotonic_ns()
            out: list[bytes] = []
            with self._lock:
                for frame in self._decoder.feed(data) if data else []:
                    self._handle(frame, now)
                self._integrate(now)
                self._check_timeouts(now)
                if now >= next_tx:
                    out.append(self._telemetry_frame(now))
                    next_tx += period_ns
                    if next_tx < now:
                        next_tx = now + period_ns
                out, self._outbox = self._outbox + out, []
            if not self._silent:
                for chunk in out:
                    self._write(chunk)


@dataclass(frozen=True)
class McuEmulatorSection:
    """The emulated MCU's joints and timeouts."""

    section: ClassVar[str] = "mcu"

    joints: int | None = setting(None, metavar="N", help="joint count (default 12, or the robot's)")
    link_timeout_ms: float = setting(100.0, metavar="MS", help="link timeout, ms")
    command_timeout_ms: float = setting(250.0, metavar="MS", help="command timeout, ms")


@dataclass(frozen=True)
class McuEmulatorCliConfig:
    """``python -m hal.tools.mcu_emulator``'s run configuration."""

    # None: 12 joints at zero; a robot gives its joint count and start pose
    robot: RobotSection = part(RobotSection, defaults={"robot": None})
    mcu: McuEmulatorSection = part(McuEmulatorSection)
    # the MCU's telemetry rate
    measure: MeasureSection = part(MeasureSection, only=("rate_hz",), defaults={"rate_hz": 500.0})


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(McuEmulatorCliConfig, prog="python -m hal.tools.mcu_emulator",
                               description="Emulate the motor MCU on a pseudo-terminal; prints its "
                                           "path.")


def main(argv: list[str] | None = None) -> int:
    cli = parse_cli(McuEmulatorCliConfig, argv, build_parser())
    initial = None
    n = cli.mcu.joints or 12
    try:
        if cli.robot.robot:
            from hal.robot import load_robot

            robot = load_robot(cli.robot.robot)
            n = cli.mcu.joints or robot.n_joints
            if n == robot.n_joints:
                initial = tuple(float(v) for v in robot.to_hardware(robot.default_angles))
        config = McuEmulatorConfig(n_joints=n, telemetry_rate_hz=cli.measure.rate_hz,
                                   link_timeout_ms=cli.mcu.link_timeout_ms,
                                   command_timeout_ms=cli.mcu.command_timeout_ms, initial_position_rad=initial)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    with McuEmulator(config) as emulator:
        print(emulator.port, flush=True)
        print(f"MCU emulator: {n} joints, telemetry {cli.measure.rate_hz:g} Hz on {emulator.port}; Ctrl-C stops",
              file=sys.stderr, flush=True)
        while not done.wait(1.0):
            pass
        snap = emulator.snapshot()
        print(f"stopped: {snap.telemetry_sent} telemetry frames sent, {snap.rx_errors} bad frames received",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

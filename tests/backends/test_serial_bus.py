"""SerialJointDriver against the MCU emulator over a real pseudo-terminal (pyserial on both ends of
the protocol): command round trip, rejected corrupted frames, a silent MCU, the MCU's own timeouts."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

from tests.child_process import ChildProcess
from hal.devices.base import DeviceError, JointCommand
from hal.backends import serial_protocol as sp
from hal.tools.mcu_emulator import McuEmulator, McuEmulatorConfig
from hal.backends.serial_bus import SerialBusConfig, SerialJointDriver
from hal.robot import load_robot

NAMES = ("hip", "thigh", "calf")


def wait_until(predicate, timeout_s: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


@pytest.fixture
def emulator():
    emu = McuEmulator(McuEmulatorConfig(n_joints=3, initial_position_rad=(0.1, 0.8, -1.5)))
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def driver(emulator):
    drv = SerialJointDriver(SerialBusConfig(port=emulator.port, joint_names=NAMES, timeout_ms=50))
    drv.connect()
    yield drv
    drv.close()


def command(targets, kp=40.0, kd=1.0) -> JointCommand:
    return JointCommand(np.asarray(targets, float), np.full(3, kp), np.full(3, kd))


def test_connect_is_passive_and_reads_the_mcu_pose(emulator, driver):
    state = driver.read()
    np.testing.assert_allclose(state.position_rad, [0.1, 0.8, -1.5], rtol=1e-6)
    assert state.timestamp_ns > 0 and not driver.stale
    assert not emulator.snapshot().enabled  # connecting never powers the motors


def test_command_round_trip(emulator, driver):
    targets = [0.3, 0.6, -1.2]
    driver.write(command(targets, kp=40.0, kd=1.0))
    # The MCU received exactly what was sent (float32 on the wire).
    wait_until(lambda: emulator.snapshot().last_targets is not None, what="the MCU to get the targets")
    got = emulator.snapshot().last_targets
    assert got.mode == 0
    np.testing.assert_array_equal(got.target_rad, np.float32(targets))
    np.testing.assert_array_equal(got.kp, 40.0)
    # ...and its joints move there, which comes back in telemetry.
    wait_until(lambda: np.allclose(driver.read().position_rad, targets, atol=1e-3), what="joints at target")
    snap = emulator.snapshot()
    assert snap.enabled and snap.flags & sp.FLAG_ENABLED and not snap.flags & sp.FLAG_DAMPING
    health = driver.health()
    assert health.commands_sent == 1 and health.rejected_commands == 0
    assert health.bad_crc == health.unknown_type == health.bad_payload == 0 and health.mcu_rx_errors == 0


def test_corrupted_frames_are_rejected_counted_and_the_link_recovers(emulator, driver):
    frames_before = driver.health().telemetry_frames
    emulator.corrupt_telemetry(3)
    emulator.send_raw(b"\x00\xaa\x55\xaa\xff line noise \xaa")
    emulator.send_frame(0x99, b"a type nobody knows")
    wait_until(lambda: driver.health().bad_crc >= 3 and driver.health().unknown_type >= 1,
               what="the corrupted frames to be counted")
    wait_until(lambda: driver.health().telemetry_frames > frames_before + 10, what="fresh telemetry")
    health = driver.health()
    assert health.bad_crc == 3 and health.unknown_type == 1 and health.garbage_bytes > 0
    assert not driver.stale
    assert health.seq_gaps >= 3  # the corrupted frames are missing from the MCU's sequence


def test_a_silent_mcu_is_detected_as_stale_and_recovers(emulator, driver):
    assert not driver.stale
    emulator.set_silent(True)
    wait_until(lambda: driver.stale, what="the driver to notice the silence")
    frozen = driver.read().timestamp_ns
    time.sleep(0.02)
    assert driver.read().timestamp_ns == frozen  # the state stops being new; read() does not raise
    assert driver.health().stale and "STALE" in driver.health().summary()
    emulator.set_silent(False)
    wait_until(lambda: not driver.stale, what="telemetry to resume")
    assert driver.read().timestamp_ns > frozen


def test_connect_fails_clearly_when_the_mcu_never_answers(emulator):
    emulator.set_silent(True)
    drv = SerialJointDriver(SerialBusConfig(port=emulator.port, joint_names=NAMES, connect_timeout_ms=100))
    with pytest.raises(DeviceError, match=f"no telemetry from the MCU on {emulator.port}"):
        drv.connect()
    assert not drv.is_connected


def test_connect_fails_clearly_on_a_missing_port_or_a_joint_count_mismatch(emulator):
    with pytest.raises(DeviceError, match="cannot open /dev/does-not-exist"):
        SerialJointDriver(SerialBusConfig(port="/dev/does-not-exist", joint_names=NAMES)).connect()
    drv = SerialJointDriver(SerialBusConfig(port=emulator.port, joint_names=NAMES + ("extra",)))
    with pytest.raises(DeviceError, match="the MCU reports 3 joints"):
        drv.connect()


def test_the_mcu_rejects_a_bad_command_and_the_driver_counts_it(emulator, driver):
    driver.write(command([0.0, float("nan"), 0.0]))
    wait_until(lambda: driver.health().rejected_commands == 1, what="the rejection")
    assert "BAD_COMMAND" in driver.health().last_status and "non-finite" in driver.health().last_status
    assert emulator.snapshot().last_targets is None


def test_the_mcu_damps_when_fresh_targets_stop_although_heartbeats_go_on(emulator, driver):
    driver.write(command([0.2, 0.7, -1.4]))
    wait_until(lambda: driver.health().flags & sp.FLAG_COMMAND_TIMEOUT, timeout_s=5, what="command timeout")
    flags = driver.health().flags
    assert flags & sp.FLAG_DAMPING and not flags & sp.FLAG_LINK_TIMEOUT
    assert emulator.snapshot().mode == 1


def test_the_mcu_damps_when_the_host_goes_quiet(emulator):
    """A raw host: enable, one position command, then nothing — no heartbeat either."""
    serial = pytest.importorskip("serial")
    port = serial.Serial(emulator.port, 2_000_000, timeout=0.01)
    try:
        port.write(sp.encode_frame(sp.MSG_ENABLE, 1) + sp.encode_frame(
            sp.MSG_SET_TARGETS, 2, sp.encode_targets(0, [0.1, 0.8, -1.5], [40] * 3, [1] * 3)))
        dec = sp.FrameDecoder(sp.MCU_MESSAGES)
        flags_seen = []
        deadline = time.monotonic() + 5
        while not any(f & sp.FLAG_LINK_TIMEOUT for f in flags_seen):
            assert time.monotonic() < deadline, "the MCU never reported a link timeout"
            for frame in dec.feed(port.read(4096)):
                if frame.msg_type == sp.MSG_TELEMETRY:
                    flags_seen.append(sp.decode_telemetry(frame.payload).flags)
        assert any(f & sp.FLAG_ENABLED and not f & sp.FLAG_DAMPING for f in flags_seen)  # it ran first
        assert flags_seen[-1] & sp.FLAG_DAMPING
    finally:
        port.close()
    assert any(s.code == sp.STATUS_LINK_TIMEOUT for s in emulator.snapshot().statuses_sent)


def test_close_leaves_the_motors_damped_not_unpowered(emulator):
    drv = SerialJointDriver(SerialBusConfig(port=emulator.port, joint_names=NAMES, shutdown_kd=2.0))
    drv.connect()
    drv.write(command([0.1, 0.8, -1.5]))
    drv.close()
    wait_until(lambda: emulator.snapshot().last_targets is not None
               and emulator.snapshot().last_targets.mode == 1, what="the damping command")
    snap = emulator.snapshot()
    assert snap.enabled and snap.mode == 1
    np.testing.assert_array_equal(snap.last_targets.kd, 2.0)
    drv.close()  # twice is harmless


def test_write_rejects_commands_of_the_wrong_size(driver):
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        driver.write(JointCommand(np.zeros(4), np.zeros(4), np.zeros(4)))
    driver.damp(np.ones(3))  # damping is a valid command
    assert driver.health().commands_sent == 1


def test_config_validation_names_the_bad_field():
    with pytest.raises(ValueError, match="joint_names"):
        SerialBusConfig(port="/dev/ttyUSB0", joint_names=("a", "a"))
    with pytest.raises(ValueError, match="timeout_ms"):
        SerialBusConfig(port="/dev/ttyUSB0", joint_names=NAMES, timeout_ms=0)
    cfg = SerialBusConfig.from_robot(load_robot("go2"), "/dev/ttyUSB0")
    assert cfg.joint_names[0] == "FR_hip_joint" and len(cfg.joint_names) == 12


def test_emulator_runs_as_a_module_and_prints_its_port():
    with ChildProcess([sys.executable, "-m", "hal.tools.mcu_emulator", "--robot", "go2"],
                      timeout_s=30) as proc:
        port = proc.first_line().strip()
        assert port.startswith("/dev/"), proc.output
        robot = load_robot("go2")
        drv = SerialJointDriver(SerialBusConfig.from_robot(robot, port))
        with drv:
            np.testing.assert_allclose(drv.read().position_rad, robot.to_hardware(robot.default_angles), atol=1e-6)
    assert proc.returncode == 0, proc.output

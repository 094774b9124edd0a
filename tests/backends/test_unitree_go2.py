"""Go2 backend logic without a robot: joint-name to motor-slot mapping, LowCmd packing, LowState
unpacking, foot-force calibration, and the SDK gate."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from hal.devices.base import CONTROL_MODE_DAMP, JointCommand
from hal.backends.unitree_go2 import (
    GO2_MOTOR_NAMES,
    GO2_MOTOR_SLOTS,
    POS_STOP_F,
    SERVO_MODE,
    VEL_STOP_F,
    UnitreeGo2Config,
    foot_force_newton,
    low_cmd_arrays,
    low_state_arrays,
    make_go2_devices,
    motor_slots,
)
from hal.optional import MissingDependencyError, available
from hal.robot import load_robot

SHUFFLED = Path(__file__).resolve().parents[1] / "data" / "go2_shuffled.toml"


def test_shipped_go2_hardware_order_is_the_sdk_motor_order():
    robot = load_robot("go2")
    np.testing.assert_array_equal(motor_slots(robot.joint_names_hardware), np.arange(12))


def test_a_shuffled_hardware_order_maps_each_joint_to_its_own_motor():
    robot = load_robot(SHUFFLED)
    slots = motor_slots(robot.joint_names_hardware)
    for name, slot in zip(robot.joint_names_hardware, slots):
        assert GO2_MOTOR_NAMES[slot] == name
    # A command in hardware order lands in the slot of the joint it names.
    target = np.arange(12) * 0.1
    arrays = low_cmd_arrays(JointCommand(target, np.full(12, 40.0), np.full(12, 1.0)), slots)
    for i, name in enumerate(robot.joint_names_hardware):
        assert arrays.q[GO2_MOTOR_NAMES.index(name)] == pytest.approx(target[i])


def test_position_command_packing():
    slots = motor_slots(GO2_MOTOR_NAMES)
    target = np.linspace(-1, 1, 12)
    arrays = low_cmd_arrays(JointCommand(target, np.full(12, 40.0), np.full(12, 0.8)), slots)
    assert arrays.q.shape == (GO2_MOTOR_SLOTS,)
    np.testing.assert_array_equal(arrays.q[:12], target)
    np.testing.assert_array_equal(arrays.dq[:12], 0.0)
    np.testing.assert_array_equal(arrays.kp[:12], 40.0)
    np.testing.assert_array_equal(arrays.kd[:12], 0.8)
    np.testing.assert_array_equal(arrays.tau, 0.0)
    np.testing.assert_array_equal(arrays.mode, SERVO_MODE)
    # The 8 slots without a leg joint stay stopped.
    np.testing.assert_array_equal(arrays.q[12:], POS_STOP_F)
    np.testing.assert_array_equal(arrays.dq[12:], VEL_STOP_F)
    np.testing.assert_array_equal(arrays.kp[12:], 0.0)
    np.testing.assert_array_equal(arrays.kd[12:], 0.0)


def test_damp_command_has_no_stiffness_and_no_position_target():
    slots = motor_slots(GO2_MOTOR_NAMES)
    arrays = low_cmd_arrays(JointCommand(np.ones(12), np.full(12, 40.0), np.full(12, 2.0),
                                         mode=CONTROL_MODE_DAMP), slots)
    np.testing.assert_array_equal(arrays.kp, 0.0)
    np.testing.assert_array_equal(arrays.kd[:12], 2.0)
    np.testing.assert_array_equal(arrays.q[:12], POS_STOP_F)
    np.testing.assert_array_equal(arrays.dq[:12], 0.0)


def test_bad_commands_and_names_are_rejected_with_the_reason():
    slots = motor_slots(GO2_MOTOR_NAMES)
    with pytest.raises(ValueError, match=r"shape \(12,\)"):
        low_cmd_arrays(JointCommand(np.zeros(11), np.zeros(12), np.zeros(12)), slots)
    with pytest.raises(ValueError, match="mode 7"):
        low_cmd_arrays(JointCommand(np.zeros(12), np.zeros(12), np.zeros(12), mode=7), slots)
    with pytest.raises(ValueError, match="FR_knee_joint"):
        motor_slots(("FR_knee_joint",))
    with pytest.raises(ValueError, match="foot_force_offset"):
        UnitreeGo2Config(foot_force_offset=(0.0, 0.0))


def _low_state(q, dq, tau, foot):
    """A message shaped like unitree_go.msg.dds_.LowState_ (only the fields the backend reads)."""
    motors = [SimpleNamespace(q=0.0, dq=0.0, tau_est=0.0, temperature=30, lost=0) for _ in range(GO2_MOTOR_SLOTS)]
    for i in range(12):
        motors[i] = SimpleNamespace(q=q[i], dq=dq[i], tau_est=tau[i], temperature=40 + i, lost=7 * i)
    imu = SimpleNamespace(quaternion=[0.9, 0.1, 0.2, 0.3], gyroscope=[0.01, 0.02, 0.03],
                          accelerometer=[0.1, 0.0, 9.8])
    return SimpleNamespace(motor_state=motors, imu_state=imu, foot_force=list(foot), tick=1234)


def test_low_state_unpacks_into_hardware_order():
    robot = load_robot(SHUFFLED)
    cfg = UnitreeGo2Config.from_robot(robot)
    slots = motor_slots(cfg.joint_names)
    q, dq, tau = np.arange(12) * 0.1, np.arange(12) * -1.0, np.arange(12) * 2.0
    msg = _low_state(q, dq, tau, foot=[10, 20, 30, 40])
    state = low_state_arrays(msg, slots, np.arange(4))
    for i, name in enumerate(cfg.joint_names):
        k = GO2_MOTOR_NAMES.index(name)
        assert (state.position_rad[i], state.velocity_rad_s[i], state.torque_nm[i]) == (q[k], dq[k], tau[k])
    np.testing.assert_array_equal(state.quaternion_wxyz, [0.9, 0.1, 0.2, 0.3])  # Unitree is already w-first
    np.testing.assert_array_equal(state.foot_force_raw, [10, 20, 30, 40])
    assert state.tick == 1234
    for i, name in enumerate(cfg.joint_names):
        k = GO2_MOTOR_NAMES.index(name)
        assert (state.motor_temperature_c[i], state.motor_lost[i]) == (40 + k, 7 * k)


def test_foot_force_calibration():
    force = foot_force_newton(np.array([30.0, 10.0, 55.0, 20.0]), np.array([20.0, 20.0, 15.0, 20.0]), 0.5)
    np.testing.assert_allclose(force, [5.0, 0.0, 20.0, 0.0])


@pytest.mark.skipif(available("unitree_sdk2py"), reason="the Unitree SDK is installed here")
def test_connect_without_the_sdk_names_how_to_install_it():
    joints, imu, contacts = make_go2_devices(UnitreeGo2Config(network_interface="lo", release_sport_mode=False))
    for device in (joints, imu, contacts):
        with pytest.raises(MissingDependencyError, match="unitree_sdk2_python"):
            device.connect()
        assert not device.is_connected
        device.close()


def _sdk_low_state(remote: bytes):
    """A real ``LowState_`` of Unitree's SDK with ``remote`` and the CRC the robot computes."""
    defaults = pytest.importorskip("unitree_sdk2py.idl.default")
    crc = pytest.importorskip("unitree_sdk2py.utils.crc")
    msg = defaults.unitree_go_msg_dds__LowState_()
    msg.imu_state.quaternion = [1.0, 0.0, 0.0, 0.0]
    msg.wireless_remote = list(remote)
    msg.crc = crc.CRC().Crc(msg)
    return msg, crc.CRC()


def test_wireless_remote_bytes_reach_the_operator_decoder():
    """LowState_.wireless_remote (a list of 40 uint8 in the IDL) is kept with its receive time
    and decodes into the operator's events (start pressed, left stick half up)."""
    import struct

    from hal.backends.unitree_go2 import UnitreeGo2
    from hal.operator import Action
    from hal.operator.go2_remote import Go2RemoteDecoder, Go2RemoteSource

    frame = bytearray(40)
    struct.pack_into("<H", frame, 2, 1 << 2)  # start
    struct.pack_into("<f", frame, 20, 0.5)  # ly
    msg, crc = _sdk_low_state(bytes(frame))
    session = UnitreeGo2(UnitreeGo2Config.from_robot(load_robot("go2")))
    session._crc = crc  # what connect() sets up
    assert session.wireless_remote() is None
    session._on_low_state(msg)  # what the SDK's DDS thread calls
    raw, received_ns = session.wireless_remote()
    assert raw == bytes(frame) and received_ns > 0
    source = Go2RemoteSource(session.wireless_remote, Go2RemoteDecoder(1.0, 1.0, deadzone=0.0))
    events = source.poll(0)
    assert [e.action for e in events] == [Action.START, None]
    assert events[1].forward_speed_m_s == pytest.approx(0.5)


def test_a_lowstate_with_a_wrong_crc_is_dropped_and_counted():
    from hal.backends.unitree_go2 import UnitreeGo2

    msg, crc = _sdk_low_state(bytes(40))
    session = UnitreeGo2(UnitreeGo2Config.from_robot(load_robot("go2")))
    session._crc = crc
    session._on_low_state(msg)
    state, first_ns = session.latest()
    bad, _ = _sdk_low_state(bytes(40))
    bad.tick = 99
    bad.crc = crc.Crc(msg)  # the CRC of another message
    session._on_low_state(bad)
    state_after, after_ns = session.latest()
    assert session.counters["lowstate_crc_rejected"] == 1
    assert session.counters["lowstate_received"] == 2
    assert state_after.tick == 0 and after_ns == first_ns  # the previous state stays, growing older


def test_entry_problems_by_hand():
    from hal.backends import unitree_go2
    from hal.backends.unitree_go2 import entry_problems

    cfg = UnitreeGo2Config(max_motor_temperature_c=70.0, max_lost_per_s=5.0)

    def state(temps, lost):
        z = np.zeros(12)
        return unitree_go2.Go2State(z, z, z, np.array([1.0, 0, 0, 0]), np.zeros(3), np.zeros(3), np.zeros(4), 0,
                                    np.array(temps, dtype=float), np.array(lost, dtype=np.int64))

    first = state([40] * 12, [2**32 - 2] + [0] * 11)  # counter about to wrap
    last = state([40] * 11 + [70], [3] + [0] * 10 + [1])
    problems = entry_problems(first, last, 0.5, cfg)
    # FR_hip: 5 lost in 0.5 s = 10/s > 5/s (across the uint32 wrap); RL_calf 70 °C >= 70; RL_calf 1 lost = 2/s: fine.
    assert problems == ["RL_calf_joint is at 70 °C (limit 70 °C)", "FR_hip_joint loses 10 packets/s (limit 5/s)"]

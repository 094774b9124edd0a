"""The Go2 session against a fake ``unitree_sdk2py`` with the SDK's signatures (tests/fakes):
sport-mode release, the entry checks on motor temperature and lost packets, commands out."""

from __future__ import annotations

import numpy as np
import pytest

from hal.devices.base import DeviceError, JointCommand
from hal.jetson import unitree_go2
from hal.jetson.unitree_go2 import UnitreeGo2Config, entry_problems, make_go2_devices
from tests.fakes import install
from tests.fakes.unitree import Go2Script, make_unitree_sdk

FAST = dict(connect_timeout_ms=2000.0, entry_check_ms=100.0)


@pytest.fixture
def go2(monkeypatch):
    monkeypatch.setattr(unitree_go2, "_RELEASE_WAIT_S", 0.01)
    monkeypatch.setattr(unitree_go2, "_channels_initialized", False)

    def make(**fields) -> Go2Script:
        script = Go2Script(**fields)
        install(monkeypatch, make_unitree_sdk(script))
        return script

    return make


def test_a_failed_check_mode_rpc_is_refused_and_no_command_is_sent(go2):
    script = go2(check_mode=[(3104, None)])  # RPC timeout: the SDK returns (code, None)
    joints, _, _ = make_go2_devices(UnitreeGo2Config(**FAST))
    with pytest.raises(DeviceError, match="CheckMode failed \\(code 3104\\)"):
        joints.connect()
    assert not joints.is_connected
    assert script.published_cmds == [] and "ReleaseMode" not in script.calls


def test_active_sport_mode_is_released_then_checked_again(go2):
    script = go2(check_mode=[(0, {"form": "0", "name": "normal"}), (0, {"form": "0", "name": ""})])
    joints, imu, _ = make_go2_devices(UnitreeGo2Config(**FAST))
    with joints, imu:
        assert joints.read().position_rad.shape == (12,)
        joints.write(JointCommand(np.zeros(12), np.full(12, 20.0), np.full(12, 0.5)))
    assert script.calls.count("CheckMode") == 2 and "StandDown" in script.calls and "ReleaseMode" in script.calls
    sent = script.published_cmds[0]
    assert sent.motor_cmd[0].kp == 20.0 and sent.crc == 0x1234
    assert script.published_cmds[-1].motor_cmd[0].kp == 0.0  # closed damped


def test_a_hot_motor_refuses_entry_naming_it(go2):
    temps = [35] * 20
    temps[5] = 82  # FL_calf_joint
    go2(temperature_c=temps)
    joints, _, _ = make_go2_devices(UnitreeGo2Config(**FAST))
    with pytest.raises(DeviceError, match="FL_calf_joint is at 82 °C"):
        joints.connect()
    assert not joints.is_connected


def test_rising_lost_packet_counters_refuse_entry(go2):
    go2(lost_per_message=1)  # ~500 lost packets/s on every motor
    joints, _, _ = make_go2_devices(UnitreeGo2Config(**FAST))
    with pytest.raises(DeviceError, match="loses .* packets/s"):
        joints.connect()


def test_health_reports_temperatures_and_losses_since_connect(go2):
    script = go2()
    joints, _, _ = make_go2_devices(UnitreeGo2Config(**FAST))
    with joints:
        script.temperature_c = [50] * 20
        script.lost_per_message = 1
        import time
        time.sleep(0.05)
        health = joints.health()
    assert health.max_temperature_c == 50.0
    assert health.motor_temperature_c["FR_hip_joint"] == 50.0
    assert min(health.lost_since_connect.values()) > 0


def test_entry_problems_by_hand():
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


def test_the_run_report_records_motor_temperatures_and_losses(go2):
    from hal.server.jetson.main import motor_report

    go2(temperature_c=[44] * 20)
    joints, _, _ = make_go2_devices(UnitreeGo2Config(**FAST))
    with joints:
        report = motor_report(joints)
    assert report["motor_health"]["max_temperature_c"] == 44.0
    assert set(report["motor_health"]["lost_since_connect"]) == set(joints.joint_names)

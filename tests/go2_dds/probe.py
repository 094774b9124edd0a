"""A DDS client of its own process for the wire tests (one DDS domain per process, as the SDK has).

``python probe.py ACTION DOMAIN [ARGS]`` talks to ``krabby-go2-sim`` on ``lo`` and prints one line
``PROBE {json}``:

- ``crc``: 5 LowCmds before the mode release, then releases sport mode (motion switcher), then
  3 LowCmds with a NaN target (right CRC), 20 good ones and 15 with a wrong CRC, at 100 Hz (raw SDK).
- ``order TARGETS``: reads raw LowState slots; connects krabby's Go2 backend (which releases sport
  mode), sends the position targets TARGETS (comma-separated, the robot definition's hardware
  order) for 1.5 s while a raw ``rt/lowcmd`` reader captures what went on the wire; then reads
  the backend's joint state and the raw LowState again, and closes (damping).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import numpy as np


def _crc(domain: int) -> dict:
    from unitree_sdk2py.comm.motion_switcher.motion_switcher_client import MotionSwitcherClient
    from unitree_sdk2py.core.channel import ChannelPublisher, ChannelSubscriber
    from unitree_sdk2py.idl.default import unitree_go_msg_dds__LowCmd_
    from unitree_sdk2py.idl.unitree_go.msg.dds_ import LowCmd_, SportModeState_
    from unitree_sdk2py.utils.crc import CRC

    crc = CRC()
    sport_modes: list[int] = []
    sport = ChannelSubscriber("rt/sportmodestate", SportModeState_)
    sport.Init(lambda msg: sport_modes.append(int(msg.mode)), 0)
    publisher = ChannelPublisher("rt/lowcmd", LowCmd_)
    publisher.Init()
    time.sleep(1.0)  # discovery: let the robot double's reader match

    def command(bad: bool, nan: bool = False):
        cmd = unitree_go_msg_dds__LowCmd_()
        cmd.head[0], cmd.head[1], cmd.level_flag = 0xFE, 0xEF, 0xFF
        for i in range(20):
            cmd.motor_cmd[i].mode = 0x01
            cmd.motor_cmd[i].q, cmd.motor_cmd[i].dq = 2.146e9, 16000.0
            cmd.motor_cmd[i].kd = 0.5 if i < 12 else 0.0
        if nan:  # a position target of NaN with a stiffness: the CRC is right, the value is not
            cmd.motor_cmd[0].q, cmd.motor_cmd[0].kp = float("nan"), 40.0
        cmd.crc = crc.Crc(cmd) ^ (1 if bad else 0)
        return cmd

    def send(n: int, bad: bool, nan: bool = False) -> None:
        for _ in range(n):
            publisher.Write(command(bad, nan))
            time.sleep(0.01)

    send(5, False)  # before the release: the robot's own controller still runs
    switcher = MotionSwitcherClient()
    switcher.SetTimeout(5.0)
    switcher.Init()
    before = switcher.CheckMode()
    mode_before = sport_modes[-1] if sport_modes else None
    released = switcher.ReleaseMode()
    after = switcher.CheckMode()
    send(3, False, nan=True)
    send(20, False)
    send(15, True)
    time.sleep(0.5)
    return {"check_before": list(before), "release": list(released), "check_after": list(after),
            "sportmodestate_before": mode_before, "sportmodestate_after": sport_modes[-1],
            "sportmodestate_count": len(sport_modes)}


def _order(domain: int, targets_text: str) -> dict:
    from unitree_sdk2py.core.channel import ChannelSubscriber
    from unitree_sdk2py.idl.unitree_go.msg.dds_ import LowCmd_, LowState_

    from hal.devices.base import JointCommand
    from hal.backends.unitree_go2 import UnitreeGo2Config, make_go2_devices
    from hal.robot import load_robot

    lock = threading.Lock()
    seen: dict = {}

    def keep(name):
        def handler(msg):
            with lock:
                seen[name] = msg
        return handler

    states = ChannelSubscriber("rt/lowstate", LowState_)
    states.Init(keep("state"), 0)
    cmds = ChannelSubscriber("rt/lowcmd", LowCmd_)  # this process's own writes come back too
    cmds.Init(keep("cmd"), 0)
    time.sleep(1.0)
    with lock:
        before = [float(m.q) for m in seen["state"].motor_state[:12]]
    robot = load_robot("go2")
    joints, _imu, _contacts = make_go2_devices(UnitreeGo2Config.from_robot(
        robot, network_interface="lo", domain_id=domain))
    joints.connect()
    target = np.array([float(v) for v in targets_text.split(",")])
    n = len(target)
    command = JointCommand(target_rad=target, kp=np.full(n, 40.0), kd=np.full(n, 1.0))
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        joints.write(command)
        time.sleep(0.01)
    read = joints.read().position_rad.tolist()
    with lock:
        wire_q = [float(m.q) for m in seen["cmd"].motor_cmd[:12]]
        wire_kp = [float(m.kp) for m in seen["cmd"].motor_cmd[:12]]
        after = [float(m.q) for m in seen["state"].motor_state[:12]]
    joints.close()
    time.sleep(0.3)
    return {"lowstate_before": before, "lowcmd_q": wire_q, "lowcmd_kp": wire_kp,
            "backend_read": read, "lowstate_after": after, "joint_names": list(joints.joint_names)}


def main() -> int:
    action, domain = sys.argv[1], int(sys.argv[2])
    from hal.unitree_dds import initialize_dds

    initialize_dds(domain, "lo")
    result = _crc(domain) if action == "crc" else _order(domain, sys.argv[3])
    print("PROBE " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    # The result is printed and flushed; leave without the interpreter's teardown, where
    # cyclonedds' finalisers with live readers once killed this probe with SIGILL (-4) after its
    # work was done (a CI run). The product's own processes close their readers first.
    status = main()
    sys.stdout.flush()
    os._exit(status)

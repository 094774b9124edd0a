"""A fake ``unitree_sdk2py`` with the SDK's call signatures and return shapes.

From unitreerobotics/unitree_sdk2_python:

- ``core/channel.py``: ``ChannelFactoryInitialize(id=0, networkInterface=None)``;
  ``ChannelPublisher(name, type)`` with ``Init()``, ``Write(sample, timeout=None) -> bool``,
  ``Close()``; ``ChannelSubscriber(name, type)`` with ``Init(handler=None, queueLen=0)``, ``Close()``;
- ``comm/motion_switcher/motion_switcher_client.py``: ``MotionSwitcherClient()`` with
  ``SetTimeout(timeout)``, ``Init()``, ``CheckMode() -> (code, dict | None)`` (``None`` whenever
  ``code != 0``), ``ReleaseMode() -> (code, None)``;
- ``go2/sport/sport_client.py``: ``SportClient()`` with ``SetTimeout``, ``Init``, ``StandDown() -> code``;
- ``idl/unitree_go/msg/dds_``: ``LowState_`` (``motor_state[20]`` of ``MotorState_`` with ``q``,
  ``dq``, ``tau_est``, ``temperature`` (uint8, °C), ``lost`` (uint32 counter); ``imu_state``,
  ``foot_force[4]``, ``tick``) and ``LowCmd_``; ``idl/default.unitree_go_msg_dds__LowCmd_()``;
- ``utils/crc.py``: ``CRC().Crc(msg) -> int``.

The robot side is scripted by :class:`Go2Script`: a thread publishes ``LowState_`` at ~500 Hz to
the subscriber's handler, as the SDK's DDS listener thread does.
"""

from __future__ import annotations

import threading
import types
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Go2Script", "make_unitree_sdk"]


@dataclass
class Go2Script:
    check_mode: list = field(default_factory=lambda: [(0, {"form": "0", "name": ""})])
    release_codes: list = field(default_factory=list)
    temperature_c: list = field(default_factory=lambda: [35] * 20)
    lost_per_message: int = 0
    publish: bool = True
    published_cmds: list = field(default_factory=list)
    calls: list = field(default_factory=list)


def make_unitree_sdk(script: Go2Script) -> dict[str, types.ModuleType]:
    """The ``sys.modules`` entries of a fake SDK driven by ``script``."""

    def module(name: str, **attrs: Any) -> types.ModuleType:
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        return mod

    @dataclass
    class MotorState_:
        mode: int = 0
        q: float = 0.0
        dq: float = 0.0
        ddq: float = 0.0
        tau_est: float = 0.0
        q_raw: float = 0.0
        dq_raw: float = 0.0
        ddq_raw: float = 0.0
        temperature: int = 0
        lost: int = 0
        reserve: list = field(default_factory=lambda: [0, 0])

    @dataclass
    class IMUState_:
        quaternion: list = field(default_factory=lambda: [1.0, 0.0, 0.0, 0.0])
        gyroscope: list = field(default_factory=lambda: [0.0, 0.0, 0.0])
        accelerometer: list = field(default_factory=lambda: [0.0, 0.0, 9.81])
        rpy: list = field(default_factory=lambda: [0.0, 0.0, 0.0])
        temperature: int = 30

    @dataclass
    class LowState_:
        motor_state: list = field(default_factory=lambda: [MotorState_() for _ in range(20)])
        imu_state: IMUState_ = field(default_factory=IMUState_)
        foot_force: list = field(default_factory=lambda: [0, 0, 0, 0])
        tick: int = 0

    @dataclass
    class MotorCmd_:
        mode: int = 0
        q: float = 0.0
        dq: float = 0.0
        tau: float = 0.0
        kp: float = 0.0
        kd: float = 0.0

    @dataclass
    class LowCmd_:
        head: list = field(default_factory=lambda: [0, 0])
        level_flag: int = 0
        gpio: int = 0
        motor_cmd: list = field(default_factory=lambda: [MotorCmd_() for _ in range(20)])
        crc: int = 0

    def ChannelFactoryInitialize(id: int = 0, networkInterface: str = None):  # noqa: A002, N802
        script.calls.append(("ChannelFactoryInitialize", id, networkInterface))

    class ChannelPublisher:
        def __init__(self, name: str, type: Any):  # noqa: A002
            self.name = name

        def Init(self):  # noqa: N802
            pass

        def Write(self, sample: Any, timeout: float = None) -> bool:  # noqa: N802
            script.published_cmds.append(sample)
            return True

        def Close(self):  # noqa: N802
            pass

    class ChannelSubscriber:
        def __init__(self, name: str, type: Any):  # noqa: A002
            self.name = name
            self._stop = threading.Event()
            self._thread = None

        def Init(self, handler: Callable = None, queueLen: int = 0):  # noqa: N802, N803
            def run() -> None:
                lost = 0
                tick = 0
                while not self._stop.wait(0.002):
                    if not script.publish:
                        continue
                    lost += script.lost_per_message
                    tick += 1
                    msg = LowState_(tick=tick)
                    for i, motor in enumerate(msg.motor_state):
                        motor.temperature = int(script.temperature_c[i])
                        motor.lost = lost
                        motor.q = 0.01 * i
                    handler(msg)

            self._thread = threading.Thread(target=run, daemon=True)
            self._thread.start()

        def Close(self):  # noqa: N802
            self._stop.set()
            if self._thread is not None:
                self._thread.join(timeout=1.0)

    class MotionSwitcherClient:
        def SetTimeout(self, timeout: float):  # noqa: N802
            pass

        def Init(self):  # noqa: N802
            pass

        def CheckMode(self):  # noqa: N802
            script.calls.append("CheckMode")
            code, data = script.check_mode.pop(0) if len(script.check_mode) > 1 else script.check_mode[0]
            return (code, data) if code == 0 else (code, None)

        def ReleaseMode(self):  # noqa: N802
            script.calls.append("ReleaseMode")
            code = script.release_codes.pop(0) if script.release_codes else 0
            return code, None

    class SportClient:
        def SetTimeout(self, timeout: float):  # noqa: N802
            pass

        def Init(self):  # noqa: N802
            pass

        def StandDown(self):  # noqa: N802
            script.calls.append("StandDown")
            return 0

    class CRC:
        def Crc(self, msg: Any) -> int:  # noqa: N802
            return 0x1234

    dds = module("unitree_sdk2py.idl.unitree_go.msg.dds_", LowState_=LowState_, LowCmd_=LowCmd_,
                 MotorState_=MotorState_, MotorCmd_=MotorCmd_, IMUState_=IMUState_)
    return {
        "unitree_sdk2py": module("unitree_sdk2py"),
        "unitree_sdk2py.core": module("unitree_sdk2py.core"),
        "unitree_sdk2py.core.channel": module(
            "unitree_sdk2py.core.channel", ChannelFactoryInitialize=ChannelFactoryInitialize,
            ChannelPublisher=ChannelPublisher, ChannelSubscriber=ChannelSubscriber),
        "unitree_sdk2py.idl": module("unitree_sdk2py.idl"),
        "unitree_sdk2py.idl.unitree_go": module("unitree_sdk2py.idl.unitree_go"),
        "unitree_sdk2py.idl.unitree_go.msg": module("unitree_sdk2py.idl.unitree_go.msg"),
        "unitree_sdk2py.idl.unitree_go.msg.dds_": dds,
        "unitree_sdk2py.idl.default": module("unitree_sdk2py.idl.default",
                                             unitree_go_msg_dds__LowCmd_=LowCmd_),
        "unitree_sdk2py.utils": module("unitree_sdk2py.utils"),
        "unitree_sdk2py.utils.crc": module("unitree_sdk2py.utils.crc", CRC=CRC),
        "unitree_sdk2py.comm": module("unitree_sdk2py.comm"),
        "unitree_sdk2py.comm.motion_switcher": module("unitree_sdk2py.comm.motion_switcher"),
        "unitree_sdk2py.comm.motion_switcher.motion_switcher_client": module(
            "unitree_sdk2py.comm.motion_switcher.motion_switcher_client",
            MotionSwitcherClient=MotionSwitcherClient),
        "unitree_sdk2py.go2": module("unitree_sdk2py.go2"),
        "unitree_sdk2py.go2.sport": module("unitree_sdk2py.go2.sport"),
        "unitree_sdk2py.go2.sport.sport_client": module("unitree_sdk2py.go2.sport.sport_client",
                                                        SportClient=SportClient),
    }

"""Operator commands while the robot runs: forward speed, yaw rate, mode, start/stop/e-stop/reset.

Every source is a small backend behind one interface (:class:`~hal.operator.base.OperatorSource`):
the server's terminal (:mod:`hal.operator.keyboard`), a Linux gamepad through evdev with a dead-man
button (:mod:`hal.operator.gamepad`), the Unitree Go2's wireless remote decoded from ``LowState``
(:mod:`hal.operator.go2_remote`) and a versioned, validated network endpoint with the
``krabby-teleop`` sender (:mod:`hal.operator.network`, :mod:`hal.operator.teleop`). One
:class:`~hal.operator.hub.OperatorHub`, a tick listener on the control loop's thread, polls them
all, applies start/stop/e-stop/reset to the safety layer there, clamps and logs every command
change and hands the command to whoever runs the policy. The HAL knows no policy: a command is a
forward speed, a yaw rate and a mode name.
"""

from hal.operator.base import (
    MODES,
    Action,
    OperatorCommand,
    OperatorEvent,
    OperatorSource,
)
from hal.operator.hub import OperatorConfig, OperatorHub

__all__ = ["MODES", "Action", "OperatorCommand", "OperatorEvent", "OperatorSource",
           "OperatorConfig", "OperatorHub"]

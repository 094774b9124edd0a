"""The safety layer between every command and the motors (docs/architecture.md#the-safety-layer).

- :mod:`hal.safety.config` — :class:`SafetyConfig` (thresholds and timings).
- :mod:`hal.safety.targets` — pure checks: position bounds (the joint limits, in ``policy`` the
  training contract's action range), step cap, PD torque window.
- :mod:`hal.safety.target_stats` — what the policy asked for past the joint limits, per joint.
- :mod:`hal.safety.attitude` — roll, pitch and tilt from the IMU quaternion.
- :mod:`hal.safety.events` — modes, transition log, counters.
- :mod:`hal.safety.monitor` — sensor health (→ damping) and the entry gate.
- :mod:`hal.safety.intake` — policy command validation and gain bounds.
- :mod:`hal.safety.plausibility` — the watchdog that damps a policy asking for what training never
  produced (targets beyond the action range, joints slammed across it).
- :mod:`hal.safety.output` — the one place the motor command is written.
- :mod:`hal.safety.layer` — :class:`SafetyLayer`, the state machine and its per-tick ``step``.
- :mod:`hal.safety.estop` — the network e-stop (wire format, listener, sender).
"""

from hal.safety.config import SafetyConfig, SafetyConfigError
from hal.safety.estop import (
    DEFAULT_ESTOP_ENDPOINT,
    EstopListener,
    EstopMessage,
    EstopMessageError,
    EstopSender,
    encode_estop,
    encode_reset,
    encode_start,
    parse_estop_message,
)
from hal.safety.events import ACTIVE_MODES, Mode
from hal.safety.layer import SafetyLayer
from hal.safety.targets import TargetFilter, feasible_interval, safe_target, torque_window

__all__ = [
    "ACTIVE_MODES",
    "DEFAULT_ESTOP_ENDPOINT",
    "EstopListener",
    "EstopMessage",
    "EstopMessageError",
    "EstopSender",
    "Mode",
    "SafetyConfig",
    "SafetyConfigError",
    "SafetyLayer",
    "TargetFilter",
    "encode_estop",
    "encode_reset",
    "encode_start",
    "feasible_interval",
    "parse_estop_message",
    "safe_target",
    "torque_window",
]

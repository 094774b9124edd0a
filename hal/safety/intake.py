"""Policy command intake: validate shape and finiteness, bound the gains, keep the last valid one.

A command is rejected as a whole when any of its arrays has the wrong shape or dtype or holds a
NaN/inf; the safety layer then damps (in ``policy``) or keeps the gate closed (elsewhere). Gains
outside [kp_min, kp_max] / [kd_min, kd_max] are clamped, not rejected. Buffers are allocated once.
"""

from __future__ import annotations

import numpy as np

from hal.safety.config import SafetyConfig

__all__ = ["COMMAND_MISSING", "COMMAND_VALID", "COMMAND_INVALID", "CommandIntake"]

COMMAND_MISSING, COMMAND_VALID, COMMAND_INVALID = 0, 1, 2


class CommandIntake:
    """Holds the last valid policy command (hardware order, float64) with bounded gains.

    Args:
        config: kp/kd bounds.
        default_kp: kp used when a command brings none (hardware order).
        default_kd: kd used when a command brings none (hardware order).
    """

    def __init__(self, config: SafetyConfig, default_kp: np.ndarray,
                 default_kd: np.ndarray) -> None:
        self.n_joints = n = len(default_kp)
        self._bounds = ((config.kp_min, config.kp_max), (config.kd_min, config.kd_max))
        self._default_kp = np.clip(np.asarray(default_kp, dtype=np.float64), *self._bounds[0])
        self._default_kd = np.clip(np.asarray(default_kd, dtype=np.float64), *self._bounds[1])
        self.target = np.zeros(n)
        self.kp = np.zeros(n)
        self.kd = np.zeros(n)
        self.has_valid = False
        self.gains_clamped = False  # the last valid command had gains out of bounds
        self.rejection: tuple[str, str] = ("", "")  # (counter key, detail) of the last rejection
        self._mask = np.zeros(n, dtype=bool)

    def take(self, targets: np.ndarray | None, kp: np.ndarray | None,
             kd: np.ndarray | None) -> int:
        """Validate one command; on success copy it (gains bounded) into ``target/kp/kd``.

        Returns:
            COMMAND_MISSING (targets None), COMMAND_VALID, or COMMAND_INVALID (``rejection``
            then names the counter key and what was wrong; the kept command is unchanged).
        """
        if targets is None:
            return COMMAND_MISSING
        n = self.n_joints
        for name, value in (("targets", targets), ("kp", kp), ("kd", kd)):
            if value is None:
                continue
            if not isinstance(value, np.ndarray):
                value = np.asarray(value)
            if value.shape != (n,) or value.dtype.kind not in "fiu":
                self.rejection = ("command.rejected.shape",
                                  f"{name} must be a real array of shape ({n},); got shape "
                                  f"{value.shape} dtype {value.dtype}")
                return COMMAND_INVALID
            if not np.isfinite(value, out=self._mask).all():
                self.rejection = ("command.rejected.nonfinite",
                                  f"{name} has non-finite values at joints "
                                  f"{np.flatnonzero(~np.isfinite(value)).tolist()}")
                return COMMAND_INVALID
        np.copyto(self.target, targets)
        self.gains_clamped = False
        for out, given, default, (low, high) in ((self.kp, kp, self._default_kp, self._bounds[0]),
                                                 (self.kd, kd, self._default_kd, self._bounds[1])):
            if given is None:
                np.copyto(out, default)
                continue
            np.copyto(out, given)
            np.less(out, low, out=self._mask)
            below = bool(self._mask.any())
            np.greater(out, high, out=self._mask)
            if below or self._mask.any():
                self.gains_clamped = True
                np.clip(out, low, high, out=out)
        self.has_valid = True
        return COMMAND_VALID

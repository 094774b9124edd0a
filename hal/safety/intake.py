"""Policy command intake: validate shape and finiteness, bound the gains, keep the last valid one.

A command is rejected as a whole when any of its arrays has the wrong shape or dtype or holds a
NaN/inf; the safety layer then damps (in ``policy``) or keeps the gate closed (elsewhere). Gains
outside [kp_min, kp_max] / [kd_min, kd_max] are clamped, not rejected. Buffers are allocated once.
"""

from __future__ import annotations

import numpy as np

from hal.safety.config import SafetyConfig
from hal.safety.output import TargetGains
from hal.safety.targets import all_of

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
        # The last valid command; target/kp/kd are its rows (read them afresh after each take:
        # an accepted command may swap the buffers).
        self.command = TargetGains(n)
        self.target, self.kp, self.kd = self.command.target, self.command.kp, self.command.kd
        self.has_valid = False
        self.gains_clamped = False  # the last valid command had gains out of bounds
        self.rejection: tuple[str, str] = ("", "")  # (counter key, detail) of the last rejection
        self._mask = np.zeros(n, dtype=bool)
        # Fast path state (see take): the candidate command, the gain bounds as (2, n) rows, and
        # one mask [target finite; gains >= low; gains <= high] reduced in one call.
        self._shape = (n,)
        self._candidate = TargetGains(n)
        self._gain_low = np.array([[config.kp_min] * n, [config.kd_min] * n], dtype=np.float64)
        self._gain_high = np.array([[config.kp_max] * n, [config.kd_max] * n], dtype=np.float64)
        self._ok = np.zeros((5, n), dtype=bool)
        self._ok_target, self._ok_low, self._ok_high = self._ok[0], self._ok[1:3], self._ok[3:5]

    def take(self, targets: np.ndarray | None, kp: np.ndarray | None,
             kd: np.ndarray | None) -> int:
        """Validate one command; on success copy it (gains bounded) into ``target/kp/kd``.

        Returns:
            COMMAND_MISSING (targets None), COMMAND_VALID, or COMMAND_INVALID (``rejection``
            then names the counter key and what was wrong; the kept command is unchanged).
        """
        if targets is None:
            return COMMAND_MISSING
        if self._take_plain(targets, kp, kd):
            return COMMAND_VALID
        return self._take_checked(targets, kp, kd)

    def _take_plain(self, targets: np.ndarray, kp: np.ndarray | None,
                    kd: np.ndarray | None) -> bool:
        """The usual command, accepted in a few numpy calls; False leaves it to _take_checked.

        Accepts only what _take_checked would accept unchanged: plain ndarrays of shape (n,) with
        a real dtype of at most 8 bytes (cast to float64 without a change of finiteness and
        without an overflow warning), every value finite, and gains already inside their bounds.
        Anything else (rejections, gains to clamp, other array types) goes the long way, which
        also writes the exact rejection message. Nothing kept changes unless the command is
        accepted.
        """
        shape = self._shape
        for value in (targets, kp, kd):
            if value is not None and not (type(value) is np.ndarray and value.shape == shape
                                          and value.dtype.kind in "fiu"
                                          and value.dtype.itemsize <= 8):
                return False
        candidate = self._candidate
        candidate.target[...] = targets
        candidate.kp[...] = self._default_kp if kp is None else kp
        candidate.kd[...] = self._default_kd if kd is None else kd
        np.isfinite(candidate.target, out=self._ok_target)
        np.greater_equal(candidate.gains, self._gain_low, out=self._ok_low)
        np.less_equal(candidate.gains, self._gain_high, out=self._ok_high)
        if not all_of(self._ok, axis=None):
            return False
        # Keep the candidate (no copy); the old command's buffer is the next candidate.
        self.command, self._candidate = candidate, self.command
        self.target, self.kp, self.kd = candidate.target, candidate.kp, candidate.kd
        self.gains_clamped = False
        self.has_valid = True
        return True

    def _take_checked(self, targets: np.ndarray, kp: np.ndarray | None,
                      kd: np.ndarray | None) -> int:
        """take() for any input, one array and one check at a time."""
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

"""Pure target checks: joint limits, per-tick step cap, PD torque feasibility (numpy, per joint).

The joint driver applies ``tau = kp (target - q) - kd dq`` and the motor can give at most
``tau_max``. For the PD torque to stay within ``[-tau_max, tau_max]`` at the current position ``q``
and velocity ``dq``, the target must lie in the **torque window**::

    [q + (-tau_max + kd dq) / kp,  q + (tau_max + kd dq) / kp]        (kp > 0)

Every position target that reaches a motor is built by :func:`safe_target` (or the allocation-free
:class:`TargetFilter` it wraps) in this order:

1. The **feasible set** F = [lower, upper] ∩ torque window. If the window misses the limits entirely
   (only possible when ``|kd dq| > tau_max`` near a limit, or when ``q`` is already far outside the
   limits), F collapses onto the limit nearest the window: the joint limits are never given up, and
   that limit is the target of least torque among all targets inside the limits.
2. The **step window** S = [reference - max_step, reference + max_step] around the previous applied
   target.
3. ``target = clip(clip(desired, S), F)``. When S and F intersect this equals
   ``clip(desired, S ∩ F)`` and satisfies every constraint. When they do not intersect, the
   torque-feasible side wins: the target is the point of F nearest the reference, so the step
   exceeds the cap by exactly the distance from S to F and the torque stays within the limit.

Guarantees of the returned target ``t`` (inputs finite, ``kp > 0``, ``max_step > 0``,
``lower < upper``):

- ``lower <= t <= upper`` exactly, always.
- ``|kp (t - q) - kd dq| <= tau_max`` (up to rounding) whenever any target inside the limits
  achieves it; otherwise ``t`` is the limit nearest the window.
- ``|t - reference| <= max_step`` whenever some point of F lies within ``max_step`` of the
  reference; otherwise ``t`` is the point of F nearest the reference.
- ``t`` is finite; a non-finite ``desired`` entry is replaced by the reference before the checks.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "FLAG_LIMIT",
    "FLAG_TORQUE",
    "FLAG_STEP",
    "FLAG_STEP_CONFLICT",
    "FLAG_TORQUE_INFEASIBLE",
    "FLAG_NONFINITE",
    "torque_window",
    "feasible_interval",
    "safe_target",
    "TargetFilter",
]

FLAG_LIMIT = 1
"""The desired target was outside [lower, upper] for some joint."""
FLAG_TORQUE = 2
"""The desired target was outside the torque window for some joint."""
FLAG_STEP = 4
"""The desired target was more than max_step from the reference for some joint."""
FLAG_STEP_CONFLICT = 8
"""The step window missed the feasible set: the step cap was exceeded toward feasibility."""
FLAG_TORQUE_INFEASIBLE = 16
"""The torque window missed the limits: the target sits on the limit nearest the window."""
FLAG_NONFINITE = 32
"""A non-finite value was replaced (desired entry by the reference)."""


def torque_window(q: np.ndarray, dq: np.ndarray, kp: np.ndarray, kd: np.ndarray,
                  tau_max: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Targets whose PD torque stays within ±tau_max: ``q + (±tau_max + kd dq) / kp`` (new)."""
    with np.errstate(over="ignore"):
        bias = np.multiply(kd, dq)
        return q + (bias - tau_max) / kp, q + (bias + tau_max) / kp


def feasible_interval(q: np.ndarray, dq: np.ndarray, kp: np.ndarray, kd: np.ndarray,
                      tau_max: np.ndarray, lower: np.ndarray,
                      upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The feasible set F per joint as ``(lo, hi)``, ``lower <= lo <= hi <= upper`` (new arrays)."""
    filt = TargetFilter(lower, upper, tau_max, max_step=1.0)
    filt.compute_feasible(q, dq, kp, kd)
    return filt.feasible_lo.copy(), filt.feasible_hi.copy()


def safe_target(desired: np.ndarray, reference: np.ndarray, q: np.ndarray, dq: np.ndarray,
                kp: np.ndarray, kd: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                tau_max: np.ndarray, max_step: float | np.ndarray) -> np.ndarray:
    """The target that may reach the motors, given the one asked for (see the module docstring).

    Args:
        desired: Target asked for (rad). Non-finite entries are replaced by ``reference``.
        reference: The previous applied target (rad); finite.
        q: Measured joint position (rad); finite.
        dq: Measured joint velocity (rad/s); finite.
        kp: Stiffness that will be commanded with the target; > 0.
        kd: Damping that will be commanded with the target; >= 0.
        lower: Lower joint limit (rad).
        upper: Upper joint limit (rad), > lower.
        tau_max: Torque limit (N·m), > 0.
        max_step: Largest |target - reference| (rad), > 0.

    Returns:
        A new float64 array of the same shape.
    """
    desired = np.asarray(desired, dtype=np.float64)
    filt = TargetFilter(lower, upper, tau_max, max_step)
    out = np.empty(desired.shape, dtype=np.float64)
    filt.apply(desired, reference, q, dq, kp, kd, out)
    return out


class TargetFilter:
    """:func:`safe_target` with every intermediate array allocated once (for the control loop).

    Args:
        lower: Lower joint limits (rad), shape (n,).
        upper: Upper joint limits (rad), shape (n,).
        tau_max: Torque limits (N·m), shape (n,).
        max_step: Per-tick step cap (rad), scalar or shape (n,).
    """

    def __init__(self, lower: np.ndarray, upper: np.ndarray, tau_max: np.ndarray,
                 max_step: float | np.ndarray) -> None:
        self.lower = np.array(lower, dtype=np.float64)
        self.upper = np.array(upper, dtype=np.float64)
        self.tau_max = np.array(tau_max, dtype=np.float64)
        n = self.lower.shape
        self.max_step = np.broadcast_to(np.asarray(max_step, dtype=np.float64), n).copy()
        if not (self.lower.shape == self.upper.shape == self.tau_max.shape):
            raise ValueError(f"lower {self.lower.shape}, upper {self.upper.shape} and tau_max "
                             f"{self.tau_max.shape} must have one shape")
        if not np.all(self.lower < self.upper):
            raise ValueError(f"lower {self.lower} must be below upper {self.upper} for every joint")
        if not (np.all(self.tau_max > 0) and np.all(self.max_step > 0)):
            raise ValueError(f"tau_max {self.tau_max} and max_step {self.max_step} must be > 0")
        self.window_lo = np.empty(n)
        self.window_hi = np.empty(n)
        self.feasible_lo = np.empty(n)
        self.feasible_hi = np.empty(n)
        self._step_lo = np.empty(n)
        self._step_hi = np.empty(n)
        self._desired = np.empty(n)
        self._tmp = np.empty(n)
        self._m1 = np.empty(n, dtype=bool)
        self._m2 = np.empty(n, dtype=bool)
        self._m3 = np.empty(n, dtype=bool)

    def compute_feasible(self, q: np.ndarray, dq: np.ndarray, kp: np.ndarray,
                         kd: np.ndarray) -> int:
        """Fill ``window_lo/hi`` and ``feasible_lo/hi``; returns FLAG_TORQUE_INFEASIBLE or 0."""
        a, b, lo, hi = self.window_lo, self.window_hi, self.feasible_lo, self.feasible_hi
        m1, m2, m3 = self._m1, self._m2, self._m3
        with np.errstate(over="ignore", invalid="ignore"):
            np.multiply(kd, dq, out=a)
            np.add(a, self.tau_max, out=b)
            np.divide(b, kp, out=b)
            np.add(b, q, out=b)
            np.subtract(a, self.tau_max, out=a)
            np.divide(a, kp, out=a)
            np.add(a, q, out=a)
        np.maximum(a, self.lower, out=lo)
        np.minimum(b, self.upper, out=hi)
        np.greater(lo, hi, out=m1)
        if not m1.any():
            return 0
        # The window misses the limits: pin F to the limit on the window's side.
        np.greater(a, self.upper, out=m2)
        np.logical_and(m1, m2, out=m3)
        np.copyto(lo, self.upper, where=m3)
        np.copyto(hi, self.upper, where=m3)
        np.logical_not(m2, out=m2)
        np.logical_and(m1, m2, out=m3)
        np.copyto(lo, self.lower, where=m3)
        np.copyto(hi, self.lower, where=m3)
        return FLAG_TORQUE_INFEASIBLE

    def apply(self, desired: np.ndarray, reference: np.ndarray, q: np.ndarray, dq: np.ndarray,
              kp: np.ndarray, kd: np.ndarray, out: np.ndarray) -> int:
        """Write the safe target into ``out`` (float64, shape (n,)); returns the FLAG_* bits set.

        Preconditions (the safety layer establishes them): ``reference``, ``q``, ``dq``, ``kp``,
        ``kd`` finite, ``kp > 0``. ``out`` may not alias any input.
        """
        d, m1, m2 = self._desired, self._m1, self._m2
        flags = 0
        np.copyto(d, desired)
        np.isfinite(d, out=m1)
        if not m1.all():
            flags |= FLAG_NONFINITE
            np.logical_not(m1, out=m1)
            np.copyto(d, reference, where=m1)
        flags |= self.compute_feasible(q, dq, kp, kd)
        lo, hi = self.feasible_lo, self.feasible_hi
        np.subtract(reference, self.max_step, out=self._step_lo)
        np.add(reference, self.max_step, out=self._step_hi)
        flags |= self._outside(d, self.lower, self.upper, FLAG_LIMIT)
        flags |= self._outside(d, self.window_lo, self.window_hi, FLAG_TORQUE)
        flags |= self._outside(d, self._step_lo, self._step_hi, FLAG_STEP)
        # S and F are disjoint where step_hi < lo or step_lo > hi.
        np.less(self._step_hi, lo, out=m1)
        np.greater(self._step_lo, hi, out=m2)
        np.logical_or(m1, m2, out=m1)
        if m1.any():
            flags |= FLAG_STEP_CONFLICT
        np.clip(d, self._step_lo, self._step_hi, out=self._tmp)
        np.clip(self._tmp, lo, hi, out=out)
        np.isfinite(out, out=m1)
        if not m1.all():
            # Only reachable when a precondition was broken (non-finite q or reference): fall back
            # to the reference clipped into the limits, which is still a legal position.
            flags |= FLAG_NONFINITE
            np.clip(reference, self.lower, self.upper, out=self._tmp)
            np.isfinite(self._tmp, out=m2)
            np.copyto(self._tmp, self.lower, where=~m2)
            np.logical_not(m1, out=m1)
            np.copyto(out, self._tmp, where=m1)
        return flags

    def _outside(self, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, flag: int) -> int:
        m1, m2 = self._m1, self._m2
        np.less(x, lo, out=m1)
        np.greater(x, hi, out=m2)
        np.logical_or(m1, m2, out=m1)
        return flag if m1.any() else 0

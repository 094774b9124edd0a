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

``lower`` and ``upper`` are the target's bounds: the joint limits, or in ``policy`` the training
contract's action range (:mod:`hal.safety.layer`); "limits" below means those bounds.

With ``enforce_torque_window=False`` (the safety layer's default, ``torque_window="count"``) F is
the joint limits alone: a target outside the torque window is flagged (``FLAG_TORQUE``) but not
moved, and the motor's own torque clip does what training's clip did at every physics step.

Guarantees of the returned target ``t`` (torque guarantee only with the window enforced) (inputs finite, ``kp > 0``, ``max_step > 0``,
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

# np.clip is a Python wrapper around this ufunc; on the per-tick path the wrapper costs more than
# the 12-element clip itself, so the ufunc is called directly (same computation, same results).
try:  # numpy >= 2
    from numpy._core.umath import clip as clip_ufunc
except ImportError:
    try:  # numpy 1.x
        from numpy.core.umath import clip as clip_ufunc
    except ImportError:  # a numpy that moved it again: the public wrapper does the same
        clip_ufunc = np.clip

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

# Speed (this runs every control tick on ~12-element arrays, where numpy's Python-level wrappers
# cost more than the C loops): ``clip_ufunc`` is the ufunc np.clip ends in for arrays (same
# results, without its three wrapper calls), and ``all_of``/``any_of`` are the reductions behind
# ndarray.all()/any() without the Python function those go through.
all_of = np.logical_and.reduce
any_of = np.logical_or.reduce


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
        enforce_torque_window: Clamp targets into the torque window (True) or only flag them.
    """

    def __init__(self, lower: np.ndarray, upper: np.ndarray, tau_max: np.ndarray,
                 max_step: float | np.ndarray, enforce_torque_window: bool = True) -> None:
        self.enforce_torque_window = bool(enforce_torque_window)
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
        # One row per bound test, reduced in one call (a reduction costs more than a comparison on
        # 12 joints). Rows of the fast check: lower, upper, window lo/hi, step lo/hi.
        self._inside = np.empty((6,) + n, dtype=bool)
        self._inside_rows = tuple(self._inside)
        # Rows of the flag tests: outside limits (2), window (2), step (2), S misses F (2).
        self._outside = np.empty((8,) + n, dtype=bool)
        self._outside_rows = tuple(self._outside)
        self._outside_any = np.empty(8, dtype=bool)
        # The fast path reads "desired inside finite limits" as "desired finite": only then.
        self._fast = bool(np.all(np.isfinite(self.lower)) and np.all(np.isfinite(self.upper)))

    def compute_feasible(self, q: np.ndarray, dq: np.ndarray, kp: np.ndarray,
                         kd: np.ndarray) -> int:
        """Fill ``window_lo/hi`` and ``feasible_lo/hi``; returns FLAG_TORQUE_INFEASIBLE or 0."""
        self._compute_window(q, dq, kp, kd)
        return self._feasible_from_window()

    def _compute_window_unguarded(self, q: np.ndarray, dq: np.ndarray, kp: np.ndarray,
                                  kd: np.ndarray) -> None:
        a, b = self.window_lo, self.window_hi
        np.multiply(kd, dq, out=a)
        np.add(a, self.tau_max, out=b)
        np.divide(b, kp, out=b)
        np.add(b, q, out=b)
        np.subtract(a, self.tau_max, out=a)
        np.divide(a, kp, out=a)
        np.add(a, q, out=a)

    # Overflow (huge dq) gives an infinite window edge, which the checks handle; no warning.
    _compute_window = np.errstate(over="ignore", invalid="ignore")(_compute_window_unguarded)

    def _feasible_from_window(self) -> int:
        a, lo, hi = self.window_lo, self.feasible_lo, self.feasible_hi
        m1, m2, m3 = self._m1, self._m2, self._m3
        np.maximum(a, self.lower, out=lo)
        np.minimum(self.window_hi, self.upper, out=hi)
        np.greater(lo, hi, out=m1)
        if not any_of(m1):
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
              kp: np.ndarray, kd: np.ndarray, out: np.ndarray, window_safe: bool = False) -> int:
        """Write the safe target into ``out`` (float64, shape (n,)); returns the FLAG_* bits set.

        Preconditions (the safety layer establishes them): ``reference``, ``q``, ``dq``, ``kp``,
        ``kd`` finite, ``kp > 0``. ``out`` may not alias any input.

        ``window_safe``: the caller knows that no term of the torque window can overflow (``q``,
        ``dq`` and ``kd`` bounded, ``kp`` bounded away from 0). That skips numpy's errstate
        around the window, which costs more than the window itself when the code is cold. The
        result is the same either way; only an overflow warning would differ.
        """
        if window_safe:
            self._compute_window_unguarded(q, dq, kp, kd)
        else:
            self._compute_window(q, dq, kp, kd)
        np.subtract(reference, self.max_step, out=self._step_lo)
        np.add(reference, self.max_step, out=self._step_hi)
        if self._fast:
            # Fast path (the usual tick): a desired target inside the limits, the torque window and
            # the step window is finite, sets no flag, and is its own safe target (the clips of
            # the full path would return it unchanged, up to the sign of a zero lying on a zero
            # bound). A NaN anywhere fails a comparison and takes the full path.
            r = self._inside_rows
            np.greater_equal(desired, self.lower, out=r[0])
            np.less_equal(desired, self.upper, out=r[1])
            np.greater_equal(desired, self.window_lo, out=r[2])
            np.less_equal(desired, self.window_hi, out=r[3])
            np.greater_equal(desired, self._step_lo, out=r[4])
            np.less_equal(desired, self._step_hi, out=r[5])
            if all_of(self._inside, axis=None):
                out[...] = desired
                return 0
        return self._apply_full(desired, reference, out)

    def _apply_full(self, desired: np.ndarray, reference: np.ndarray, out: np.ndarray) -> int:
        """Every check of the module docstring; window and step window already computed."""
        d, m1, m2 = self._desired, self._m1, self._m2
        flags = 0
        np.copyto(d, desired)
        np.isfinite(d, out=m1)
        if not all_of(m1):
            flags |= FLAG_NONFINITE
            np.logical_not(m1, out=m1)
            np.copyto(d, reference, where=m1)
        if self.enforce_torque_window:
            flags |= self._feasible_from_window()
        else:
            np.copyto(self.feasible_lo, self.lower)
            np.copyto(self.feasible_hi, self.upper)
        lo, hi, step_lo, step_hi = self.feasible_lo, self.feasible_hi, self._step_lo, self._step_hi
        r = self._outside_rows
        np.less(d, self.lower, out=r[0])
        np.greater(d, self.upper, out=r[1])
        np.less(d, self.window_lo, out=r[2])
        np.greater(d, self.window_hi, out=r[3])
        np.less(d, step_lo, out=r[4])
        np.greater(d, step_hi, out=r[5])
        # S and F are disjoint where step_hi < lo or step_lo > hi.
        np.less(step_hi, lo, out=r[6])
        np.greater(step_lo, hi, out=r[7])
        below_lim, above_lim, below_win, above_win, below_step, above_step, s_low, s_high = (
            any_of(self._outside, axis=1, out=self._outside_any).tolist())
        if below_lim or above_lim:
            flags |= FLAG_LIMIT
        if below_win or above_win:
            flags |= FLAG_TORQUE
        if below_step or above_step:
            flags |= FLAG_STEP
        if s_low or s_high:
            flags |= FLAG_STEP_CONFLICT
        clip_ufunc(d, step_lo, step_hi, out=self._tmp)
        clip_ufunc(self._tmp, lo, hi, out=out)
        np.isfinite(out, out=m1)
        if not all_of(m1):
            # Only reachable when a precondition was broken (non-finite q or reference): fall back
            # to the reference clipped into the limits, which is still a legal position.
            flags |= FLAG_NONFINITE
            clip_ufunc(reference, self.lower, self.upper, out=self._tmp)
            np.isfinite(self._tmp, out=m2)
            np.copyto(self._tmp, self.lower, where=~m2)
            np.logical_not(m1, out=m1)
            np.copyto(out, self._tmp, where=m1)
        return flags

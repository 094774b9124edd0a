"""The documented guarantees of hal.safety.targets, checked per joint with plain float arithmetic
(shared by the pure-function and the layer property tests)."""

from __future__ import annotations

import math

import pytest


def check_guarantees(t, desired, ref, q, dq, kp, kd, lower, upper, tau, step):
    """The documented guarantees of safe_target, checked per joint with plain float arithmetic."""
    for i in range(len(t)):
        ti, qi, dqi, kpi, kdi = float(t[i]), float(q[i]), float(dq[i]), float(kp[i]), float(kd[i])
        lo_lim, hi_lim, taui, refi = float(lower[i]), float(upper[i]), float(tau[i]), float(ref[i])
        assert math.isfinite(ti)
        assert lo_lim <= ti <= hi_lim
        # Torque window and feasible set, recomputed independently.
        a = qi + (-taui + kdi * dqi) / kpi
        b = qi + (taui + kdi * dqi) / kpi
        scale = abs(kdi * dqi) + kpi * (abs(qi) + abs(ti)) + taui
        tol_tau = 1e-9 * scale
        tol_x = tol_tau / kpi
        if b < lo_lim - tol_x or a > hi_lim + tol_x:
            nearest = hi_lim if a > hi_lim else lo_lim
            assert ti == nearest
            f_lo = f_hi = nearest
        else:
            if a <= hi_lim - tol_x and b >= lo_lim + tol_x:
                assert abs(kpi * (ti - qi) - kdi * dqi) <= taui + tol_tau
            f_lo, f_hi = max(a, lo_lim), min(b, hi_lim)
            if f_lo > f_hi:  # touching within rounding
                f_lo = f_hi = min(max(ti, lo_lim), hi_lim)
        # Step cap, or the documented exception: the point of F nearest the reference.
        dist_to_f = max(f_lo - refi, refi - f_hi, 0.0)
        if dist_to_f <= step - 1e-9 * (1 + abs(refi)):
            assert abs(ti - refi) <= step + 1e-9 * (1 + abs(refi))
        elif dist_to_f > step + 1e-9 * (1 + abs(refi)):
            nearest_f = f_lo if refi < f_lo else f_hi
            assert ti == pytest.approx(nearest_f, abs=tol_x + 1e-12)
        # Otherwise within rounding of the boundary between the two cases: either is fine.
        if math.isfinite(desired[i]) and f_lo - refi <= step and refi - f_hi <= step:
            # When every constraint can be met, the target is the closest such point to desired.
            s_lo, s_hi = max(f_lo, refi - step), min(f_hi, refi + step)
            if s_lo <= s_hi and (s_hi - s_lo) > 4 * tol_x:
                expected = min(max(float(desired[i]), s_lo), s_hi)
                assert ti == pytest.approx(expected, abs=4 * tol_x + 1e-12)

"""Loop pacing on absolute deadlines and fixed-size latency rings.

Pacing: tick k is due at ``t0 + k × period``. The loop sleeps until shortly before the deadline,
then spins, so a late tick never shifts the ones after it (a ``sleep(period)`` after the work would
accumulate every delay). Ticks that start more than a full period late are skipped and counted as
overruns rather than run back-to-back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

__all__ = ["DeadlinePacer", "LatencyRing", "summarize_ns"]


class LatencyRing:
    """The last ``capacity`` samples (nanoseconds) in a preallocated ring; never grows."""

    def __init__(self, capacity: int = 1 << 16) -> None:
        # Written now, not zeros: untouched zero pages would join the resident set one by one
        # as the ring first fills (minutes at 100 Hz), which looks exactly like a leak.
        self._samples = np.full(capacity, 0, dtype=np.int64)
        self._count = 0

    def add(self, value_ns: int) -> None:
        self._samples[self._count % len(self._samples)] = value_ns
        self._count += 1

    @property
    def count(self) -> int:
        """Samples ever added (the ring keeps the last ``capacity``)."""
        return self._count

    def values_ns(self) -> np.ndarray:
        """The retained samples in insertion order (a copy)."""
        n = min(self._count, len(self._samples))
        if self._count <= len(self._samples):
            return self._samples[:n].copy()
        start = self._count % len(self._samples)
        return np.concatenate([self._samples[start:], self._samples[:start]])

    def recent_ns(self, n: int) -> np.ndarray:
        """The last ``min(n, retained)`` samples, oldest first (a copy; cheap for small n)."""
        count, size = self._count, len(self._samples)
        n = max(0, min(n, count, size))
        return self._samples[np.arange(count - n, count) % size]

    def summary_us(self) -> dict[str, float]:
        return summarize_ns(self.values_ns())


def summarize_ns(values_ns: np.ndarray) -> dict[str, float]:
    """p50/p90/p99/max/mean in microseconds, and the sample count."""
    if len(values_ns) == 0:
        return {"count": 0, "p50": float("nan"), "p90": float("nan"), "p99": float("nan"),
                "max": float("nan"), "mean": float("nan")}
    us = np.asarray(values_ns, dtype=np.float64) / 1e3
    p50, p90, p99 = np.percentile(us, [50, 90, 99])
    return {"count": int(len(us)), "p50": round(float(p50), 2), "p90": round(float(p90), 2),
            "p99": round(float(p99), 2), "max": round(float(us.max()), 2),
            "mean": round(float(us.mean()), 2)}


@dataclass
class DeadlinePacer:
    """Waits for absolute tick deadlines.

    Args:
        rate_hz: Tick rate.
        spin_us: How long before a deadline to stop sleeping and spin (sleep wakes late by tens
            to hundreds of microseconds; the spin absorbs that).
        realtime: False runs free (no waiting): the simulator's ``--fast`` mode.
    """

    rate_hz: float
    spin_us: float = 250.0
    realtime: bool = True

    def __post_init__(self) -> None:
        if not self.rate_hz > 0:
            raise ValueError(f"rate_hz must be positive, got {self.rate_hz}")
        self.period_ns = int(round(1e9 / self.rate_hz))
        self._spin_ns = int(self.spin_us * 1e3)
        self._start_ns = 0
        self._tick = 0
        self.overruns = 0

    def start(self, now_ns: int | None = None) -> None:
        self._start_ns = time.monotonic_ns() if now_ns is None else now_ns
        self._tick = 0
        self.overruns = 0

    @property
    def next_deadline_ns(self) -> int:
        return self._start_ns + self._tick * self.period_ns

    def wait(self) -> tuple[int, int]:
        """Wait for the next deadline; returns (deadline_ns, lateness_ns) on the monotonic clock (the clock device timestamps use).

        In free-running mode the deadline is "now" and lateness is 0.
        """
        if not self.realtime:
            now = time.monotonic_ns()
            self._tick += 1
            return now, 0
        deadline = self.next_deadline_ns
        now = time.monotonic_ns()
        if now - deadline >= self.period_ns:
            # More than a whole period late: skip the missed ticks instead of bursting through.
            missed = (now - deadline) // self.period_ns
            self.overruns += int(missed)
            self._tick += int(missed)
            deadline = self.next_deadline_ns
        remaining = deadline - now
        if remaining > self._spin_ns:
            time.sleep((remaining - self._spin_ns) / 1e9)
        while (now := time.monotonic_ns()) < deadline:
            pass
        self._tick += 1
        return deadline, now - deadline

"""Hand-over from the control loop (and the policy's threads) to the live publisher's thread.

A :class:`Mailbox` is a bounded queue with one producer thread: :meth:`Mailbox.offer` never
waits and never takes a lock (``collections.deque`` appends are atomic in CPython); when the
queue is full the oldest item is dropped and counted. A :class:`RateGate` says whether a stream
is due, so the producer copies only what will be sent.
"""

from __future__ import annotations

import collections
from typing import Any

__all__ = ["Mailbox", "RateGate"]


class Mailbox:
    """A bounded drop-oldest queue with counters (one producer thread, one consumer thread).

    Args:
        name: The stream's name in the counters.
        capacity: Items kept before the oldest is dropped.
    """

    def __init__(self, name: str, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"mailbox {name!r}: capacity {capacity}; use 1 or more")
        self.name = name
        self._items: collections.deque = collections.deque(maxlen=int(capacity))
        self.offered = 0
        self.dropped = 0

    def offer(self, item: Any) -> None:
        """Queue ``item`` (producer thread); a full queue drops its oldest item and counts it."""
        items = self._items
        if len(items) == items.maxlen:
            self.dropped += 1  # the append below pushes the oldest out
        items.append(item)
        self.offered += 1

    def take_all(self) -> list[Any]:
        """Everything queued, oldest first (consumer thread)."""
        items = self._items
        out = []
        while True:
            try:
                out.append(items.popleft())
            except IndexError:
                return out

    def __len__(self) -> int:
        return len(self._items)


class RateGate:
    """At most ``rate_hz`` passes per second of the caller's clock (0: never passes).

    A pass is allowed up to a quarter period early (exclusive), so a stream capped at the loop's
    own rate passes every tick despite jitter, and one at a quarter of it every fourth tick.
    """

    def __init__(self, rate_hz: float) -> None:
        if not rate_hz >= 0:
            raise ValueError(f"rate {rate_hz} Hz: use 0 (off) or a positive rate")
        self.period_ns = int(round(1e9 / rate_hz)) if rate_hz > 0 else 0
        self._next_ns: int | None = None
        self.enabled = rate_hz > 0

    def due(self, now_ns: int) -> bool:
        """True (and the next pass scheduled) when a pass is due at ``now_ns``."""
        if not self.enabled:
            return False
        period, next_ns = self.period_ns, self._next_ns
        if next_ns is not None and now_ns <= next_ns - period // 4:
            return False
        # On schedule, the next pass is one period after this one was due (no drift); after a
        # stall, one period from now (no burst to catch up).
        on_time = next_ns is not None and now_ns - next_ns < period
        self._next_ns = next_ns + period if on_time else now_ns + period
        return True

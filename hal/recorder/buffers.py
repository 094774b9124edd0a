"""Preallocated row storage for recorders: an overwriting ring and a free-list pool.

Both hold rows of one :class:`~hal.recorder.schema.RowLayout`, allocated once. Each has exactly one
producer thread (the thread of the listener that fills it), so a write needs no lock:

- :class:`RowRing` (flight recorder): the producer overwrites the oldest row; any thread may take a
  consistent :meth:`~RowRing.snapshot` at any time (a sequence check discards rows written while it
  copied — a seqlock over the whole ring).
- :class:`RowPool` (file recorder): the producer takes a free row, fills it and hands its index to
  the writer thread, which gives it back after serialising. No free row means the record is dropped
  and counted, never waited for.
"""

from __future__ import annotations

import collections

import numpy as np

from hal.recorder.schema import RowLayout

__all__ = ["RowRing", "RowPool", "Snapshot"]


class Snapshot:
    """Rows copied out of a ring, oldest first (``floats`` (N, F), ``ints`` (N, I))."""

    def __init__(self, layout: RowLayout, floats: np.ndarray, ints: np.ndarray) -> None:
        self.layout = layout
        self.floats = floats
        self.ints = ints

    def __len__(self) -> int:
        return len(self.ints)


class RowRing:
    """The newest ``capacity`` rows; the producer never waits and never allocates.

    Producer::

        i = ring.begin()          # row index to fill
        ...fill ring.floats[i], ring.ints[i]...
        ring.commit()
    """

    def __init__(self, layout: RowLayout, capacity: int) -> None:
        if capacity < 2:
            raise ValueError(f"ring capacity must be at least 2 rows, got {capacity}")
        self.layout = layout
        self.capacity = int(capacity)
        self.floats, self.ints = layout.allocate(self.capacity)
        self.count = 0  # rows ever committed; row k lives at k % capacity

    def begin(self) -> int:
        return self.count % self.capacity

    def commit(self) -> None:
        self.count += 1

    def snapshot(self) -> Snapshot:
        """A consistent copy of the committed rows, oldest first (safe against the producer)."""
        before = self.count
        floats = self.floats.copy()
        ints = self.ints.copy()
        after = self.count
        # Rows >= before may be half written; rows <= after - capacity were overwritten while
        # copying (the row being written when the copy began is record ``before``).
        first = max(0, after - self.capacity + 1)
        if before <= first:
            return Snapshot(self.layout, floats[:0], ints[:0])
        order = np.arange(first, before) % self.capacity
        return Snapshot(self.layout, floats[order], ints[order])


class RowPool:
    """``capacity`` rows handed between one producer and one consumer through a free list."""

    def __init__(self, layout: RowLayout, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"pool capacity must be at least 1 row, got {capacity}")
        self.layout = layout
        self.capacity = int(capacity)
        self.floats, self.ints = layout.allocate(self.capacity)
        # deque.append/pop are atomic in CPython: safe between the two threads without a lock.
        self._free = collections.deque(range(self.capacity))

    def acquire(self) -> int | None:
        """A free row index, or None when all rows are waiting for the writer."""
        try:
            return self._free.pop()
        except IndexError:
            return None

    def release(self, index: int) -> None:
        self._free.append(index)

    @property
    def free(self) -> int:
        return len(self._free)

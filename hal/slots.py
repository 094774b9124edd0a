"""Shared observation slots: a ring of buffers allocated once, written by the HAL, read in place.

Over inproc the HAL writes the arrays of observation k into a free slot and publishes only a header
naming the slot and its generation; the client reads the arrays where they lie. Two rules make a
torn read impossible:

1. **The writer never reuses a held slot.** A reader *acquires* a slot before touching it; the
   writer picks the next slot that no reader holds.
2. **A sequence check proves the data.** Each slot has a generation counter that is odd while the
   writer is inside it and even (and strictly larger) after each completed write: a seqlock. A
   reader accepts data only if the generation equals the header's before *and* after it used it
   (:meth:`SlotRing.acquire` / :meth:`SlotRing.release`). A writer that slipped in between (it can
   only do so if the reader started after the slot was already being reused) changes the
   generation, and the read is discarded.

Buffers come from the allocator the owner passes in: the HAL server passes
:func:`engines.cuda_memory.allocate_host` (pinned CUDA host memory when CUDA is present, 64-byte
aligned ordinary memory otherwise); this module knows no inference memory layer.
"""

from __future__ import annotations

import threading
from typing import Callable

import numpy as np

__all__ = ["SlotRing", "SlotsExhaustedError", "Allocator", "zeros_allocator", "register_slots",
           "lookup_slots", "unregister_slots"]

Allocator = Callable[[tuple[int, ...], np.dtype], np.ndarray]


def zeros_allocator(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Ordinary zeroed numpy memory: the default, for rings no accelerator reads."""
    return np.zeros(shape, dtype)


class SlotsExhaustedError(RuntimeError):
    """Every slot is held by a reader: the writer cannot publish without tearing one."""


class SlotRing:
    """A fixed ring of equally shaped buffers guarded by per-slot seqlocks and hold counts.

    Args:
        n_slots: Ring length. Must exceed the number of slots readers can hold at once (one per
            reader thread) by at least two.
        shape: Shape of one slot's buffer.
        dtype: Element type.
        allocate: ``allocate(shape, dtype) -> ndarray``; default :func:`zeros_allocator`.
    """

    def __init__(self, n_slots: int, shape: tuple[int, ...], dtype: np.dtype | type = np.float32,
                 allocate: Allocator | None = None) -> None:
        if n_slots < 2:
            raise ValueError(f"n_slots must be >= 2, got {n_slots}")
        allocate = allocate or zeros_allocator
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        # One allocation for the whole ring keeps it in one pinned region.
        self._memory = allocate((n_slots, *self.shape), self.dtype)
        self._memory[...] = 0
        self._generation = np.zeros(n_slots, dtype=np.uint64)
        self._holds = np.zeros(n_slots, dtype=np.int32)
        self._hold_lock = threading.Lock()
        self._next = 0
        self._writing = -1

    @property
    def n_slots(self) -> int:
        return len(self._generation)

    def buffer(self, slot: int) -> np.ndarray:
        """The slot's buffer (a view; write only between begin_write and end_write)."""
        return self._memory[slot]

    def generation(self, slot: int) -> int:
        return int(self._generation[slot])

    # -- writer side (one thread) -------------------------------------------------------------

    def begin_write(self) -> int:
        """Claim the next slot that no reader holds and mark it as being written (odd generation).

        Raises:
            SlotsExhaustedError: every slot is held (a reader leaked its holds).
        """
        if self._writing >= 0:
            raise RuntimeError(f"begin_write while slot {self._writing} is still being written")
        n = self.n_slots
        for step in range(n):
            slot = (self._next + step) % n
            if self._holds[slot] == 0:
                self._generation[slot] += 1
                if self._holds[slot] != 0:
                    # A reader acquired it between the check and the mark: we must not write
                    # under it. Nothing was written, so restoring the generation keeps its read valid.
                    self._generation[slot] -= 1
                    continue
                self._writing = slot
                self._next = (slot + 1) % n
                return slot
        raise SlotsExhaustedError(f"all {n} slots are held by readers")

    def end_write(self, slot: int) -> int:
        """Publish the slot: returns its new (even) generation, which the header carries."""
        if slot != self._writing:
            raise RuntimeError(f"end_write({slot}) but slot {self._writing} is being written")
        self._generation[slot] += 1
        self._writing = -1
        return int(self._generation[slot])

    def abort_write(self, slot: int) -> None:
        """Give back a claimed slot whose content was not touched: its old data stays valid.

        The generation returns to its previous (even) value, so readers of the old data are not
        disturbed, and the ring position is rewound so slots are not cycled for nothing.
        """
        if slot != self._writing:
            raise RuntimeError(f"abort_write({slot}) but slot {self._writing} is being written")
        self._generation[slot] -= 1
        self._writing = -1
        self._next = slot

    # -- reader side ----------------------------------------------------------------------------

    def acquire(self, slot: int, generation: int) -> bool:
        """Hold ``slot`` if it still holds ``generation``; False (and no hold) when overwritten."""
        if not 0 <= slot < self.n_slots:
            return False
        with self._hold_lock:
            self._holds[slot] += 1
        if self._generation[slot] != generation:
            self._drop_hold(slot)
            return False
        return True

    def release(self, slot: int, generation: int) -> bool:
        """Drop the hold; True if the data was intact for the whole time it was held."""
        intact = bool(self._generation[slot] == generation)
        self._drop_hold(slot)
        return intact

    def is_intact(self, slot: int, generation: int) -> bool:
        """The sequence check, without releasing."""
        return bool(self._generation[slot] == generation)

    def _drop_hold(self, slot: int) -> None:
        with self._hold_lock:
            self._holds[slot] -= 1

    def holds(self) -> np.ndarray:
        """Current hold counts (a copy), for diagnostics and tests."""
        return self._holds.copy()


_REGISTRY: dict[str, dict[str, SlotRing]] = {}
_REGISTRY_LOCK = threading.Lock()


def register_slots(endpoint: str, rings: dict[str, SlotRing]) -> None:
    """Make a server's rings findable by an inproc client of the same process."""
    with _REGISTRY_LOCK:
        _REGISTRY[endpoint] = rings


def lookup_slots(endpoint: str) -> dict[str, SlotRing]:
    """The rings registered for an inproc endpoint.

    Raises:
        LookupError: no server in this process has bound that endpoint.
    """
    with _REGISTRY_LOCK:
        try:
            return _REGISTRY[endpoint]
        except KeyError:
            raise LookupError(f"no HAL server in this process publishes on {endpoint!r}; inproc "
                              f"endpoints registered: {sorted(_REGISTRY)}") from None


def unregister_slots(endpoint: str) -> None:
    with _REGISTRY_LOCK:
        _REGISTRY.pop(endpoint, None)

"""Observation slots: the seqlock + hold protocol never lets a torn read pass."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from hal.slots import SlotRing, SlotsExhaustedError


def aligned(shape, dtype):
    return np.zeros(shape, dtype)


def test_writer_never_claims_a_held_slot():
    ring = SlotRing(3, (4,), np.float32, allocate=aligned)
    slot = ring.begin_write()
    gen = ring.end_write(slot)
    assert ring.acquire(slot, gen)
    claimed = []
    for _ in range(6):
        s = ring.begin_write()
        claimed.append(s)
        ring.end_write(s)
    assert slot not in claimed
    assert ring.release(slot, gen)  # untouched while held


def test_all_slots_held_raises_instead_of_tearing():
    ring = SlotRing(2, (4,), np.float32, allocate=aligned)
    gens = []
    for _ in range(2):
        s = ring.begin_write()
        gens.append((s, ring.end_write(s)))
    for s, g in gens:
        assert ring.acquire(s, g)
    with pytest.raises(SlotsExhaustedError):
        ring.begin_write()


def test_stale_generation_is_refused():
    ring = SlotRing(2, (4,), np.float32, allocate=aligned)
    s = ring.begin_write()
    g = ring.end_write(s)
    for _ in range(2):  # the ring wraps and rewrites s
        ring.end_write(ring.begin_write())
    assert not ring.acquire(s, g)
    assert ring.holds().sum() == 0


def test_abort_keeps_old_data_valid_and_rewinds():
    ring = SlotRing(4, (4,), np.float32, allocate=aligned)
    s = ring.begin_write()
    g = ring.end_write(s)
    assert ring.acquire(s, g)
    t = ring.begin_write()
    ring.abort_write(t)
    assert ring.begin_write() == t
    assert ring.release(s, g)


def _fill(buf: np.ndarray, value: int) -> None:
    buf[:-1] = value
    buf[-1] = value * (len(buf) - 1)  # checksum of the payload


def _checksum_ok(buf: np.ndarray) -> bool:
    return float(buf[:-1].sum(dtype=np.float64)) == float(buf[-1])


def test_torn_read_is_impossible_under_a_hammering_writer():
    """A writer rewrites slots as fast as it can; a reader uses slots in place and checks a
    per-slot checksum. Every read the sequence check accepts must be whole; reads of slots the
    writer got to are discarded, never accepted."""
    ring = SlotRing(3, (200_003,), np.float64, allocate=aligned)
    newest = {"slot": -1, "gen": 0}
    stop = threading.Event()
    writes = [0]

    def writer():
        value = 0
        while not stop.is_set():
            slot = ring.begin_write()
            value += 1
            # Large copies release the GIL, so the reader really runs while we write.
            _fill(ring.buffer(slot), value)
            gen = ring.end_write(slot)
            newest["slot"], newest["gen"] = slot, gen
            writes[0] += 1

    thread = threading.Thread(target=writer, name="hammer", daemon=True)
    thread.start()
    accepted = discarded = torn_accepted = 0
    give_up_ns = time.monotonic_ns() + 60 * 10**9
    try:
        while accepted < 3000 and time.monotonic_ns() < give_up_ns:
            slot, gen = newest["slot"], newest["gen"]
            if slot < 0:
                continue
            if not ring.acquire(slot, gen):
                discarded += 1
                continue
            ok = _checksum_ok(ring.buffer(slot))
            if ring.release(slot, gen):
                accepted += 1
                torn_accepted += not ok
            else:
                discarded += 1
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert accepted == 3000
    assert torn_accepted == 0
    assert writes[0] > 100  # the writer really was hammering during the reads


def test_without_the_protocol_reads_do_tear():
    """Control experiment: the same hammering with unguarded reads produces torn data, which
    proves the checksum test above can see a tear."""
    buf = np.zeros(400_003, np.float64)
    stop = threading.Event()

    def writer():
        value = 0
        while not stop.is_set():
            value += 1
            _fill(buf, value)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    torn = 0
    try:
        give_up_ns = time.monotonic_ns() + 30 * 10**9  # a tear usually shows within milliseconds
        while not torn and time.monotonic_ns() < give_up_ns:
            torn += not _checksum_ok(buf.copy())
    finally:
        stop.set()
        thread.join(timeout=10)
    assert torn > 0

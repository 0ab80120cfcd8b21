"""SlotPool: preallocated IO per instance, least-busy instance first, cancellation."""
from __future__ import annotations

from edgert.runtime.pool import SlotPool
from tests.runtime.doubles import FakeEngine


def test_slots_are_preallocated_per_instance_and_reused() -> None:
    engines = [FakeEngine("dla:0", 4), FakeEngine("dla:1", 4), FakeEngine("gpu", 4)]
    pool = SlotPool(list(engines), capacity=4, slots_per_instance=2)
    assert [len(e.ios) for e in engines] == [2, 2, 2]
    first = [pool.acquire(lambda: False) for _ in range(3)]
    assert sorted(s.instance for s in first) == [0, 1, 2]  # idle instances before busy ones
    view = first[0].tensor_view(3)
    assert view is not None and view.shape == (3, 3, 8, 8)
    assert view.base is first[0].io.inputs["images"] or view.base is not None
    pool.release(first[1])
    again = pool.acquire(lambda: False)
    assert again.instance == first[1].instance  # the least busy instance wins
    assert all(len(e.ios) == 2 for e in engines)  # nothing allocated after start


def test_acquire_returns_none_when_cancelled() -> None:
    pool = SlotPool([FakeEngine()], capacity=1, slots_per_instance=1)
    assert pool.acquire(lambda: False) is not None
    assert pool.acquire(lambda: True) is None


def test_no_engine_pool_has_no_tensor() -> None:
    pool = SlotPool([None], capacity=2, slots_per_instance=1)
    slot = pool.acquire(lambda: False)
    assert slot.tensor_view(2) is None and slot.nbytes == 0 and pool.bytes_copied() == 0

"""FrameHub: drop policies, round-robin batching, end-of-stream and abort accounting."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from edgert.runtime.hub import BLOCK, DROP_OLDEST, FrameHub
from edgert.runtime.metrics import Metrics
from edgert.sources.base import Frame

NEVER = threading.Event()


def _frame(i: int) -> Frame:
    return Frame(np.zeros((1, 1, 3), np.uint8), i, 0.0, time.monotonic())


def _hub(n: int = 2, policy: str = BLOCK, depth: int = 3) -> FrameHub:
    return FrameHub(["s%d" % i for i in range(n)], [policy] * n, depth, Metrics())


def test_drop_oldest_keeps_the_newest_frames_and_counts_the_rest() -> None:
    hub = _hub(1, DROP_OLDEST, depth=3)
    hub.stale_after_s = 0.0  # the engine is behind: every queued frame is stale
    for i in range(10):
        assert hub.put(0, _frame(i))
    hub.end(0)
    items = hub.take(10, 0.0, NEVER)
    assert [f.index for _, f in items] == [7, 8, 9]
    assert hub.counts() == {"s0": (10, 0, 7)}
    assert hub.metrics.snapshot().counter("edgert_frames_dropped_total", source="s0") == 7
    assert hub.take(10, 0.0, NEVER) is None  # ended and drained


def test_block_waits_for_room_and_loses_nothing() -> None:
    hub = _hub(1, BLOCK, depth=2)
    done = threading.Event()

    def produce() -> None:
        for i in range(6):
            hub.put(0, _frame(i))
        hub.end(0)
        done.set()

    t = threading.Thread(target=produce)
    t.start()
    got = []
    while True:
        items = hub.take(1, 0.0, NEVER)
        if items is None:
            break
        got += [f.index for _, f in items]
    t.join(5)
    assert got == list(range(6)) and done.is_set()
    assert hub.counts() == {"s0": (6, 0, 0)}


def test_take_round_robins_across_streams() -> None:
    hub = _hub(3, BLOCK, depth=4)
    for s in range(3):
        for i in range(2):
            hub.put(s, _frame(i))
    items = hub.take(4, 0.0, NEVER)
    assert [(s, f.index) for s, f in items] == [(0, 0), (1, 0), (2, 0), (0, 1)]


@pytest.mark.parametrize("timeout_s,expect", [(0.0, 1), (5.0, 2)])
def test_take_waits_up_to_the_batch_timeout_for_more(timeout_s: float, expect: int) -> None:
    hub = _hub(2, BLOCK, depth=4)
    hub.put(0, _frame(0))
    threading.Timer(0.05, lambda: hub.put(1, _frame(0))).start()
    items = hub.take(2, timeout_s, NEVER)
    assert len(items) == expect


def test_close_counts_queued_frames_as_dropped_and_refuses_new_ones() -> None:
    hub = _hub(2, BLOCK, depth=4)
    hub.put(0, _frame(0))
    hub.put(1, _frame(0))
    hub.close()
    assert not hub.put(0, _frame(1))
    assert hub.take(4, 0.0, NEVER) is None
    assert hub.counts() == {"s0": (2, 0, 2), "s1": (1, 0, 1)}


def test_a_burst_of_fresh_live_frames_loses_nothing_at_batch_formation() -> None:
    hub = _hub(2, DROP_OLDEST, depth=4)
    hub.stale_after_s = 60.0
    for i in range(4):
        hub.put(0, _frame(i))  # a reconnecting camera delivers a burst: full, but fresh
    items = hub.take(2, 0.0, NEVER)
    assert [(s, f.index) for s, f in items] == [(0, 0), (0, 1)]
    assert hub.counts() == {"s0": (4, 0, 0), "s1": (0, 0, 0)}


def test_live_frames_older_than_the_batch_time_are_skipped_fresh_ones_kept() -> None:
    hub = _hub(1, DROP_OLDEST, depth=8)
    old = _frame(0)
    old.capture_time -= 10.0
    hub.put(0, old)
    hub.put(0, _frame(1))
    hub.put(0, _frame(2))
    hub.stale_after_s = 1.0
    items = hub.take(2, 0.0, NEVER)
    assert [f.index for _, f in items] == [1, 2]  # frame 0 waited too long; 1 and 2 are fresh
    assert hub.counts() == {"s0": (3, 0, 1)}


def test_block_streams_never_skip() -> None:
    hub = _hub(1, BLOCK, depth=2)
    hub.stale_after_s = 0.0
    hub.put(0, _frame(0))
    hub.put(0, _frame(1))
    assert [f.index for _, f in hub.take(1, 0.0, NEVER)] == [0]


def test_drop_oldest_absorbs_a_fresh_burst_up_to_the_burst_limit() -> None:
    from edgert.runtime.hub import BURST

    hub = _hub(1, DROP_OLDEST, depth=2)  # stale_after_s unknown (inf): frames are fresh
    for i in range(BURST * 2 + 3):
        hub.put(0, _frame(i))
    assert hub.counts() == {"s0": (BURST * 2 + 3, 0, 3)}  # bounded, the oldest went first
    hub.end(0)
    assert [f.index for _, f in hub.take(100, 0.0, NEVER)] == list(range(3, BURST * 2 + 3))

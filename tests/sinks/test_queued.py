"""The bounded sink worker: never blocks the caller, counts what it drops."""
from __future__ import annotations

import logging
import threading
from typing import List

from edgert.runtime.metrics import Metrics
from edgert.sinks.queued import Worker


def test_full_queue_drops_and_counts_without_blocking() -> None:
    metrics = Metrics()
    gate = threading.Event()
    started = threading.Event()
    done: List[int] = []
    worker = Worker("video", capacity=2, metrics=metrics)

    def blocked() -> None:
        started.set()
        gate.wait(10)  # a sink stuck on a slow disk

    assert worker.submit(blocked)
    assert started.wait(10)
    accepted = [worker.submit(lambda i=i: done.append(i)) for i in range(5)]
    assert accepted == [True, True, False, False, False]
    gate.set()
    worker.close()
    assert done == [0, 1]
    assert (worker.done, worker.dropped) == (3, 3)
    assert metrics.snapshot().counter("edgert_sink_dropped_total", sink="video") == 3


def test_failures_are_logged_once_per_distinct_error(caplog) -> None:
    caplog.set_level(logging.ERROR, logger="edgert.sinks.queued")
    worker = Worker("jsonl", capacity=10)

    def disk_full() -> None:
        raise OSError(28, "No space left on device")

    for _ in range(4):
        worker.submit(disk_full)
    worker.submit(lambda: None)
    worker.close()
    assert (worker.failed, worker.dropped, worker.done) == (4, 4, 1)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["sink 'jsonl': [Errno 28] No space left on device (dropping output, "
                     "counted in edgert_sink_dropped_total)"]

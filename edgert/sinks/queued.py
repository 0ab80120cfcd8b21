"""A bounded background queue for a sink's slow work (encoding, disk, network).

The runtime writes every sink from one thread, so a sink that blocks (a
saturated SD card, a video encoder slower than the camera) would stall the
whole pipeline.  A sink that owns slow work hands it to a :class:`Worker`:
``submit()`` never blocks; when the queue is full the item is dropped and
counted (``edgert_sink_dropped_total{sink}``), and the first drop and every
failure are logged once, as one line naming the sink.  ``close()`` drains what
is queued (bounded by a timeout) so files end complete.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable, Optional

from edgert.runtime.metrics import Metrics

log = logging.getLogger("edgert.sinks.queued")

Job = Callable[[], None]
_STOP = object()


class Worker:
    """One thread running a sink's jobs in order, behind a queue of ``capacity``."""

    def __init__(self, sink: str, capacity: int, metrics: Optional[Metrics] = None) -> None:
        self.sink = sink
        self.metrics = metrics
        self._q: "queue.Queue[Any]" = queue.Queue(maxsize=capacity)
        self._thread = threading.Thread(target=self._run, name="sink:%s" % sink, daemon=True)
        self.done = 0
        self.dropped = 0
        self.failed = 0
        self.error: Optional[str] = None
        self._drop_logged = False
        self._thread.start()

    def submit(self, job: Job) -> bool:
        """Queue ``job``; False (and counted) when the queue is full."""
        try:
            self._q.put_nowait(job)
        except queue.Full:
            self._count_drop("queue full: the sink is slower than the pipeline")
            return False
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Run what is queued (up to ``timeout`` seconds), then stop the thread."""
        end = time.monotonic() + timeout
        while True:
            try:
                self._q.put(_STOP, timeout=max(0.01, end - time.monotonic()))
                break
            except queue.Full:
                if time.monotonic() >= end:
                    break
        self._thread.join(timeout=max(0.0, end - time.monotonic()) + 1.0)
        left = self._q.qsize()
        if left and self._thread.is_alive():
            log.error("sink '%s': %d queued items not written within %.0f s", self.sink,
                      left, timeout)

    def _run(self) -> None:
        while True:
            job = self._q.get()
            if job is _STOP:
                return
            try:
                job()
                self.done += 1
            except Exception as exc:  # noqa: BLE001 - a failing sink must not kill the run
                self.failed += 1
                self._count_drop(" ".join(str(exc).split()) or type(exc).__name__, error=True)

    def _count_drop(self, why: str, error: bool = False) -> None:
        self.dropped += 1
        if self.metrics is not None:
            self.metrics.inc("edgert_sink_dropped_total", sink=self.sink)
        if error and why != self.error:  # each distinct failure once, not once per frame
            self.error = why
            log.error("sink '%s': %s (dropping output, counted in edgert_sink_dropped_total)",
                      self.sink, why)
        elif not error and not self._drop_logged:
            self._drop_logged = True
            log.warning("sink '%s': %s; dropping (counted in edgert_sink_dropped_total)",
                        self.sink, why)

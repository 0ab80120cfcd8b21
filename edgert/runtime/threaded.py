"""The concurrent executor: every source, batch and engine instance in parallel.

Threads (names show up in ``py-spy`` and thread dumps)::

    reader:<source>  x sources    decode -> FrameHub (bounded, drop policy)
    batcher:<k>      x prep       slot <- SlotPool; frames across streams -> pre stages
                                  (written straight into the slot's engine input)
    infer:<device>   x instances  infer stage on its own engine
    post             x 1          decoders and every other stage, off the inference path
    sinks            x 1          reorders batches by sequence (per-stream order), writes
                                  sinks, accounts frames, releases the slot

A slot (one engine's preallocated :class:`EngineIO` plus index arrays) is held
from the moment a batch is formed until its sinks are written, so nothing is
allocated per frame and outputs are read in place; the number of slots bounds
the frames in flight, and a slow sink backs up to the queues, where the drop
policy applies.

Shutdown: :meth:`request_stop` (SIGTERM, Ctrl-C) stops the readers; batches
already queued or in flight are drained and the sinks flushed.  A second
request, or any stage/sink exception, aborts: queued frames are counted as
dropped, the failure is reported once by stage name, sinks are still stopped
so files stay valid.  Every join has a timeout.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from edgert.batch import Batch
from edgert.runtime.hub import DROP_OLDEST, FrameHub
from edgert.runtime.metrics import Metrics
from edgert.runtime.observer import RunObserver
from edgert.runtime.plan import StageError, run_chain
from edgert.runtime.pool import Slot, SlotPool
from edgert.runtime.report import DETECTIONS
from edgert.sources.base import Source
from edgert.stage import Sink, Stage

log = logging.getLogger("edgert.runtime.threaded")

_SENTINEL = None
_POLL_S = 0.1


@dataclass
class Work:
    """One batch in flight: its slot, sequence number and per-stage results."""

    seq: int
    slot: Slot
    batch: Batch
    results: Dict[str, Batch] = field(default_factory=dict)


@dataclass
class Components:
    """Everything one run needs, built and started by the caller (see ``build``)."""

    sources: List[Source]
    policies: List[str]
    pre: List[List[Stage]]  # one chain per batcher thread
    infer: List[List[Stage]]  # one chain per engine instance (empty chain: no model)
    post: List[Stage]
    sinks: List[Sink]
    pool: SlotPool
    devices: List[str]
    opened: List[bool] = field(default_factory=list)  # sources the caller already opened


class ThreadedCore:
    """Runs started components to completion; knows nothing about YAML or engines."""

    def __init__(self, comps: Components, queue_depth: int, batch_timeout_s: float,
                 metrics: Metrics, shutdown_timeout_s: float = 10.0,
                 max_frames: Optional[int] = None,
                 observer: Optional[RunObserver] = None) -> None:
        self.c = comps
        self.metrics = metrics
        self.timeout_s = batch_timeout_s
        self.shutdown_timeout_s = shutdown_timeout_s
        self.max_frames = max_frames
        self.observer = observer if observer is not None else RunObserver()
        self._ready = False
        self.hub = FrameHub([s.name for s in comps.sources], comps.policies, queue_depth, metrics)
        self.stopping = threading.Event()  # graceful: readers stop, in-flight drains
        self.abort = threading.Event()  # failure or second stop: discard, then stop
        self.stop_requested = False
        self.error: Optional[str] = None
        self.hung: List[str] = []
        self.copied_by_runtime = 0
        self._ema_batch_s: Optional[float] = None
        self._ema_pre_s: Optional[float] = None
        self._busy_since: List[Optional[float]] = [None] * len(comps.infer)
        self._live = DROP_OLDEST in comps.policies
        self.buffer_allocs = 0  # model-input buffers a stage allocated instead of using the slot
        self._err_lock = threading.Lock()
        self._gather = threading.Lock()
        self._seq = 0
        self._inboxes: List["queue.Queue[Optional[Work]]"] = [queue.Queue() for _ in comps.infer]
        self._post_q: "queue.Queue[Optional[Work]]" = queue.Queue()
        self._sink_q: "queue.Queue[Optional[Work]]" = queue.Queue()
        self.started = 0.0
        self.finished = 0.0

    # ------------------------------------------------------------ control
    def request_stop(self) -> None:
        self.stop_requested = True
        if self.stopping.is_set():
            log.warning("second stop request: dropping queued frames")
            self._abort()
        else:
            log.info("stopping: draining in-flight batches")
            self.stopping.set()
        self.hub.wake()

    def fail(self, message: str) -> None:
        """Record the first failure (one line, reported once) and abort the run."""
        with self._err_lock:
            if self.error is None:
                self.error = message  # the caller reports it, once (edgert run: one line)
                log.debug("aborting: %s", message)
        self._abort()

    def _abort(self) -> None:
        self.abort.set()
        self.stopping.set()
        self.hub.close()
        self.c.pool.wake()

    # ------------------------------------------------------------ run
    def run(self) -> None:
        self.started = time.monotonic()
        readers = [self._thread("reader:%s" % s.name, self._read, i)
                   for i, s in enumerate(self.c.sources)]
        batchers = [self._thread("batcher:%d" % k, self._batch, k) for k in range(len(self.c.pre))]
        lanes = [self._thread("infer:%s" % self.c.devices[i], self._infer, i)
                 for i in range(len(self.c.infer))]
        post = self._thread("post", self._post)
        sinks = self._thread("sinks", self._sink)
        self._notify("on_start", len(lanes))
        for t in readers + batchers + lanes + [post, sinks]:
            t.start()
        self._join(batchers)
        for box in self._inboxes:
            box.put(_SENTINEL)
        self._join(lanes)
        self._notify("on_stop", "error" if self.error else  # inference is over: STOPPING=1
                     "stopped by signal" if self.stop_requested else "streams ended")
        self._post_q.put(_SENTINEL)
        self._join([post])
        self._sink_q.put(_SENTINEL)
        self._join([sinks])
        self.stopping.set()  # readers of sources that outlived the batchers
        self.hub.close()
        self._join(readers, deadline_s=self.shutdown_timeout_s)
        self.finished = time.monotonic()

    def _notify(self, hook: str, *args: Any) -> None:
        """Call an observer hook (systemd watchdog, tests); it must never break the run."""
        try:
            getattr(self.observer, hook)(*args)
        except Exception:  # noqa: BLE001
            log.exception("run observer %s failed", hook)

    def _thread(self, name: str, target: Callable[..., None], *args: Any) -> threading.Thread:
        def guarded() -> None:
            try:
                target(*args)
            except Exception as exc:  # noqa: BLE001 - a bug here must stop the run, not hang it
                log.exception("internal error in thread %s", name)
                self.fail("internal error in %s: %s: %s" % (name, type(exc).__name__,
                                                            _one_line(exc)))

        return threading.Thread(target=guarded, name=name, daemon=True)

    def _join(self, threads: List[threading.Thread], deadline_s: Optional[float] = None) -> None:
        """Join, waiting indefinitely while the run is healthy, bounded once stopping."""
        limit: Optional[float] = None
        for t in threads:
            while t.is_alive():
                t.join(_POLL_S)
                if deadline_s is not None and limit is None:
                    limit = time.monotonic() + deadline_s
                if self.stopping.is_set() and limit is None:
                    limit = time.monotonic() + self.shutdown_timeout_s
                if limit is not None and time.monotonic() > limit and t.is_alive():
                    log.error("thread %s did not stop within %.0fs; leaving it behind",
                              t.name, self.shutdown_timeout_s)
                    self.hung.append(t.name)
                    break

    # ------------------------------------------------------------ readers
    def _read(self, idx: int) -> None:
        src = self.c.sources[idx]
        err: Optional[str] = None
        try:
            if not (idx < len(self.c.opened) and self.c.opened[idx]):
                src.open()
            self.metrics.set("edgert_source_up", 1, source=src.name)
            limit = self.max_frames
            while not self.stopping.is_set() and (limit is None or limit > 0):
                if limit is not None:
                    limit -= 1
                frame = src.read()
                if frame is None or not self.hub.put(idx, frame):
                    break
        except Exception as exc:  # noqa: BLE001 - one failing stream never stops the others
            err = "source '%s' failed: %s" % (src.name, _one_line(exc))
            log.warning("%s; other streams continue", err)
        finally:
            self.metrics.set("edgert_source_up", 0, source=src.name)
            self.hub.end(idx, err)
            try:
                src.close()
            except Exception as exc:  # noqa: BLE001
                log.warning("source '%s': close failed: %s", src.name, _one_line(exc))

    # ------------------------------------------------------------ batchers
    def _batch(self, k: int) -> None:
        chain = self.c.pre[k]
        while not self.abort.is_set():
            slot = self.c.pool.acquire(self.abort.is_set)
            if slot is None:
                return
            self._late_bind(slot.instance)
            with self._gather:
                items = self.hub.take(slot.capacity, self.timeout_s, self.abort)
                if not items:
                    self.c.pool.release(slot)
                    return
                slot.seq = self._seq
                self._seq += 1
            work = self._form(slot, items)
            t0 = time.monotonic()
            try:
                run_chain(chain, work.results, self._observe)
            except StageError as exc:
                self._discard(work)
                self.fail(exc.one_line())
                return
            dt = time.monotonic() - t0
            self._ema_pre_s = dt if self._ema_pre_s is None else 0.8 * self._ema_pre_s + 0.2 * dt
            self._inboxes[slot.instance].put(work)

    def _late_bind(self, instance: int) -> None:
        """With live streams, take frames just in time for the engine, not a batch early.

        The slot is free while its engine still runs the previous batch; frames
        taken now would wait that long.  Wait until the engine is expected to
        finish minus the preprocess time, so the batch is ready exactly when the
        engine is (EMAs of both).  Files (block) take frames at once: only
        throughput matters there.
        """
        if not self._live:
            return
        while not self.abort.is_set():
            since, batch_s = self._busy_since[instance], self._ema_batch_s
            if since is None or batch_s is None:
                return
            wait = since + batch_s - 1.5 * (self._ema_pre_s or 0.0) - time.monotonic()
            if wait <= 0.001:
                return
            self.abort.wait(min(wait, 0.05))

    def _form(self, slot: Slot, items: List[Any]) -> Work:
        """A batch over the slot's preallocated index arrays and engine input."""
        n = len(items)
        frames: List[np.ndarray] = []
        for i, (idx, fr) in enumerate(items):
            frames.append(fr.image)
            slot.source_index[i] = idx
            slot.frame_index[i] = fr.index
            slot.pts[i] = fr.pts
            slot.capture_time[i] = fr.capture_time
        batch = Batch(frames=frames, source_index=slot.source_index[:n],
                      frame_index=slot.frame_index[:n], pts=slot.pts[:n],
                      capture_time=slot.capture_time[:n],
                      source_names=tuple(s.name for s in self.c.sources))
        batch.tensor = slot.tensor_view(n)
        if slot.io is not None:
            batch.extras["engine_io"] = slot.io
        return Work(slot.seq, slot, batch, {"sources": batch})

    # ------------------------------------------------------------ engines
    def _infer(self, i: int) -> None:
        chain = self.c.infer[i]
        while True:
            try:
                work = self._inboxes[i].get(timeout=1.0)
            except queue.Empty:
                self._notify("heartbeat", i)  # alive, nothing queued (a camera reconnecting)
                continue
            if work is _SENTINEL:
                return
            if self.abort.is_set():
                self._discard(work)
                continue
            self._count_copy(work)
            t0 = time.monotonic()
            self._busy_since[i] = t0 if chain else None
            try:
                run_chain(chain, work.results, self._observe)
            except StageError as exc:
                self._discard(work)
                self.fail(exc.one_line())
                continue
            finally:
                self._busy_since[i] = None
            if chain:  # no model stage: no engine time to bound staleness with
                self._batch_time(time.monotonic() - t0)
            self._notify("on_batch_done", len(work.batch), i)  # from the inference thread
            self._post_q.put(work)

    def _batch_time(self, seconds: float) -> None:
        """Track the engine's batch time (EMA) as the staleness limit for live frames."""
        ema = self._ema_batch_s
        self._ema_batch_s = seconds if ema is None else 0.8 * ema + 0.2 * seconds
        self.hub.stale_after_s = self._ema_batch_s

    def _count_copy(self, work: Work) -> None:
        """Bytes the infer stage must copy because preprocess wrote elsewhere."""
        slot = work.slot
        last = work.results.get(self.c.infer[slot.instance][0].config.input) \
            if self.c.infer[slot.instance] else None
        tensor = last.tensor if last is not None else None
        view = slot.tensor_view(len(work.batch))
        if tensor is not None and view is not None and not np.may_share_memory(tensor, view):
            self.copied_by_runtime += int(tensor.nbytes)
            self.buffer_allocs += 1

    # ------------------------------------------------------------ post + sinks
    def _post(self) -> None:
        while True:
            work = self._post_q.get()
            if work is _SENTINEL:
                return
            if self.abort.is_set():
                self._discard(work)
                continue
            try:
                run_chain(self.c.post, work.results, self._observe)
            except StageError as exc:
                self._discard(work)
                self.fail(exc.one_line())
                continue
            self._sink_q.put(work)

    def _sink(self) -> None:
        pending: Dict[int, Work] = {}
        expect = 0
        fps = _FpsMeter(self.hub, self.metrics)
        while True:
            work = self._sink_q.get()
            if work is _SENTINEL:
                break
            pending[work.seq] = work
            while expect in pending:
                w = pending.pop(expect)
                expect += 1
                self._deliver(w)
            fps.tick()
        for w in pending.values():  # only after an abort: earlier batches never came
            self._discard(w)
        fps.tick(force=True)

    def _deliver(self, work: Work) -> None:
        if self.abort.is_set():
            self._discard(work)
            return
        for sink in self.c.sinks:
            t0 = time.perf_counter()
            try:
                sink.write(work.results[sink.config.input])
            except Exception as exc:  # noqa: BLE001 - a sink failure stops the run, by name
                self._discard(work)
                self.fail(StageError(sink.name, exc).one_line("sink"))
                return
            self._observe(sink.name, time.perf_counter() - t0)
        now = time.monotonic()
        batch = work.batch
        counts: Dict[int, int] = {}
        for i in range(len(batch)):
            idx = int(batch.source_index[i])
            counts[idx] = counts.get(idx, 0) + 1
            self.metrics.observe("edgert_e2e_latency_seconds",
                                 now - float(batch.capture_time[i]),
                                 source=self.hub.streams[idx].name)
        for idx, n in counts.items():
            self.hub.delivered(idx, n, now)
        self._count_detections(work)
        self._release(work)
        if not self._ready:  # the first batch went through every stage and sink
            self._ready = True
            self._notify("on_ready")

    def _count_detections(self, work: Work) -> None:
        """Detections delivered, by class label (each distinct batch object once)."""
        seen = set()
        for b in work.results.values():
            if id(b) in seen or b.detections is None or not len(b.detections):
                continue
            seen.add(id(b))
            ids, counts = np.unique(b.detections.class_id, return_counts=True)
            for cid, count in zip(ids.tolist(), counts.tolist()):
                self.metrics.inc(DETECTIONS, float(count), label=b.label(int(cid)))

    def _discard(self, work: Work) -> None:
        for idx in work.batch.source_index.tolist():
            self.hub.dropped(int(idx), 1)
        self._release(work)

    def _release(self, work: Work) -> None:
        work.results.clear()
        work.batch.frames.clear()
        self.c.pool.release(work.slot)

    def _observe(self, stage: str, seconds: float) -> None:
        self.metrics.observe("edgert_stage_latency_seconds", seconds, stage=stage)


class _FpsMeter:
    """Per-stream frame rate at the sinks over ~1 s windows (a gauge)."""

    def __init__(self, hub: FrameHub, metrics: Metrics, window_s: float = 1.0) -> None:
        self.hub = hub
        self.metrics = metrics
        self.window_s = window_s
        self.t0 = time.monotonic()
        self.last = [0] * len(hub.streams)

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        dt = now - self.t0
        if dt < self.window_s and not force:
            return
        for i, s in enumerate(self.hub.streams):
            out = s.frames_out
            if dt > 0:
                self.metrics.set("edgert_stream_fps", (out - self.last[i]) / dt, source=s.name)
            self.last[i] = out
        self.t0 = now


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ")
    return text or type(exc).__name__

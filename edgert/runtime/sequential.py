"""``SequentialExecutor``: the simple, obviously-correct way to run a pipeline.

One thread does everything: read one frame from each source in turn
(round-robin), gather up to the model's batch size across streams, run the
stages in topological order (each on the batch its ``input`` produced), hand
the results to the sinks.  It is the reference the concurrent runtime is
checked against, and what ``runtime.executor: sequential`` selects.

Zero copy still holds: the engine's input buffers are allocated once
(``Engine.new_io``) and set as ``batch.tensor`` before preprocess runs, so
preprocess writes straight into the memory the engine reads.

Stopping: Ctrl-C or SIGTERM stops *reading*; the batch in flight finishes, the
sinks flush and close, the run returns normally (exit 0, the summary says
"stopped by signal").  A second Ctrl-C aborts at once.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from contextlib import ExitStack
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from edgert.batch import Batch
from edgert.config.schema import PipelineConfig
from edgert.engines.base import EngineIO
from edgert.errors import EdgertError, RuntimeFailure
from edgert.progress import Progress
from edgert.runtime.graph import EngineFactory, Graph, build_graph
from edgert.runtime.metrics import Metrics
from edgert.runtime.observer import RunObserver
from edgert.runtime.report import (DETECTIONS, FRAMES_IN, FRAMES_OUT, RunReport,
                                   describe_metrics)
from edgert.sinks.metrics import serve_metrics
from edgert.sources.base import Frame

log = logging.getLogger("edgert.runtime.sequential")

STAGE_LATENCY = "edgert_stage_latency_seconds"
E2E_LATENCY = "edgert_e2e_latency_seconds"


@contextlib.contextmanager
def stop_on_signals(request_stop: Callable[[], None]) -> Iterator[None]:
    """SIGINT/SIGTERM call ``request_stop`` once; a second SIGINT raises KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    seen: List[int] = []

    def handler(signum: int, frame: Any) -> None:
        if seen and signum == signal.SIGINT:
            raise KeyboardInterrupt
        seen.append(signum)
        log.warning("%s: finishing the frames in flight, then stopping (Ctrl-C again aborts)",
                    signal.Signals(signum).name)
        request_stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, prev in previous.items():
            signal.signal(sig, prev)


def stage_failure(kind: str, name: str, exc: BaseException) -> EdgertError:
    """One line naming the failing stage/sink (user errors keep their own wording)."""
    if isinstance(exc, EdgertError):
        msg = str(exc)
        return exc if ("'%s'" % name) in msg else RuntimeFailure("%s '%s': %s" % (kind, name, msg))
    text = (str(exc).strip().splitlines() or [""])[0]
    return RuntimeFailure("%s '%s' failed: %s: %s" % (kind, name, type(exc).__name__, text))


class SequentialExecutor:
    """Run a pipeline in one thread; ``run()`` returns a :class:`RunReport`."""

    def __init__(self, pipeline: PipelineConfig, metrics: Optional[Metrics] = None,
                 engine_factory: Optional[EngineFactory] = None,
                 max_frames: Optional[int] = None, handle_signals: bool = True,
                 observer: Optional[RunObserver] = None) -> None:
        self.pipeline = pipeline
        self.observer = observer if observer is not None else RunObserver()
        self._ready = False
        self.metrics = metrics if metrics is not None else Metrics()
        self.engine_factory = engine_factory
        self.max_frames = max_frames
        self.handle_signals = handle_signals
        self._stop = threading.Event()
        self._io: Optional[Tuple[EngineIO, str]] = None

    def request_stop(self) -> None:
        """Stop reading; frames already read are finished and delivered."""
        self._stop.set()

    def run(self) -> RunReport:
        describe_metrics(self.metrics)
        graph = build_graph(self.pipeline, self.engine_factory)
        started = time.monotonic()
        copied = 0
        with ExitStack() as stack:
            serve_metrics(graph, self.pipeline, self.metrics, stack)
            graph.open(stack)
            capacity = self._prepare_io(graph)
            guard = stop_on_signals(self.request_stop) if self.handle_signals \
                else contextlib.nullcontext()
            self.observer.on_start(1)
            reason = "error"
            try:
                with guard, Progress("running %s" % self.pipeline.name, self._total(graph)) as bar:
                    self._loop(graph, capacity, bar)
                reason = "stopped by signal" if self._stop.is_set() else "streams ended"
            finally:  # STOPPING=1 before sinks flush and engines close
                self.observer.on_stop(reason)
            copied = self._bytes_copied(graph)
        duration = time.monotonic() - started
        return RunReport.from_metrics(self.pipeline.name, self.metrics,
                                      [s.name for s in graph.sources], duration,
                                      stopped=self._stop.is_set(), bytes_copied=copied)

    def _prepare_io(self, graph: Graph) -> int:
        """Preallocate the batching model's buffers; returns the batch capacity."""
        if graph.infer_stage is None:
            return max(1, graph.batch_size)
        engine = graph.engines.get(graph.model_of(graph.infer_stage) or "")
        capacity = max(1, min(graph.batch_size, engine.max_batch))
        self._io = (engine.new_io(capacity), engine.inputs[0].name)
        log.info("sequential executor: %d source(s), batch %d, stages %s", len(graph.sources),
                 capacity, " -> ".join(s.name for s in graph.stages) or "none")
        return capacity

    def _total(self, graph: Graph) -> Optional[int]:
        """Frames the run will process when every source knows its length (for the bar)."""
        counts = [s.frame_count for s in graph.sources]
        if any(c is None for c in counts):
            return None if self.max_frames is None else self.max_frames * len(counts)
        cap = self.max_frames
        return sum(min(c, cap) if cap is not None else c for c in counts if c is not None)

    def _loop(self, graph: Graph, capacity: int, bar: Progress) -> None:
        n = len(graph.sources)
        counts = [0] * n
        done = [False] * n
        pending: List[Tuple[int, Frame]] = []
        while not self._stop.is_set() and not all(done):
            for k in range(n):
                if done[k] or self._stop.is_set():
                    continue
                frame = self._read(k, graph, counts)
                if frame is None:
                    done[k] = True
                    continue
                pending.append((k, frame))
                if len(pending) >= capacity:
                    self._process(graph, pending)
                    bar.advance(len(pending))
                    pending = []
        if pending:
            self._process(graph, pending)
            bar.advance(len(pending))

    def _read(self, k: int, graph: Graph, counts: List[int]) -> Optional[Frame]:
        if self.max_frames is not None and counts[k] >= self.max_frames:
            return None
        src = graph.sources[k]
        try:
            frame = src.read()
        except EdgertError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise stage_failure("source", src.name, exc) from exc
        if frame is not None:
            counts[k] += 1
            self.metrics.inc(FRAMES_IN, source=src.name)
        return frame

    def _process(self, graph: Graph, items: List[Tuple[int, Frame]]) -> None:
        batch = Batch.of_frames([f.image for _, f in items], [k for k, _ in items],
                                [f.index for _, f in items], [f.pts for _, f in items],
                                [f.capture_time for _, f in items],
                                [s.name for s in graph.sources])
        if self._io is not None:
            io, name = self._io
            batch.tensor = io.inputs[name][:len(items)]
            batch.extras["engine_io"] = io
        results: Dict[str, Batch] = {"sources": batch}
        for stage in graph.stages:
            t0 = time.perf_counter()
            try:
                results[stage.name] = stage.process(results[stage.config.input])
            except Exception as exc:  # noqa: BLE001 - any failure stops the run, by name
                raise stage_failure("stage", stage.name, exc) from exc
            self.metrics.observe(STAGE_LATENCY, time.perf_counter() - t0, stage=stage.name)
        for sink in graph.sinks:
            try:
                sink.write(results[sink.config.input])
            except Exception as exc:  # noqa: BLE001
                raise stage_failure("sink", sink.name, exc) from exc
        self._account(graph, results, batch)
        if not self._ready:  # engines loaded and the first batch went through every stage
            self._ready = True
            self.observer.on_ready()
        self.observer.on_batch_done(len(items))  # this thread runs inference: watchdog

    def _account(self, graph: Graph, results: Dict[str, Batch], batch: Batch) -> None:
        now = time.monotonic()
        for i in range(len(batch)):
            name = batch.source_name(i)
            self.metrics.inc(FRAMES_OUT, source=name)
            self.metrics.observe(E2E_LATENCY, now - float(batch.capture_time[i]), source=name)
        seen = set()
        for b in results.values():
            if id(b) in seen or b.detections is None:
                continue
            seen.add(id(b))
            det = b.detections
            for cid, count in zip(*_unique_counts(det.class_id)):
                self.metrics.inc(DETECTIONS, float(count), label=b.label(int(cid)))

    def _bytes_copied(self, graph: Graph) -> int:
        total = self._io[0].bytes_copied if self._io is not None else 0
        for stage in graph.stages:
            total += int(stage.stats().get("bytes_copied", 0))
        return total


def _unique_counts(values: Any) -> Tuple[Any, Any]:
    import numpy as np

    return np.unique(values, return_counts=True)

"""``ThreadedExecutor``: the default way ``edgert run`` executes a pipeline.

Builds engines (one per instance), stage copies, sinks and sources from a
:class:`PipelineConfig`, runs :class:`~edgert.runtime.threaded.ThreadedCore`
under SIGTERM/Ctrl-C handling, tears everything down in reverse order and
returns a summary with exact per-stream accounting.
"""
from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from edgert.config.schema import PipelineConfig
from edgert.runtime.build import Builder, EngineFactory, make_sources
from edgert.runtime.metrics import Metrics
from edgert.runtime.signals import stop_on_signals
from edgert.runtime.threaded import ThreadedCore
from edgert.sources.base import Source
from edgert.stage import Sink

log = logging.getLogger("edgert.runtime.executor")


@dataclass
class StreamSummary:
    name: str
    frames_in: int
    frames_out: int
    frames_dropped: int
    fps: float
    error: Optional[str] = None


@dataclass
class RunSummary:
    """What a run did; ``error`` is the one-line failure (None when it succeeded)."""

    streams: List[StreamSummary]
    duration_s: float
    error: Optional[str] = None
    stopped: bool = False  # stopped by a signal / request rather than by the sources ending
    latency_ms: Dict[str, Optional[float]] = field(default_factory=dict)
    stage_ms: Dict[str, Dict[str, Optional[float]]] = field(default_factory=dict)
    bytes_copied: int = 0
    buffer_allocs: int = 0  # per-batch buffers allocated on the hot path (0 when zero-copy)
    batch: int = 1
    instances: List[str] = field(default_factory=list)
    hung_threads: List[str] = field(default_factory=list)

    @property
    def frames_out(self) -> int:
        return sum(s.frames_out for s in self.streams)

    @property
    def fps(self) -> float:
        return self.frames_out / self.duration_s if self.duration_s > 0 else 0.0


def default_engine_factory() -> EngineFactory:
    from edgert.engines import factory  # the backend registry, resolved lazily

    return factory.create_engine  # type: ignore[no-any-return]


class ThreadedExecutor:
    """Run a pipeline with one thread per source, batcher, engine instance and sink path."""

    def __init__(self, pipeline: PipelineConfig, metrics: Optional[Metrics] = None,
                 engine_factory: Optional[EngineFactory] = None,
                 sources: Optional[List[Source]] = None, sinks: Optional[List[Sink]] = None,
                 slots_per_instance: int = 2, prep_workers: Optional[int] = None,
                 shutdown_timeout_s: float = 10.0, handle_signals: bool = True) -> None:
        self.pipeline = pipeline
        self.metrics = metrics if metrics is not None else Metrics()
        self._engine_factory = engine_factory
        self._sources = sources
        self._sinks = sinks
        self._slots = slots_per_instance
        self._prep = prep_workers
        self._shutdown_timeout_s = shutdown_timeout_s
        self._handle_signals = handle_signals
        self._core: Optional[ThreadedCore] = None
        self._stop_early = False

    def request_stop(self) -> None:
        """Graceful stop (drain and flush); a second call drops queued frames."""
        if self._core is None:
            self._stop_early = True
        else:
            self._core.request_stop()

    def run(self) -> RunSummary:
        rt = self.pipeline.runtime
        factory = self._engine_factory or default_engine_factory()
        with ExitStack() as stack:
            builder = Builder(self.pipeline, factory, stack)
            sources = self._sources if self._sources is not None else make_sources(self.pipeline)
            comps = builder.components(sources, self._sinks, self._slots, self._prep)
            core = ThreadedCore(comps, rt.queue_depth, rt.batch_timeout_ms / 1000.0,
                                self.metrics, self._shutdown_timeout_s)
            self._core = core
            if self._stop_early:
                core.request_stop()
            if self._handle_signals:
                with stop_on_signals(self.request_stop):
                    core.run()
            else:
                core.run()
            t_stop = time.monotonic()
        log.debug("teardown took %.2fs", time.monotonic() - t_stop)
        return self._summary(core)

    def _summary(self, core: ThreadedCore) -> RunSummary:
        snap = self.metrics.snapshot()
        duration = max(1e-9, core.finished - core.started)
        streams = []
        for s in core.hub.streams:
            span = (s.last_out - core.started) if s.last_out is not None else duration
            streams.append(StreamSummary(s.name, s.frames_in, s.frames_out, s.frames_dropped,
                                         s.frames_out / span if span > 0 else 0.0, s.error))
        lat = _merged_quantiles(snap.histograms.get("edgert_e2e_latency_seconds", {}).values())
        stage_ms = {dict(k).get("stage", "?"): _quantiles([h]) for k, h in
                    snap.histograms.get("edgert_stage_latency_seconds", {}).items()}
        error = core.error
        if error is None and streams and all(s.error for s in streams):
            error = "every source failed; first: %s" % streams[0].error
        return RunSummary(
            streams=streams, duration_s=duration, error=error,
            stopped=core.stop_requested,
            latency_ms=lat, stage_ms=stage_ms,
            bytes_copied=core.c.pool.bytes_copied() + core.copied_by_runtime,
            buffer_allocs=core.buffer_allocs, batch=core.c.pool.capacity,
            instances=list(core.c.devices),
            hung_threads=list(core.hung),
        )


def _quantiles(hists: Any) -> Dict[str, Optional[float]]:
    vals: List[float] = []
    for h in hists:
        vals.extend(h.recent)
    if not vals:
        return {"p50": None, "p99": None}
    vals.sort()

    def q(p: float) -> float:
        return 1000.0 * vals[min(len(vals) - 1, int(round(p * (len(vals) - 1))))]

    return {"p50": q(0.50), "p99": q(0.99)}


_merged_quantiles = _quantiles

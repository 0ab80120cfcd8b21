"""``ThreadedExecutor``: the default way ``edgert run`` executes a pipeline.

Same seam as :class:`~edgert.runtime.sequential.SequentialExecutor` (same
constructor, ``run() -> RunReport``, ``request_stop()``): builds engines (one
per instance), stage copies, sinks and sources, runs
:class:`~edgert.runtime.threaded.ThreadedCore` under SIGTERM/Ctrl-C handling,
tears everything down in reverse order and reports exact per-stream counts.
A stage failure is raised once, after the teardown, as one
:class:`RuntimeFailure` line naming the stage.
"""
from __future__ import annotations

import logging
from contextlib import ExitStack
from types import SimpleNamespace
from typing import Any, Dict, List, Optional

from edgert.config.schema import PipelineConfig
from edgert.errors import RuntimeFailure
from edgert.runtime.build import Builder, EngineFactory, make_sinks, make_sources
from edgert.runtime.graph import default_engine_factory
from edgert.runtime.metrics import Metrics
from edgert.runtime.observer import RunObserver
from edgert.runtime.report import RunReport, describe_metrics
from edgert.runtime.signals import stop_on_signals
from edgert.runtime.threaded import ThreadedCore
from edgert.sinks.metrics import serve_metrics
from edgert.sources.base import Source
from edgert.stage import Sink

log = logging.getLogger("edgert.runtime.executor")

EXECUTORS = ("auto", "threaded", "sequential")


class ThreadedExecutor:
    """Run a pipeline with threads per source, batcher, engine instance, post and sinks."""

    def __init__(self, pipeline: PipelineConfig, metrics: Optional[Metrics] = None,
                 engine_factory: Optional[EngineFactory] = None,
                 max_frames: Optional[int] = None, handle_signals: bool = True,
                 sources: Optional[List[Source]] = None, sinks: Optional[List[Sink]] = None,
                 slots_per_instance: int = 2, prep_workers: Optional[int] = None,
                 shutdown_timeout_s: float = 10.0,
                 observer: Optional[RunObserver] = None) -> None:
        self.pipeline = pipeline
        self.observer = observer if observer is not None else RunObserver()
        self.metrics = metrics if metrics is not None else Metrics()
        self.engine_factory = engine_factory
        self.max_frames = max_frames
        self.handle_signals = handle_signals
        self._sources = sources
        self._sinks = sinks
        self._slots = slots_per_instance
        self._prep = prep_workers
        self._shutdown_timeout_s = shutdown_timeout_s
        self._core: Optional[ThreadedCore] = None
        self._stop_early = False

    def request_stop(self) -> None:
        """Graceful stop (drain and flush); a second call drops queued frames."""
        if self._core is None:
            self._stop_early = True
        else:
            self._core.request_stop()

    def run(self) -> RunReport:
        """Run to the end of the sources or a stop request; raise one line on failure."""
        report = self.run_report()
        if report.error:
            raise RuntimeFailure(report.error)
        return report

    def run_report(self) -> RunReport:
        """Like :meth:`run`, but a failure is returned in ``report.error`` (bench, tests)."""
        describe_metrics(self.metrics)
        rt = self.pipeline.runtime
        factory = self.engine_factory or default_engine_factory()
        with ExitStack() as stack:
            builder = Builder(self.pipeline, factory, stack)
            sources = self._sources if self._sources is not None else make_sources(self.pipeline)
            sinks = self._sinks if self._sinks is not None else \
                make_sinks(self.pipeline, builder.context())
            # metrics bound to sources/sinks and the exporter on runtime.metrics_port
            serve_metrics(SimpleNamespace(sources=sources, sinks=sinks), self.pipeline,
                          self.metrics, stack)
            comps = builder.components(sources, sinks, self._slots, self._prep)
            comps.opened = open_files(sources, stack)
            core = ThreadedCore(comps, rt.queue_depth, rt.batch_timeout_ms / 1000.0,
                                self.metrics, self._shutdown_timeout_s, self.max_frames,
                                self.observer)
            self._core = core
            if self._stop_early:
                core.request_stop()
            if self.handle_signals:
                with stop_on_signals(self.request_stop):
                    core.run()
            else:
                core.run()
        return self._report(core)

    def _report(self, core: ThreadedCore) -> RunReport:
        duration = max(1e-9, core.finished - core.started)
        names = [s.name for s in core.hub.streams]
        report = RunReport.from_metrics(self.pipeline.name, self.metrics, names, duration,
                                        stopped=core.stop_requested,
                                        bytes_copied=core.c.pool.bytes_copied()
                                        + core.copied_by_runtime)
        snap = self.metrics.snapshot()
        report.latency_ms = quantiles_ms(
            snap.histograms.get("edgert_e2e_latency_seconds", {}).values())
        report.stage_ms = {dict(k).get("stage", "?"): quantiles_ms([h]) for k, h in
                           snap.histograms.get("edgert_stage_latency_seconds", {}).items()}
        report.batch = core.c.pool.capacity
        report.instances = list(core.c.devices)
        report.buffer_allocs = core.buffer_allocs
        report.source_errors = {s.name: s.error for s in core.hub.streams if s.error}
        report.error = core.error
        if report.error is None and names and len(report.source_errors) == len(names):
            report.error = "every source failed; first: %s" % report.source_errors[names[0]]
        for s, hs in zip(report.streams, core.hub.streams):
            if hs.last_out is not None and hs.last_out > core.started:
                s.fps = s.frames_out / (hs.last_out - core.started)
        if core.hung:
            log.error("threads that did not stop in time: %s", ", ".join(core.hung))
        return report


def open_files(sources: List[Source], stack: ExitStack) -> List[bool]:
    """Open file and folder sources now, so an unreadable one fails the run in one line
    before anything starts (as the sequential executor does).  Live sources open in
    their reader thread: a camera that is down at start must not stop the others."""
    from edgert.runtime.sequential import stage_failure

    opened = []
    for src in sources:
        if src.live:
            opened.append(False)
            continue
        try:
            src.open()
        except RuntimeFailure:
            raise
        except Exception as exc:  # noqa: BLE001
            raise stage_failure("source", src.name, exc) from exc
        stack.callback(_close_quietly, src)
        opened.append(True)
    return opened


def _close_quietly(src: Source) -> None:
    try:
        src.close()  # readers close their source too; close() is safe to call twice
    except Exception as exc:  # noqa: BLE001
        log.warning("source '%s': close failed: %s", src.name, exc)


def quantiles_ms(hists: Any) -> Dict[str, Optional[float]]:
    """p50/p99 in milliseconds over the recent values of one or more histograms."""
    vals: List[float] = []
    for h in hists:
        vals.extend(h.recent)
    if not vals:
        return {"p50": None, "p99": None}
    vals.sort()

    def q(p: float) -> float:
        return 1000.0 * vals[min(len(vals) - 1, int(round(p * (len(vals) - 1))))]

    return {"p50": q(0.50), "p99": q(0.99)}


def create_executor(pipeline: PipelineConfig, name: Optional[str] = None, **kwargs: Any) -> Any:
    """The executor ``name`` (default ``runtime.executor``; ``auto`` = threaded)."""
    choice = name or pipeline.runtime.executor
    if choice == "sequential":
        from edgert.runtime.sequential import SequentialExecutor

        return SequentialExecutor(pipeline, **kwargs)
    if choice in ("auto", "threaded"):
        return ThreadedExecutor(pipeline, **kwargs)
    raise RuntimeFailure("unknown executor '%s'; use %s" % (choice, ", ".join(EXECUTORS)))

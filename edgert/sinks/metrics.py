"""Prometheus exporter for the run's :class:`~edgert.runtime.metrics.Metrics`.

There is one metrics module (``edgert.runtime.metrics``); this file only
*serves* it.  A custom collector reads :meth:`Metrics.snapshot` at each scrape
and maps counters, gauges and histograms to their Prometheus types, so
nothing is counted twice and nothing drifts from the end-of-run summary.

Two ways to turn it on:

* ``runtime: {metrics_port: 9108}``: the runtime starts a
  :class:`MetricsExporter` (see :func:`runtime_exporter_port`);
* ``sinks: [{kind: metrics, input: det, port: 9108}]``: the same exporter
  as a sink, with its own port/host options (the runtime then starts none).

Every metric the runtime, sources, sinks and platform telemetry write is
served: per-stream fps, frames in/out/dropped, source up/down, reconnects,
per-stage latency histograms, engine placement (``edgert_engine_info``),
``edgert_platform_*`` gauges, plus the process' memory and CPU.
"""
from __future__ import annotations

import logging
import re
import socketserver
import threading
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, Iterator, Optional
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from pydantic import Field

from edgert.batch import Batch
from edgert.errors import RuntimeFailure
from edgert.runtime.metrics import Metrics
from edgert.stage import SINKS, Sink, SinkConfig, StageContext

if TYPE_CHECKING:  # pragma: no cover
    from edgert.config.schema import PipelineConfig

log = logging.getLogger("edgert.sinks.metrics")
DEFAULT_PORT = 9108
_BAD_CHARS = re.compile(r"[^a-zA-Z0-9_:]")


def _metric_name(name: str) -> str:
    name = _BAD_CHARS.sub("_", name)
    return name if not name[:1].isdigit() else "_" + name


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


class SnapshotCollector:
    """A prometheus-client collector that renders one :class:`Metrics` snapshot per scrape."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> list:
        return []  # no collect() at registration: families appear as the run writes them

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import Metric

        snap = self.metrics.snapshot()
        for name, series in sorted(snap.counters.items()):
            base = _metric_name(name[:-6] if name.endswith("_total") else name)
            fam = Metric(base, snap.help.get(name, name), "counter")
            for key, value in series.items():
                fam.add_sample(base + "_total", dict(key), value)
            yield fam
        for name, series in sorted(snap.gauges.items()):
            fam = Metric(_metric_name(name), snap.help.get(name, name), "gauge")
            for key, value in series.items():
                fam.add_sample(fam.name, dict(key), value)
            yield fam
        for name, hseries in sorted(snap.histograms.items()):
            base = _metric_name(name)
            fam = Metric(base, snap.help.get(name, name), "histogram")
            for key, h in hseries.items():
                labels = dict(key)
                cumulative = 0
                for bound, n in zip(list(h.buckets) + [float("inf")], h.counts):
                    cumulative += n
                    fam.add_sample(base + "_bucket", dict(labels, le=_le(bound)), cumulative)
                fam.add_sample(base + "_count", labels, h.count)
                fam.add_sample(base + "_sum", labels, h.total)
            yield fam


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Scrapes every few seconds would flood stderr; the library never prints."""


class MetricsExporter:
    """Serve ``metrics`` at ``http://host:port/metrics`` from a daemon thread."""

    def __init__(self, metrics: Metrics, port: int = DEFAULT_PORT, host: str = "0.0.0.0",
                 process_metrics: bool = True) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self.process_metrics = process_metrics
        self._server: Optional[WSGIServer] = None
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "MetricsExporter":
        from edgert._lazy import require

        prom = require("prometheus_client", "the Prometheus exporter")
        registry = prom.CollectorRegistry(auto_describe=False)
        registry.register(SnapshotCollector(self.metrics))
        if self.process_metrics:
            prom.ProcessCollector(registry=registry)  # memory growth over days shows here
        app = prom.make_wsgi_app(registry)
        try:
            self._server = make_server(self.host, self.port, app, _Server,
                                       handler_class=_QuietHandler)
        except OSError as exc:
            raise RuntimeFailure("metrics: cannot serve on %s:%d: %s"
                                 % (self.host, self.port, exc.strerror or exc)) from None
        self.port = int(self._server.server_address[1])  # the real one when port was 0
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="edgert-metrics", daemon=True)
        self._thread.start()
        log.info("metrics: serving Prometheus metrics on http://%s:%d/metrics",
                 self.host, self.port)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def runtime_exporter_port(pipeline: "PipelineConfig") -> Optional[int]:
    """The port the runtime should serve on: ``runtime.metrics_port`` unless a
    ``kind: metrics`` sink already serves (two exporters would fight over it)."""
    if any(s.kind == "metrics" for s in pipeline.sinks):
        return None
    return pipeline.runtime.metrics_port


def serve_metrics(graph: Any, pipeline: "PipelineConfig", metrics: Metrics,
                  stack: ExitStack) -> None:
    """What an executor does before opening the graph: hand ``metrics`` to every
    source and sink (:meth:`Source.bind_metrics`) and start the exporter on
    ``runtime.metrics_port``; ``stack`` stops it."""
    for part in list(graph.sources) + list(graph.sinks):
        part.bind_metrics(metrics)
    port = runtime_exporter_port(pipeline)
    if port is not None:
        exporter = MetricsExporter(metrics, port).start()
        stack.callback(exporter.stop)


class MetricsSinkConfig(SinkConfig):
    port: Optional[int] = Field(None, ge=0, le=65535)
    """Port to serve on (default: ``runtime.metrics_port``, else 9108)."""
    host: str = "0.0.0.0"
    """Address to listen on; ``127.0.0.1`` keeps it on this machine."""
    process_metrics: bool = True
    """Also export the process' memory, CPU time and open files."""


@SINKS.register("metrics")
class MetricsSink(Sink):
    """Serves the run's Metrics over HTTP for as long as the pipeline runs."""

    Config = MetricsSinkConfig

    def __init__(self, config: SinkConfig, context: StageContext) -> None:
        super().__init__(config, context)
        self.cfg: MetricsSinkConfig = config  # type: ignore[assignment]
        self.exporter: Optional[MetricsExporter] = None

    def start(self) -> None:
        if self.metrics is None:  # used on its own (tests, scripts): serve a fresh collector
            self.metrics = Metrics()
        port = self.cfg.port
        if port is None:
            port = self.context.pipeline.runtime.metrics_port or DEFAULT_PORT
        self.exporter = MetricsExporter(self.metrics, port, self.cfg.host,
                                        self.cfg.process_metrics).start()

    def write(self, batch: Batch) -> None:
        """Nothing per batch: the executor already counts frames and detections
        into the Metrics this sink serves."""

    def stop(self) -> None:
        if self.exporter is not None:
            self.exporter.stop()
            self.exporter = None

    @property
    def port(self) -> Optional[int]:
        return self.exporter.port if self.exporter is not None else None

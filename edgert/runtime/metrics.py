"""In-process metrics: the runtime and platform write, exporters read.

A dependency-free, thread-safe collector of counters, gauges and histograms
with labels.  The Prometheus exporter (``runtime.metrics_port``), ``edgert
bench`` and the end-of-run summary all read :meth:`Metrics.snapshot`, so there
is one source of truth for every number edgert reports.

Metric names (Prometheus conventions; label in braces):
  edgert_frames_in_total{source}        frames read from the source
  edgert_frames_out_total{source}       frames that reached the sinks
  edgert_frames_dropped_total{source}   frames dropped by the drop policy / lost on reconnect
  edgert_source_up{source}              1 while the source delivers frames
  edgert_source_reconnects_total{source}
  edgert_queue_depth{source}            frames waiting for inference
  edgert_stream_fps{source}             recent frame rate at the sinks
  edgert_stage_latency_seconds{stage}   histogram, per stage and per batch
  edgert_e2e_latency_seconds{source}    histogram, capture -> sinks
  edgert_sink_dropped_total{sink}       messages a sink could not deliver
  edgert_platform_*                     telemetry gauges (GPU load, clocks, temperatures, watts)
"""
from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

LabelKey = Tuple[Tuple[str, str], ...]

# Seconds; covers sub-millisecond stages up to multi-second stalls.
DEFAULT_BUCKETS: Tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)


def _key(labels: Dict[str, str]) -> LabelKey:
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


@dataclass
class Histogram:
    buckets: Tuple[float, ...]
    counts: List[int]  # per bucket (not cumulative); last slot is +Inf
    total: float = 0.0
    count: int = 0
    # a bounded reservoir of recent values for exact p50/p99 in summaries
    recent: List[float] = field(default_factory=list)
    recent_cap: int = 4096
    _next: int = 0

    @classmethod
    def new(cls, buckets: Sequence[float]) -> "Histogram":
        return cls(tuple(buckets), [0] * (len(buckets) + 1))

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1
        if len(self.recent) < self.recent_cap:
            self.recent.append(value)
        else:  # overwrite in a ring so memory stays flat on long runs
            self.recent[self._next] = value
            self._next = (self._next + 1) % self.recent_cap

    def quantile(self, q: float) -> Optional[float]:
        """Quantile of the recent values (None when empty)."""
        if not self.recent:
            return None
        vals = sorted(self.recent)
        idx = min(len(vals) - 1, max(0, int(round(q * (len(vals) - 1)))))
        return vals[idx]

    def copy(self) -> "Histogram":
        return Histogram(self.buckets, list(self.counts), self.total, self.count,
                         list(self.recent), self.recent_cap, self._next)


@dataclass
class Snapshot:
    counters: Dict[str, Dict[LabelKey, float]]
    gauges: Dict[str, Dict[LabelKey, float]]
    histograms: Dict[str, Dict[LabelKey, Histogram]]
    help: Dict[str, str]

    def counter(self, name: str, **labels: str) -> float:
        return self.counters.get(name, {}).get(_key(labels), 0.0)

    def gauge(self, name: str, **labels: str) -> Optional[float]:
        return self.gauges.get(name, {}).get(_key(labels))

    def histogram(self, name: str, **labels: str) -> Optional[Histogram]:
        return self.histograms.get(name, {}).get(_key(labels))


class Metrics:
    """Thread-safe labelled counters, gauges and histograms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: Dict[str, Dict[LabelKey, float]] = {}
        self._gauges: Dict[str, Dict[LabelKey, float]] = {}
        self._hists: Dict[str, Dict[LabelKey, Histogram]] = {}
        self._help: Dict[str, str] = {}

    def describe(self, name: str, text: str) -> None:
        with self._lock:
            self._help[name] = text

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        k = _key(labels)
        with self._lock:
            series = self._counters.setdefault(name, {})
            series[k] = series.get(k, 0.0) + value

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self._gauges.setdefault(name, {})[_key(labels)] = float(value)

    def observe(self, name: str, value: float, buckets: Sequence[float] = DEFAULT_BUCKETS,
                **labels: str) -> None:
        k = _key(labels)
        with self._lock:
            series = self._hists.setdefault(name, {})
            h = series.get(k)
            if h is None:
                h = series[k] = Histogram.new(buckets)
            h.observe(value)

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(
                counters={n: dict(s) for n, s in self._counters.items()},
                gauges={n: dict(s) for n, s in self._gauges.items()},
                histograms={n: {k: h.copy() for k, h in s.items()} for n, s in self._hists.items()},
                help=dict(self._help),
            )

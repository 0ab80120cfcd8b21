"""What a run did, read from :class:`~edgert.runtime.metrics.Metrics` (the one source of numbers).

``RunReport.summary_line()`` is the line ``edgert run`` prints at the end::

    street-demo: 450 frames in 31.2s (14.4 fps) | street 450/450 | person 3120, car 212
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from edgert.runtime.metrics import Metrics

FRAMES_IN = "edgert_frames_in_total"
FRAMES_OUT = "edgert_frames_out_total"
FRAMES_DROPPED = "edgert_frames_dropped_total"
DETECTIONS = "edgert_detections_total"


def describe_metrics(metrics: Metrics) -> None:
    metrics.describe(FRAMES_IN, "Frames read from the source")
    metrics.describe(FRAMES_OUT, "Frames that reached the sinks")
    metrics.describe(FRAMES_DROPPED, "Frames dropped by the drop policy or lost")
    metrics.describe(DETECTIONS, "Detections delivered to the sinks, by class label")


@dataclass
class StreamReport:
    name: str
    frames_in: int
    frames_out: int
    frames_dropped: int
    fps: float


@dataclass
class RunReport:
    """Per-stream counts, rate, detections per class, duration, how the run ended."""

    name: str
    streams: List[StreamReport]
    duration_s: float
    detections: Dict[str, int] = field(default_factory=dict)
    stopped: bool = False  # stopped by a signal rather than by the sources ending
    bytes_copied: int = 0
    error: Optional[str] = None

    @property
    def frames_out(self) -> int:
        return sum(s.frames_out for s in self.streams)

    @property
    def fps(self) -> float:
        return self.frames_out / self.duration_s if self.duration_s > 0 else 0.0

    @classmethod
    def from_metrics(cls, name: str, metrics: Metrics, sources: Sequence[str], duration_s: float,
                     stopped: bool = False, bytes_copied: int = 0) -> "RunReport":
        snap = metrics.snapshot()
        streams = []
        for src in sources:
            out = int(snap.counter(FRAMES_OUT, source=src))
            streams.append(StreamReport(src, int(snap.counter(FRAMES_IN, source=src)), out,
                                        int(snap.counter(FRAMES_DROPPED, source=src)),
                                        out / duration_s if duration_s > 0 else 0.0))
        dets: Dict[str, int] = {}
        for labels, value in snap.counters.get(DETECTIONS, {}).items():
            label = dict(labels).get("label", "?")
            dets[label] = dets.get(label, 0) + int(value)
        return cls(name, streams, duration_s, dets, stopped, bytes_copied)

    def summary_line(self) -> str:
        head = "%s: %d frames in %.1fs (%.1f fps)" % (self.name, self.frames_out, self.duration_s,
                                                       self.fps)
        streams = ", ".join("%s %d/%d%s" % (s.name, s.frames_out, s.frames_in,
                                            (" (%d dropped)" % s.frames_dropped)
                                            if s.frames_dropped else "")
                            for s in self.streams)
        ranked = sorted(self.detections.items(), key=lambda kv: (-kv[1], kv[0]))
        dets = ", ".join("%s %d" % kv for kv in ranked) if ranked else "no detections"
        tail = " | stopped by signal" if self.stopped else ""
        return "%s | %s | %s%s" % (head, streams, dets, tail)

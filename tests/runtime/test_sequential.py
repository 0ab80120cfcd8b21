"""The sequential executor with real sources and sinks and test-only stages (``t-seq-*``)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np
import pytest

from edgert.batch import Batch, Detections
from edgert.config.loader import loads_pipeline
from edgert.errors import RuntimeFailure
from edgert.runtime.graph import build_graph
from edgert.runtime.metrics import Metrics
from edgert.runtime.report import RunReport
from edgert.runtime.sequential import SequentialExecutor
from edgert.stage import STAGES, Stage, StageConfig
from tests.media import street_frames, write_clip

SEEN: List[List[str]] = []


class _MarkConfig(StageConfig):
    fail_at: int = -1
    stop_after: int = -1


@STAGES.register("t-seq-mark")
class _Mark(Stage):
    """Records batch composition; marks one 'person' per frame; can fail or request a stop."""

    Config = _MarkConfig
    executor: Optional[SequentialExecutor] = None

    def process(self, batch: Batch) -> Batch:
        SEEN.append(["%s:%d" % (batch.source_name(i), batch.frame_index[i])
                     for i in range(len(batch))])
        done = sum(len(b) for b in SEEN)
        if self.config.fail_at >= 0 and done > self.config.fail_at:  # type: ignore[attr-defined]
            raise ZeroDivisionError("boom")
        if 0 <= self.config.stop_after <= done and _Mark.executor is not None:  # type: ignore[attr-defined]
            _Mark.executor.request_stop()
        n = len(batch)
        batch.detections = Detections(np.tile([[0, 0, 5, 5]], (n, 1)).astype(np.float32),
                                      np.ones(n, np.float32), np.zeros(n, np.int32),
                                      np.arange(n, dtype=np.int32))
        batch.labels = ["person"]
        return batch


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("clips")
    frames = street_frames(5)
    write_clip(d / "a.mp4", frames)
    write_clip(d / "b.mp4", frames[:3])
    return d


def _pipeline(folder: Path, extra: str = "", sources: str = "a b") -> object:
    srcs = "".join("  - {name: %s, uri: 'file://%s.mp4'}\n" % (s, s) for s in sources.split())
    text = ("sources:\n" + srcs + "stages:\n  - {name: mark, kind: t-seq-mark%s}\n"
            "sinks:\n  - {kind: jsonl, input: mark, path: '%s/out.jsonl'}\n" % (extra, folder))
    return loads_pipeline(text, folder / "p.yaml")


def test_round_robin_counts_and_report(clips: Path) -> None:
    SEEN.clear()
    metrics = Metrics()
    report = SequentialExecutor(_pipeline(clips), metrics=metrics,  # type: ignore[arg-type]
                                handle_signals=False).run()
    flat = [x for b in SEEN for x in b]
    assert flat == ["a:0", "b:0", "a:1", "b:1", "a:2", "b:2", "a:3", "a:4"]
    assert [(s.name, s.frames_in, s.frames_out) for s in report.streams] == [("a", 5, 5),
                                                                            ("b", 3, 3)]
    assert report.detections == {"person": 8} and not report.stopped
    assert len((clips / "out.jsonl").read_text().splitlines()) == 8
    line = report.summary_line()
    assert "8 frames" in line and "a 5/5, b 3/3" in line and "person 8" in line
    assert metrics.snapshot().counter("edgert_frames_out_total", source="a") == 5


@pytest.mark.parametrize("max_frames, expected", [(1, (1, 1)), (2, (2, 2)), (4, (4, 3)),
                                                  (100, (5, 3))])
def test_max_frames_is_exact_per_source(clips: Path, max_frames: int, expected: tuple) -> None:
    report = SequentialExecutor(_pipeline(clips), max_frames=max_frames,  # type: ignore[arg-type]
                                handle_signals=False).run()
    assert tuple(s.frames_out for s in report.streams) == expected


def test_stage_exception_is_one_line_naming_the_stage(clips: Path) -> None:
    SEEN.clear()
    with pytest.raises(RuntimeFailure) as err:
        SequentialExecutor(_pipeline(clips, ", fail_at: 3"),  # type: ignore[arg-type]
                           handle_signals=False).run()
    assert str(err.value) == "stage 'mark' failed: ZeroDivisionError: boom"
    # the sink was still closed: every line written so far is complete
    text = (clips / "out.jsonl").read_text()
    assert text.endswith("\n") and len(text.splitlines()) == 3


def test_request_stop_finishes_in_flight_work(clips: Path) -> None:
    SEEN.clear()
    ex = SequentialExecutor(_pipeline(clips, ", stop_after: 3"),  # type: ignore[arg-type]
                            handle_signals=False)
    _Mark.executor = ex
    try:
        report = ex.run()
    finally:
        _Mark.executor = None
    assert report.stopped and "stopped by signal" in report.summary_line()
    assert report.frames_out == 3 == sum(s.frames_in for s in report.streams)


def test_graph_orders_stages_and_finds_batch(tmp_path: Path) -> None:
    from tests.media import tiny_model

    tiny_model(tmp_path / "m.onnx")
    (tmp_path / "a.mp4").write_bytes(b"")
    cfg = loads_pipeline(
        "sources: [{name: a, uri: 'file://a.mp4'}]\n"
        "models: {m: {onnx: m.onnx, batch: 3, device: cpu}}\n"
        "stages:\n"
        "  - {name: inf, kind: infer, model: m, input: pre}\n"
        "  - {name: pre, kind: resize, size: [8, 8]}\n", tmp_path / "p.yaml")
    graph = build_graph(cfg)
    assert [s.name for s in graph.stages] == ["pre", "inf"]
    assert graph.infer_stage == "inf" and graph.batch_size == 3
    assert graph.engines.get("m") is graph.engines.get("m")  # one engine per model


def test_report_summary_without_detections() -> None:
    m = Metrics()
    m.inc("edgert_frames_in_total", 4, source="s")
    m.inc("edgert_frames_out_total", 3, source="s")
    m.inc("edgert_frames_dropped_total", 1, source="s")
    r = RunReport.from_metrics("p", m, ["s"], 2.0)
    assert r.summary_line() == "p: 3 frames in 2.0s (1.5 fps) | s 3/4 (1 dropped) | no detections"

"""The threaded core on real media: file sources, letterbox, ONNX Runtime, jsonl/video sinks."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgert.config.loader import loads_pipeline
from edgert.runtime.executor import ThreadedExecutor
from edgert.runtime.metrics import Metrics
from tests.media import street_frames, tiny_model, write_clip

LENGTHS = {"a": 3, "b": 8, "c": 5}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("threaded")
    frames = street_frames(max(LENGTHS.values()), start=40)
    for name, n in LENGTHS.items():
        write_clip(d / ("%s.mp4" % name), frames[:n])
    tiny_model(d / "tiny.onnx")
    return d


def _yaml(folder: Path, out: Path, batch: int, instances: str) -> str:
    srcs = "".join("  - {name: %s, uri: 'file://%s.mp4'}\n" % (n, n) for n in LENGTHS)
    return """
sources:
%smodels:
  m: {onnx: tiny.onnx, backend: onnxruntime, device: cpu, batch: %d, instances: [%s]}
stages:
  - {name: pre, kind: letterbox, input: sources, size: [8, 8]}
  - {name: infer, kind: infer, model: m, input: pre}
sinks:
  - {kind: jsonl, input: infer, path: '%s/d.jsonl'}
""" % (srcs, batch, instances, out)


@pytest.mark.parametrize("batch,instances", [(1, "cpu"), (2, "cpu, cpu")])
def test_three_files_of_different_lengths_run_to_completion(media: Path, tmp_path: Path,
                                                            batch: int, instances: str) -> None:
    cfg = loads_pipeline(_yaml(media, tmp_path, batch, instances), media / "p.yaml")
    metrics = Metrics()
    report = ThreadedExecutor(cfg, metrics=metrics, handle_signals=False).run()
    assert {s.name: (s.frames_in, s.frames_out, s.frames_dropped) for s in report.streams} == \
        {n: (k, k, 0) for n, k in LENGTHS.items()}
    assert report.bytes_copied == 0 and report.buffer_allocs == 0  # letterbox wrote in place
    assert report.instances == [d.strip() for d in instances.split(",")]
    rows = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    for name, n in LENGTHS.items():
        assert [r["frame"] for r in rows if r["source"] == name] == list(range(n))
    snap = metrics.snapshot()
    for name, n in LENGTHS.items():
        assert snap.counter("edgert_frames_in_total", source=name) == n
        assert snap.counter("edgert_frames_out_total", source=name) == n
        assert snap.gauge("edgert_queue_depth", source=name) == 0
        assert snap.histogram("edgert_e2e_latency_seconds", source=name).count == n
    for stage in ("pre", "infer", "jsonl"):
        assert snap.histogram("edgert_stage_latency_seconds", stage=stage).count > 0

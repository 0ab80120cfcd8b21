"""edgert bench on test doubles: every documented key, sane relations, the null sink."""
from __future__ import annotations

import pytest

from edgert.errors import UsageError
from edgert.runtime.bench import Bench, BenchOptions, replay_source
from tests.runtime.doubles import RECORDS, fake_factory, pipeline

KEYS = {"streams", "batch", "frames", "raw_fps", "pipeline_fps", "naive_fps", "ratio_raw",
        "ratio_naive", "latency_ms", "bytes_copied_per_frame", "allocs_per_frame",
        "peak_rss_mb", "platform"}


def test_bench_json_has_every_key_on_a_tiny_run() -> None:
    RECORDS.clear()
    cfg = pipeline(["name: a, uri: 'test://a', frames: 9"], batch=2)
    result = Bench(cfg, BenchOptions(streams=2, frames=12), fake_factory(sleep_s=0.001)).run()
    assert KEYS <= set(result)
    assert set(result["heap"]) == {"transient_kb_per_batch", "retained_kb_per_batch"}
    assert (result["streams"], result["batch"], result["frames"]) == (2, 2, 12)
    assert set(result["latency_ms"]) == {"p50", "p99"}
    assert set(result["platform"]) >= {"power_mode", "backend", "device"}
    assert result["platform"]["backend"] == "fake"
    assert result["ratio_raw"] == pytest.approx(result["pipeline_fps"] / result["raw_fps"])
    assert result["ratio_naive"] == pytest.approx(result["pipeline_fps"] / result["naive_fps"])
    assert result["bytes_copied_per_frame"] == 0 and result["allocs_per_frame"] == 0
    assert result["frames_dropped"] == 0  # file semantics: nothing lost in the pipeline run
    assert "overload" in result and result["overload"]["latency_ms"]["p99"] is not None
    assert "out" not in RECORDS  # the pipeline's sink was replaced by the null sink
    assert set(result["cpu"]) == {"raw_fps", "pipeline_fps", "naive_fps", "ratio_raw",
                                  "ratio_naive"}


def test_with_sinks_keeps_the_pipeline_sinks() -> None:
    RECORDS.clear()
    cfg = pipeline(["name: a, uri: 'test://a', frames: 5"], batch=2)
    Bench(cfg, BenchOptions(streams=3, frames=5, with_sinks=True, overload=False),
          fake_factory()).run()
    assert len(RECORDS["out"]) == 15


def test_replay_source_loops_its_frames_and_paces_live() -> None:
    import numpy as np

    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(3)]
    src = replay_source("r", frames, count=7, live=True, fps=1000.0)
    src.open()
    got = []
    while True:
        fr = src.read()
        if fr is None:
            break
        got.append((fr.index, int(fr.image[0, 0, 0])))
    assert got == [(i, i % 3) for i in range(7)] and src.live


@pytest.mark.parametrize("field", ["streams", "frames", "repeats"])
def test_bad_counts_are_usage_errors(field: str) -> None:
    cfg = pipeline(["name: a, uri: 'test://a'"])
    with pytest.raises(UsageError, match="at least 1"):
        Bench(cfg, BenchOptions(**{field: 0}), fake_factory())


def test_cli_plot_writes_a_png(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The --plot path (sweep 1..K streams, matplotlib) on test doubles."""
    import argparse

    from edgert.cli import bench as cli_bench

    cfg = pipeline(["name: a, uri: 'test://a', frames: 4"], batch=2)
    monkeypatch.setattr(cli_bench, "load_pipeline_from_args", lambda args: cfg)
    import edgert.runtime.bench as rb

    real = rb.Bench

    def fake_bench(cfg, opts):  # type: ignore[no-untyped-def]
        return real(cfg, opts, fake_factory())

    monkeypatch.setattr(rb, "Bench", fake_bench)
    args = argparse.Namespace(pipeline="x.yaml", overrides=[], streams=2, frames=4, repeats=1,
                              with_sinks=False, overload=False, batch=None,
                              json=tmp_path / "b.json", plot=tmp_path / "b.png")
    assert cli_bench.run(args) == 0
    import json

    data = json.loads((tmp_path / "b.json").read_text())
    assert [r["streams"] for r in data["sweep"]] == [1, 2]
    assert (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

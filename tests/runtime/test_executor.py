"""ThreadedExecutor end to end on test doubles: order, counts, accounting, failures."""
from __future__ import annotations

import threading
from typing import Dict, List

import pytest

from edgert.runtime.executor import ThreadedExecutor
from edgert.runtime.report import RunReport
from edgert.runtime.metrics import Metrics
from tests.runtime import doubles
from tests.runtime.doubles import RECORDS, FakeEngine, fake_factory, pipeline


@pytest.fixture(autouse=True)
def _clear() -> None:
    RECORDS.clear()


def _run(cfg, **kw) -> RunReport:  # type: ignore[no-untyped-def]
    kw.setdefault("engine_factory", fake_factory())
    kw.setdefault("handle_signals", False)
    return ThreadedExecutor(cfg, **kw).run_report()


def _by_stream(rows: List[tuple]) -> Dict[str, List[int]]:
    out: Dict[str, List[int]] = {}
    for name, idx, _score, _dev in rows:
        out.setdefault(name, []).append(idx)
    return out


def _accounted(summary: RunReport, metrics: Metrics) -> None:
    snap = metrics.snapshot()
    for s in summary.streams:
        assert s.frames_in == s.frames_out + s.frames_dropped, s
        assert snap.counter("edgert_frames_in_total", source=s.name) == s.frames_in
        assert snap.counter("edgert_frames_out_total", source=s.name) == s.frames_out
        assert snap.counter("edgert_frames_dropped_total", source=s.name) == s.frames_dropped


@pytest.mark.parametrize("batch,instances", [(1, ""), (4, ""), (3, "cpu, cpu, cpu")])
def test_three_files_of_different_lengths_complete_in_order(batch: int, instances: str) -> None:
    lengths = {"a": 7, "b": 23, "c": 41}
    cfg = pipeline(["name: %s, uri: 'test://%s', frames: %d" % (n, n, k)
                    for n, k in lengths.items()], batch=batch, instances=instances)
    metrics = Metrics()
    summary = _run(cfg, metrics=metrics)
    assert summary.error is None
    got = _by_stream(RECORDS["out"])
    assert got == {n: list(range(k)) for n, k in lengths.items()}  # all frames, in order
    for name, idx, score, _dev in RECORDS["out"]:
        assert score == pytest.approx(idx % 251)  # each frame's own pixels reached the sink
    assert {s.name: (s.frames_in, s.frames_out, s.frames_dropped) for s in summary.streams} == \
        {n: (k, k, 0) for n, k in lengths.items()}
    _accounted(summary, metrics)
    assert summary.bytes_copied == 0  # preprocess wrote into the engine's own input memory
    assert summary.latency_ms["p99"] is not None
    assert {"pre", "infer", "det", "out"} <= set(summary.stage_ms)


def test_batches_spread_over_instances() -> None:
    created: List[FakeEngine] = []
    cfg = pipeline(["name: a, uri: 'test://a', frames: 60"], batch=2, instances="cpu, cpu")
    summary = _run(cfg, engine_factory=fake_factory(sleep_s=0.004, created=created))
    assert summary.error is None and summary.instances == ["cpu", "cpu"]
    assert len(created) == 2 and all(e.runs > 0 for e in created)
    assert sum(e.runs for e in created) == 30
    assert _by_stream(RECORDS["out"]) == {"a": list(range(60))}


def test_failing_source_does_not_stop_the_others() -> None:
    cfg = pipeline(["name: good, uri: 'test://g', frames: 30, delay_ms: 1",
                    "name: dies, uri: 'test://d', frames: 30, fail_at: 5",
                    "name: never, uri: 'test://n', fail_open: true, live: true"])
    metrics = Metrics()
    summary = _run(cfg, metrics=metrics)
    assert summary.error is None
    by = {s.name: s for s in summary.streams}
    errors = summary.source_errors
    assert by["good"].frames_out == 30 and "good" not in errors
    assert by["dies"].frames_in == 5 and by["dies"].frames_out == 5
    assert errors["dies"] == "source 'dies' failed: camera dies went away"
    assert by["never"].frames_in == 0 and "cannot open" in errors["never"]
    _accounted(summary, metrics)


def test_stage_exception_stops_everything_and_is_reported_once(caplog) -> None:  # type: ignore[no-untyped-def]
    cfg = pipeline(["name: a, uri: 'test://a', frames: 500, loop: true",
                    "name: b, uri: 'test://b', frames: 500"], post=", fail_at_frame: 20")
    metrics = Metrics()
    summary = _run(cfg, metrics=metrics)
    assert summary.error is not None
    assert summary.error.startswith("stage 'det' failed: ValueError: decoder exploded")
    assert "\n" not in summary.error
    assert not [r for r in caplog.records if r.levelname == "ERROR"]  # the caller reports it
    assert sum(s.frames_out for s in summary.streams) < 1000
    _accounted(summary, metrics)


def test_sink_exception_names_the_sink() -> None:
    cfg = pipeline(["name: a, uri: 'test://a', frames: 10"])
    from edgert.stage import Sink

    class Broken(Sink):
        def write(self, batch):  # type: ignore[no-untyped-def]
            raise OSError("disk full")

    from edgert.stage import SinkConfig, StageContext

    sink = Broken(SinkConfig(kind="broken", name="archive", input="det"), StageContext(cfg))
    summary = _run(cfg, sinks=[sink])
    assert summary.error == "sink 'archive' failed: OSError: disk full"


def test_drop_oldest_accounting_under_overload() -> None:
    # sources produce far faster than the engine (10 ms per batch of 2): frames must be
    # dropped, never queued without bound, and every frame accounted for.
    cfg = pipeline(["name: cam%d, uri: 'test://c%d', frames: 300, live: true" % (i, i)
                    for i in range(3)], batch=2,
                   runtime="queue_depth: 2, drop_policy: drop_oldest, batch_timeout_ms: 1")
    metrics = Metrics()
    summary = _run(cfg, metrics=metrics, engine_factory=fake_factory(sleep_s=0.01))
    assert summary.error is None
    _accounted(summary, metrics)
    assert sum(s.frames_dropped for s in summary.streams) > 0
    for name, idxs in _by_stream(RECORDS["out"]).items():
        assert idxs == sorted(idxs) and len(set(idxs)) == len(idxs)  # order kept, gaps allowed
    for s in summary.streams:
        assert s.frames_in == 300


def test_block_policy_loses_nothing_with_slow_engine() -> None:
    cfg = pipeline(["name: a, uri: 'test://a', frames: 40", "name: b, uri: 'test://b', frames: 40"],
                   batch=2, runtime="queue_depth: 1, drop_policy: block")
    summary = _run(cfg, engine_factory=fake_factory(sleep_s=0.002))
    assert [(s.frames_out, s.frames_dropped) for s in summary.streams] == [(40, 0), (40, 0)]


def test_request_stop_drains_and_flushes() -> None:
    cfg = pipeline(["name: a, uri: 'test://a', frames: 100000, delay_ms: 1"])
    metrics = Metrics()
    ex = ThreadedExecutor(cfg, metrics=metrics, engine_factory=fake_factory(),
                          handle_signals=False)
    timer = threading.Timer(0.3, ex.request_stop)
    timer.start()
    summary = ex.run()  # a stop is not a failure: no exception
    timer.join()
    assert summary.error is None and summary.stopped
    s = summary.streams[0]
    assert 0 < s.frames_out == s.frames_in and s.frames_dropped == 0  # drained, nothing lost
    assert _by_stream(RECORDS["out"])["a"] == list(range(s.frames_out))


def test_sources_are_closed_and_sinks_stopped_once() -> None:
    cfg = pipeline(["name: a, uri: 'test://a', frames: 5"])
    from edgert.runtime.build import make_sources

    sources = make_sources(cfg)
    _run(cfg, sources=sources)
    assert all(isinstance(s, doubles.TestSource) and s.closed >= 1 for s in sources)


def test_an_unreadable_file_source_fails_the_run_before_it_starts() -> None:
    from edgert.errors import RuntimeFailure

    cfg = pipeline(["name: a, uri: 'test://a', frames: 5",
                    "name: b, uri: 'test://b', fail_open: true"])
    with pytest.raises(RuntimeFailure, match="cannot open test://b"):
        _run(cfg)
    assert "out" not in RECORDS or RECORDS["out"] == []


def test_every_source_failing_is_an_error() -> None:
    cfg = pipeline(["name: x, uri: 'test://x', fail_open: true, live: true",
                    "name: y, uri: 'test://y', fail_at: 0"])
    summary = _run(cfg)
    assert summary.error is not None and summary.error.startswith("every source failed")


def test_a_stage_that_cannot_start_is_one_runtime_failure() -> None:
    from edgert.errors import RuntimeFailure

    cfg = pipeline(["name: a, uri: 'test://a'"])

    def broken(name, model, device, base_dir):  # type: ignore[no-untyped-def]
        raise RuntimeFailure("model file is corrupt")

    with pytest.raises(RuntimeFailure, match="corrupt"):
        _run(cfg, engine_factory=broken)


def test_run_raises_the_stage_failure_once_as_one_line() -> None:
    from edgert.errors import RuntimeFailure

    cfg = pipeline(["name: a, uri: 'test://a', frames: 50"], post=", fail_at_frame: 3")
    with pytest.raises(RuntimeFailure) as info:
        ThreadedExecutor(cfg, engine_factory=fake_factory(), handle_signals=False).run()
    assert str(info.value) == "stage 'det' failed: ValueError: decoder exploded on frame 3"


@pytest.mark.parametrize("limit", [1, 7])
def test_max_frames_caps_every_stream(limit: int) -> None:
    cfg = pipeline(["name: a, uri: 'test://a', frames: 20", "name: b, uri: 'test://b', frames: 3"])
    report = _run(cfg, max_frames=limit)
    assert [s.frames_out for s in report.streams] == [limit, min(3, limit)]


def test_detections_are_counted_by_label() -> None:
    cfg = pipeline(["name: a, uri: 'test://a', frames: 6"], batch=2)
    report = _run(cfg)
    assert report.detections == {"0": 6}  # one class-0 detection per frame from test-post
    assert "a 6/6" in report.summary_line()


def test_observer_hooks_for_the_watchdog() -> None:
    from edgert.runtime.observer import RunObserver

    class Rec(RunObserver):
        def __init__(self) -> None:
            self.calls: List[tuple] = []

        def on_start(self, lanes: int = 1) -> None:
            self.calls.append(("start", lanes))

        def on_ready(self) -> None:
            self.calls.append(("ready",))

        def on_batch_done(self, frames: int, lane: int = 0) -> None:
            self.calls.append(("batch", frames, lane))

        def on_stop(self, reason: str = "") -> None:
            self.calls.append(("stop", reason))

    rec = Rec()
    cfg = pipeline(["name: a, uri: 'test://a', frames: 6"], batch=2, instances="cpu, cpu")
    _run(cfg, observer=rec)
    assert rec.calls[0] == ("start", 2) and rec.calls[-1] == ("stop", "streams ended")
    assert rec.calls.count(("ready",)) == 1
    assert sum(c[1] for c in rec.calls if c[0] == "batch") == 6

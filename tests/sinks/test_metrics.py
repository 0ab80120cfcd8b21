"""The Prometheus exporter, scraped over HTTP and parsed with prometheus-client's parser."""
from __future__ import annotations

import socket
import threading
import urllib.request
from typing import Any, Dict, List

import pytest

from edgert.config.schema import PipelineConfig, RuntimeConfig
from edgert.errors import RuntimeFailure
from edgert.runtime.metrics import Metrics
from edgert.sinks.metrics import (
    MetricsExporter,
    MetricsSink,
    MetricsSinkConfig,
    runtime_exporter_port,
)
from edgert.sources.base import SourceConfig
from edgert.stage import SinkConfig, StageContext
from tests.sinks.helpers import make_batch

parser = pytest.importorskip("prometheus_client.parser")


def scrape(port: int) -> Dict[str, Any]:
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as resp:
        text = resp.read().decode()
    return {f.name: f for f in parser.text_string_to_metric_families(text)}


def sample(families: Dict[str, Any], family: str, name: str, **labels: str) -> float:
    for s in families[family].samples:
        if s.name == name and s.labels == labels:
            return float(s.value)
    raise KeyError("%s%s not in %s" % (name, labels, [x for x in families[family].samples]))


def pipeline(metrics_port: Any = None, sinks: Any = ()) -> PipelineConfig:
    return PipelineConfig(sources=[SourceConfig(name="north", uri="rtsp://h/s")],
                          sinks=list(sinks), runtime=RuntimeConfig(metrics_port=metrics_port))


def test_scrape_during_a_run_maps_every_type() -> None:
    metrics = Metrics()
    metrics.describe("edgert_frames_in_total", "frames read from the source")
    sink = MetricsSink(MetricsSinkConfig(kind="metrics", input="det", port=0, host="127.0.0.1"),
                       StageContext(pipeline()))
    sink.bind_metrics(metrics)
    sink.start()
    stop = threading.Event()

    def run() -> None:  # a stand-in for the runtime's writes, concurrent with scrapes
        while not stop.is_set():
            metrics.inc("edgert_frames_in_total", source="north")
            metrics.observe("edgert_stage_latency_seconds", 0.003, stage="infer")
            stop.wait(0.001)

    writer = threading.Thread(target=run)
    writer.start()
    try:
        metrics.set("edgert_source_up", 1, source="north")
        metrics.set("edgert_engine_info", 1, model="detector", device="dla:0",
                    backend="tensorrt", precision="int8")
        metrics.set("edgert_platform_gpu_load_percent", 37.5)
        sink.write(make_batch([1, 2, 4]))  # serving only: counts come from the executor
        seen: List[float] = []
        for _ in range(3):
            fams = scrape(sink.port)
            seen.append(sample(fams, "edgert_frames_in", "edgert_frames_in_total",
                               source="north"))
    finally:
        stop.set()
        writer.join()
    assert seen == sorted(seen) and seen[0] > 0  # a counter never goes backwards
    final = scrape(sink.port)
    sink.stop()
    assert final["edgert_frames_in"].type == "counter"
    assert final["edgert_frames_in"].documentation == "frames read from the source"
    assert sample(final, "edgert_source_up", "edgert_source_up", source="north") == 1.0
    assert sample(final, "edgert_engine_info", "edgert_engine_info", model="detector",
                  device="dla:0", backend="tensorrt", precision="int8") == 1.0
    assert sample(final, "edgert_platform_gpu_load_percent",
                  "edgert_platform_gpu_load_percent") == 37.5
    hist = final["edgert_stage_latency_seconds"]
    assert hist.type == "histogram"
    count = sample(final, "edgert_stage_latency_seconds", "edgert_stage_latency_seconds_count",
                   stage="infer")
    assert sample(final, "edgert_stage_latency_seconds", "edgert_stage_latency_seconds_bucket",
                  stage="infer", le="+Inf") == count
    assert sample(final, "edgert_stage_latency_seconds", "edgert_stage_latency_seconds_bucket",
                  stage="infer", le="0.001") == 0.0
    assert sample(final, "edgert_stage_latency_seconds", "edgert_stage_latency_seconds_bucket",
                  stage="infer", le="0.005") == count
    assert "edgert_detections" not in final
    assert "process_resident_memory_bytes" in final


def test_port_in_use_is_one_line_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        with pytest.raises(RuntimeFailure, match=r"^metrics: cannot serve on 127\.0\.0\.1:%d: "
                           % port):
            MetricsExporter(Metrics(), port, "127.0.0.1").start()


@pytest.mark.parametrize("port, sinks, expected", [
    (None, (), None),
    (9108, (), 9108),
    (9108, (SinkConfig(kind="metrics", input="det"),), None),
])
def test_runtime_exporter_port(port: Any, sinks: Any, expected: Any) -> None:
    assert runtime_exporter_port(pipeline(port, sinks)) == expected

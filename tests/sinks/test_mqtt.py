"""The mqtt sink against a real Mosquitto broker that is stopped and restarted."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from edgert.config.schema import PipelineConfig
from edgert.runtime.metrics import Metrics
from edgert.sinks.mqtt import MqttConfig, MqttSink
from edgert.sources.base import SourceConfig
from edgert.stage import StageContext
from tests.servers import Server, free_port, mosquitto, mosquitto_path, need, tls_broker_files
from tests.sinks.helpers import expected_record, make_batch

mqtt = pytest.importorskip("paho.mqtt.client")


class Subscriber:
    """A persistent-session QoS 1 subscriber: the broker queues for it while it is away."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: List[Tuple[str, Dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="edgert-test-sub",
                                  clean_session=False)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *a: c.subscribe("edgert/+/detections", qos=1)
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.reconnect_delay_set(1, 1)

    def start(self) -> "Subscriber":
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "subscriber got no SUBACK"
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._lock:
            self.messages.append((msg.topic, json.loads(msg.payload)))

    def unique(self) -> Dict[Tuple[str, int], Tuple[str, Dict[str, Any]]]:
        with self._lock:  # QoS 1 is at-least-once: a resend after a reconnect may repeat
            return {(m["source"], m["frame"]): (t, m) for t, m in self.messages}

    def wait_for(self, n: int, timeout: float = 15.0) -> None:
        end = time.monotonic() + timeout
        while len(self.unique()) < n and time.monotonic() < end:
            time.sleep(0.05)


@pytest.fixture()
def broker(tmp_path: Path) -> Server:
    need(mosquitto_path() is not None, "mosquitto (apt-get install mosquitto)")
    server = mosquitto(free_port(), tmp_path / "broker")
    yield server
    server.stop()


def make_sink(port: int, metrics: Metrics, **kw: Any) -> MqttSink:
    cfg = MqttConfig(kind="mqtt", input="det", host="127.0.0.1", port=port, qos=1,
                     reconnect_initial_s=0.1, reconnect_max_s=0.5, **kw)
    pipe = PipelineConfig(sources=[SourceConfig(name="north", uri="rtsp://x/y")])
    sink = MqttSink(cfg, StageContext(pipe))
    sink.bind_metrics(metrics)
    return sink


def write_frames(sink: MqttSink, frames: range) -> None:
    for f in range(frames.start, frames.stop, 2):
        sink.write(make_batch([f, f + 1]))


def test_every_frame_delivered_across_a_broker_restart(broker: Server) -> None:
    broker.start()
    sub = Subscriber(broker.port).start()
    metrics = Metrics()
    sink = make_sink(broker.port, metrics)
    sink.start()
    try:
        write_frames(sink, range(0, 20))
        sub.wait_for(20)
        got = sub.unique()
        assert len(got) == 20
        topic, msg = got[("north", 7)]
        assert topic == "edgert/north/detections" and msg == expected_record(7)
        broker.stop()  # the broker goes away mid-run (saves sessions) ...
        write_frames(sink, range(20, 40))
        broker.start()  # ... and comes back
        write_frames(sink, range(40, 60))
    finally:
        sink.stop()
    stats = sink.stats()
    assert stats["messages"] == 60
    assert stats["acked"] + stats["dropped"] == 60
    assert stats["reconnects"] >= 1
    sub.wait_for(stats["acked"])
    sub.stop()
    got = sub.unique()
    assert len(got) == stats["acked"]
    assert all(m == expected_record(f) for (_, f), (_, m) in got.items())
    snap = metrics.snapshot()
    assert snap.counter("edgert_sink_acked_total", sink="mqtt") == stats["acked"]
    assert snap.counter("edgert_sink_dropped_total", sink="mqtt") == stats["dropped"]


def test_full_buffer_drops_oldest_and_counts_them(broker: Server) -> None:
    broker.start()
    Subscriber(broker.port).start().stop()  # a persistent session the broker queues for
    broker.stop()
    metrics = Metrics()
    sink = make_sink(broker.port, metrics, buffer_size=5, only_detections=True)
    sink.start()
    try:
        write_frames(sink, range(0, 18))  # broker down: 12 frames have boxes, 7 overflow
        assert sink.stats()["dropped"] == 7
        broker.start()  # stop() below waits for the buffered messages to be acknowledged
    finally:
        sink.stop()
    stats = sink.stats()
    assert (stats["messages"], stats["acked"], stats["dropped"]) == (12, 5, 7)
    sub = Subscriber(broker.port).start()
    sub.wait_for(5)
    sub.stop()
    newest = [f for f in range(18) if f % 3][-5:]
    assert sorted(f for _, f in sub.unique()) == newest


@pytest.mark.parametrize("kw, fragment", [
    ({"qos": 2}, "qos must be 0 or 1"),
    ({"topic": "edgert/{camera}"}, "unknown: {camera}"),
    ({"topic": "edgert/#"}, "wildcard"),
    ({"password": "x"}, "username is not"),
])
def test_config_errors(kw: Dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        MqttConfig(kind="mqtt", input="det", **kw)


@pytest.mark.parametrize("password, acked", [("s3cret", 4), ("wrong", 0)])
def test_tls_and_password(tmp_path: Path, password: str, acked: int) -> None:
    import shutil

    need(mosquitto_path() is not None and shutil.which("openssl") is not None
         and shutil.which("mosquitto_passwd") is not None,
         "mosquitto, mosquitto_passwd and openssl")
    conf = tls_broker_files(tmp_path / "tls", "edge", "s3cret")
    port = free_port()
    with mosquitto(port, tmp_path / "broker", conf):
        sink = make_sink(port, Metrics(), username="edge", password=password,
                         tls={"ca_certs": str(tmp_path / "tls" / "ca.pem")}, flush_timeout_s=1)
        sink.start()
        write_frames(sink, range(0, 4))
        sink.stop()
    stats = sink.stats()
    assert (stats["acked"], stats["dropped"]) == (acked, 4 - acked)  # refused: all counted


def test_edgert_run_publishes_exactly_the_jsonl_records(broker: Server, tmp_path: Path) -> None:
    """A real detector run: one message per processed frame, equal to its jsonl line."""
    import subprocess
    import sys

    import yaml

    demo_path = Path(__file__).resolve().parents[2] / "pipelines" / "demo.yaml"
    cfg = yaml.safe_load(demo_path.read_text())
    base = demo_path.parent
    for src in cfg["sources"]:  # the demo's paths are relative to its own folder
        src["uri"] = "file://" + str((base / src["uri"][len("file://"):]).resolve())
    for model in cfg["models"].values():
        for key in ("onnx", "labels"):
            if key in model:
                model[key] = str((base / model[key]).resolve())
    cfg["sinks"] = [{"kind": "jsonl", "input": "det", "path": "out/d.jsonl"},
                    {"kind": "mqtt", "input": "det", "host": "127.0.0.1", "port": broker.port,
                     "qos": 1}]
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(cfg))
    broker.start()
    sub = Subscriber(broker.port).start()
    run = subprocess.run([sys.executable, "-m", "edgert", "run", "p.yaml", "--max-frames", "8"],
                         cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(x) for x in (tmp_path / "out" / "d.jsonl").read_text().splitlines()]
    sub.wait_for(len(lines))
    sub.stop()
    got = sub.unique()
    assert len(lines) == 8 and sum(len(r["detections"]) for r in lines) > 0
    assert [got[("street", r["frame"])][1] for r in lines] == lines
    assert {t for t, _ in got.values()} == {"edgert/street/detections"}

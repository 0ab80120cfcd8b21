"""rtsp:// against a real RTSP server (gst-rtsp-server), killed and restarted mid-stream."""
from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import List

import pytest

from edgert.errors import RuntimeFailure
from edgert.runtime.metrics import Metrics
from edgert.sources.base import SOURCES
from edgert.sources.rtsp import RtspConfig, RtspSource
from tests.servers import free_port, need, rtsp_server, rtsp_server_available

pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def rtsp_ok() -> None:
    need(rtsp_server_available(), "GStreamer RTSP server (/usr/bin/python3 with python3-gi, "
         "gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-ugly)")


def make_source(port: int, **kw: object) -> RtspSource:
    opts = dict(name="cam", uri="rtsp://127.0.0.1:%d/test" % port, open_timeout_s=3,
                read_timeout_s=2, reconnect_initial_s=0.2, reconnect_max_s=1.0)
    opts.update(kw)
    return RtspSource(RtspConfig(**opts), Path("."))


def read_n(src: RtspSource, n: int) -> List[int]:
    out = []
    for _ in range(n):
        frame = src.read()
        assert frame is not None
        assert frame.image.shape == (120, 160, 3)
        out.append(frame.index)
    return out


def test_registered_schemes() -> None:
    assert SOURCES.get("rtsp") is RtspSource and SOURCES.get("rtsps") is RtspSource


def test_reconnects_after_server_killed_and_restarted(rtsp_ok: None, caplog) -> None:
    caplog.set_level(logging.INFO, logger="edgert.sources.live")
    port = free_port()
    server = rtsp_server(port).start()
    metrics = Metrics()
    src = make_source(port)
    src.bind_metrics(metrics)
    try:
        src.open()
        before = read_n(src, 10)
        server.stop(signal.SIGKILL)  # the camera vanishes mid-stream
        restart = threading.Timer(2.0, server.start)
        restart.start()
        after = []  # frames FFmpeg had buffered, the outage (blocks), the new connection
        while src.stats()["reconnects"] == 0 and len(after) < 500:
            after += read_n(src, 1)
        after += read_n(src, 10)
        restart.join()
    finally:
        src.close()
        server.stop(signal.SIGKILL)
    indices = before + after
    assert indices == list(range(len(indices))), "frame numbers continue across the reconnect"
    stats = src.stats()
    assert stats["reconnects"] == 1 and stats["outages"] == 1
    assert stats["frames_lost"] >= 1  # ~2 s at 15 fps were never read
    snap = metrics.snapshot()
    assert snap.counter("edgert_source_reconnects_total", source="cam") == 1
    assert snap.counter("edgert_source_frames_lost_total", source="cam") == stats["frames_lost"]
    assert snap.gauge("edgert_source_up", source="cam") == 0.0  # closed
    msgs = [r.getMessage() for r in caplog.records]
    assert sum("stream lost" in m for m in msgs) == 1, msgs  # one line per state change
    assert sum("stream up again" in m for m in msgs) == 1, msgs


def test_gives_up_after_limit(rtsp_ok: None) -> None:
    port = free_port()
    src = make_source(port, give_up_after_s=1.0)
    with rtsp_server(port) as server:
        src.open()
        read_n(src, 3)
        server.stop(signal.SIGKILL)
        while src.read() is not None:  # buffered frames, then the outage
            pass
    src.close()
    assert src.stats()["up"] is False


def test_waits_for_a_camera_that_is_not_up_yet(rtsp_ok: None) -> None:
    port = free_port()
    src = make_source(port, wait_for_first_open=True, open_timeout_s=1)
    server = rtsp_server(port)
    src.open()  # nothing listens yet: no error
    timer = threading.Timer(1.0, server.start)
    timer.start()
    try:
        assert read_n(src, 3) == [0, 1, 2]
        assert src.stats()["reconnects"] == 0  # the first connection is not a reconnect
    finally:
        timer.join()
        src.close()
        server.stop(signal.SIGKILL)


def test_unreachable_camera_is_one_line_error_without_password() -> None:
    port = free_port()
    src = RtspSource(RtspConfig(name="gate", uri="rtsp://admin:secret@127.0.0.1:%d/s" % port,
                                open_timeout_s=1), Path("."))
    with pytest.raises(RuntimeFailure) as err:
        src.open()
    msg = str(err.value)
    assert msg == "source 'gate': cannot open rtsp://admin:***@127.0.0.1:%d/s" % port
    assert "secret" not in msg and "\n" not in msg


@pytest.mark.parametrize("kw, fragment", [
    ({"transport": "http"}, "not an RTSP transport"),
    ({"reconnect_initial_s": 5, "reconnect_max_s": 1}, "reconnect_max_s"),
    ({"open_timeout_s": 0}, "greater than 0"),
])
def test_config_errors(kw: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        RtspConfig(name="c", uri="rtsp://h/s", **kw)


def test_close_from_another_thread_unblocks_reconnect(rtsp_ok: None) -> None:
    port = free_port()
    src = make_source(port, reconnect_initial_s=5.0, reconnect_max_s=5.0)
    with rtsp_server(port) as server:
        src.open()
        read_n(src, 2)
        server.stop(signal.SIGKILL)
        threading.Timer(0.5, src.close).start()
        t0 = time.monotonic()
        while src.read() is not None:
            pass
    assert time.monotonic() - t0 < 60  # returned at all (no hang): the backoff wait was cut


RUN_PIPELINE = """\
version: 1
sources:
  - {name: cam, uri: "rtsp://127.0.0.1:%d/test", reconnect_initial_s: 0.2, reconnect_max_s: 1,
     read_timeout_s: 2}
sinks:
  - {kind: jsonl, input: sources, path: out/cam.jsonl}
# block: this test is about losing nothing across a reconnect; under drop_oldest a
# loaded machine may (correctly, and counted) drop stale live frames
runtime: {metrics_port: %d, drop_policy: block}
"""


def test_edgert_run_survives_a_camera_restart(rtsp_ok: None, tmp_path: Path) -> None:
    """The whole product: `edgert run` keeps going through an outage, and every frame
    it read reaches the sink exactly once."""
    import json
    import subprocess
    import sys

    from tests.sinks.test_durability import frames_in, scrape

    def lines() -> List[dict]:
        path = tmp_path / "out" / "cam.jsonl"
        text = path.read_text() if path.exists() else ""
        return [json.loads(x) for x in text.splitlines()]

    def gauge(name: str) -> float:
        try:
            fam = scrape(mport).get(name.replace("_total", ""))
        except OSError:
            return -1.0
        return sum(s.value for s in fam.samples) if fam else -1.0

    def wait(cond) -> None:
        for _ in range(1200):  # polls; nothing about speed is asserted
            if cond():
                return
            assert proc.poll() is None, proc.communicate()[1]
            time.sleep(0.05)
        raise AssertionError("timed out")

    port, mport = free_port(), free_port()
    (tmp_path / "p.yaml").write_text(RUN_PIPELINE % (port, mport))
    server = rtsp_server(port).start()
    proc = subprocess.Popen([sys.executable, "-m", "edgert", "run", "p.yaml"], cwd=str(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait(lambda: len(lines()) >= 10)
        server.stop(signal.SIGKILL)
        wait(lambda: gauge("edgert_source_up") == 0.0)
        time.sleep(2.0)  # the camera stays away a while
        server.start()
        wait(lambda: gauge("edgert_source_reconnects_total") == 1.0)
        before = len(lines())
        wait(lambda: len(lines()) >= before + 10)
        read = frames_in(mport)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        server.stop(signal.SIGKILL)
    assert proc.returncode == 0, err
    frames = [r["frame"] for r in lines()]
    assert frames == list(range(len(frames)))  # nothing lost or repeated after the reconnect
    assert len(frames) >= read
    assert "cam %d/%d" % (len(frames), len(frames)) in out  # frames out == frames in
    assert "stream up again" in err and err.count("stream lost") == 1

"""The rtsp sink serving frames, read back by edgert's own rtsp:// source."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from edgert.batch import Batch
from edgert.config.schema import PipelineConfig
from edgert.sinks.rtsp import RtspSink, RtspSinkConfig, launch_line
from edgert.sources.base import SourceConfig
from edgert.sources.rtsp import RtspConfig, RtspSource
from edgert.stage import StageContext
from tests.servers import free_port, use_system_gi

pytest.importorskip("cv2")


def test_launch_line_for_the_jetson_encoder() -> None:
    cfg = RtspSinkConfig(kind="rtsp", input="det", encoder="nvv4l2h264enc", fps=30,
                         bitrate_kbps=4000)
    line = launch_line(cfg, 1280, 720)
    assert "width=1280,height=720,framerate=30000/1000" in line
    assert "nvv4l2h264enc bitrate=4000000 iframeinterval=30" in line


def test_serves_frames_to_an_rtsp_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_system_gi(tmp_path, monkeypatch)
    port = free_port()
    cfg = RtspSinkConfig(kind="rtsp", input="sources", host="127.0.0.1", port=port)
    pipe = PipelineConfig(sources=[SourceConfig(name="cam", uri="rtsp://x/y")])
    sink = RtspSink(cfg, StageContext(pipe))
    sink.start()
    stop = threading.Event()
    green = np.zeros((96, 128, 3), np.uint8)
    green[:, :, 1] = 200

    def feed() -> None:  # the pipeline writing frames, 25 per second
        f = 0
        while not stop.wait(0.04):
            sink.write(Batch.of_frames([green], [0], [f], [f / 25.0], [0.0], ["cam"]))
            f += 1

    feeder = threading.Thread(target=feed)
    feeder.start()
    for _ in range(400):  # the mount appears with the stream's first frame
        if sink.stats()["mounts"]:
            break
        stop.wait(0.02)
    client = RtspSource(RtspConfig(name="viewer", uri="rtsp://127.0.0.1:%d/cam" % port,
                                   open_timeout_s=10, reconnect=False), Path("."))
    try:
        client.open()
        frames = [client.read() for _ in range(5)]
    finally:
        client.close()
        stop.set()
        feeder.join()
        sink.stop()
    assert all(f is not None and f.image.shape == (96, 128, 3) for f in frames)
    mean = frames[-1].image.reshape(-1, 3).mean(axis=0)
    assert mean[1] > 150 and mean[0] < 60 and mean[2] < 60  # green survived H.264
    assert sink.stats()["frames_sent"] >= 5

from __future__ import annotations

import re
from pathlib import Path
from typing import List

import numpy as np
import pytest

from edgert.batch import Batch, Detections
from edgert.config.loader import loads_pipeline
from edgert.config.schema import PipelineConfig
from edgert.errors import ConfigError
from edgert.sinks.video import VideoSink, VideoSinkConfig
from edgert.stage import StageContext
from tests.media import count_frames, street_frames

CTX = StageContext(PipelineConfig.model_construct(sources=[]))


@pytest.fixture(scope="module")
def frames() -> List[np.ndarray]:
    return street_frames(7)


def _batches(frames: List[np.ndarray], fps: float) -> List[Batch]:
    out = []
    for i, f in enumerate(frames):
        b = Batch.of_frames([f], [0], [i], [i / fps], [0.0], ["street"])
        b.detections = Detections(np.array([[100, 50, 160, 200]], np.float32),
                                  np.array([0.9], np.float32), np.zeros(1, np.int32),
                                  np.zeros(1, np.int32))
        b.labels = ["person"]
        out.append(b)
    return out


@pytest.mark.parametrize("codec", ["auto", "h264", "mp4v", "mjpg"])
def test_writes_every_frame_at_the_source_rate(tmp_path: Path, frames: List[np.ndarray],
                                               codec: str) -> None:
    import cv2

    path = tmp_path / "v" / "{source}.mp4"
    sink = VideoSink(VideoSinkConfig(kind="video", input="det", path=str(path), codec=codec), CTX)
    sink.start()
    for b in _batches(frames, 12.5):
        sink.write(b)
    final = tmp_path / "v" / "street.mp4"
    assert not final.exists()  # written under a temp name until closed
    sink.stop()
    assert final.exists() and not list(final.parent.glob(".*partial*"))
    assert count_frames(final) == len(frames)
    cap = cv2.VideoCapture(str(final))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(12.5, rel=0.01)
    ok, first = cap.read()
    assert ok and first.shape == (360, 640, 3)
    # the box was drawn: its edge differs from the source frame there
    assert np.abs(first[50:200, 100].astype(int) - frames[0][50:200, 100].astype(int)).mean() > 20
    assert np.array_equal(frames[0], street_frames(1)[0])  # source frames untouched


def test_single_frame_stream_and_fps_override(tmp_path: Path, frames: List[np.ndarray]) -> None:
    import cv2

    sink = VideoSink(VideoSinkConfig(kind="video", input="d", path=str(tmp_path / "{source}.mp4"),
                                     codec="mp4v", fps=5), CTX)
    sink.write(_batches(frames[:1], 30)[0])
    sink.stop()
    cap = cv2.VideoCapture(str(tmp_path / "street.mp4"))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(5)
    assert count_frames(tmp_path / "street.mp4") == 1


PIPE = """\
sources:
  - {name: a, uri: "file://a.mp4"}
  - {name: b, uri: "file://b.mp4"}
sinks:
  - {kind: video, input: sources, path: "%s"}
"""


@pytest.mark.parametrize("path, error", [
    ("out/{source}.mp4", None),
    ("out/all.mp4", "2 sources would write one video; put {source} in the path"),
    ("out/{stream}.mp4", "bad path template"),
])
def test_path_template_checked_in_graph_pass(tmp_path: Path, path: str, error: str) -> None:
    text = PIPE % path
    if error is None:
        assert loads_pipeline(text, tmp_path / "p.yaml", check_files=False).sinks[0].kind == "video"
        return
    with pytest.raises(ConfigError) as err:
        loads_pipeline(text, tmp_path / "p.yaml", check_files=False)
    assert error in str(err.value) and "sinks[0].path" in str(err.value)


# -- segments and crash-safety (io) --------------------------------------------
def test_fragmented_file_in_progress_plays_before_close(tmp_path: Path) -> None:
    """What a kill -9 leaves: the bytes on disk before close() are already playable."""
    pytest.importorskip("av")
    cv2 = pytest.importorskip("cv2")
    from edgert.sinks.video import _Writer

    writer = _Writer(tmp_path / "cam.mp4", "h264", 30.0, (64, 48), fragmented=True)
    for i in range(90):  # 3 s: a keyframe, hence a fragment, per second
        writer.write(np.full((48, 64, 3), (i * 3) % 255, np.uint8))
    cap = cv2.VideoCapture(str(writer.tmp))
    frames = 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    writer.close()
    assert frames >= 30  # at least the first full fragment, from a file never closed


def test_segments_rotate_by_duration_and_interrupted_partial_is_kept(tmp_path: Path) -> None:
    from edgert.sinks.video import partial_path

    final = tmp_path / "cam.mp4"
    leftover = partial_path(tmp_path / "cam.1.mp4")
    leftover.write_bytes(b"left by a killed run")
    cfg = VideoSinkConfig(kind="video", input="sources", path=str(tmp_path / "{source}.mp4"),
                          fps=10, segment_s=1.0, codec="mp4v")
    sink = VideoSink(cfg, None)
    sink.start()
    for f in range(25):
        b = Batch.of_frames([np.zeros((48, 64, 3), np.uint8)], [0], [f], [f / 10.0], [0.0],
                            ["cam"])
        sink.write(b)
    sink.stop()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert [n for n in names if re.match(r"cam\.\d+\.mp4$", n)] == \
        ["cam.1.mp4", "cam.2.mp4", "cam.3.mp4"]
    assert any(n.startswith("cam.1.interrupted-") for n in names)
    assert not final.exists() and not leftover.exists()
    counts = [count_frames(tmp_path / n) for n in ("cam.1.mp4", "cam.2.mp4", "cam.3.mp4")]
    assert counts == [10, 10, 5]


def test_failing_encoder_drops_frames_without_stopping_the_pipeline(tmp_path: Path,
                                                                   caplog) -> None:
    import logging

    from edgert.runtime.metrics import Metrics

    caplog.set_level(logging.ERROR, logger="edgert.sinks.queued")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")  # the output folder cannot be created
    cfg = VideoSinkConfig(kind="video", input="sources", path=str(blocker / "{source}.mp4"),
                          fps=10, codec="mp4v", queue_frames=8)
    sink = VideoSink(cfg, None)
    metrics = Metrics()
    sink.bind_metrics(metrics)
    sink.start()
    for f in range(5):
        sink.write(Batch.of_frames([np.zeros((48, 64, 3), np.uint8)], [0], [f], [f / 10.0],
                                   [0.0], ["cam"]))  # never raises
    sink.stop()
    assert metrics.snapshot().counter("edgert_sink_dropped_total", sink="video") == 5
    errors = [r.getMessage() for r in caplog.records]
    assert len(errors) == 1 and errors[0].startswith("sink 'video': ")

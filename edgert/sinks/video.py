"""``video``: an annotated MP4 per stream (boxes, label and score; top-k classes).

Codec ``auto`` is H.264 through PyAV when it is installed (plays in browsers),
else MPEG-4 Part 2 (``mp4v``) through OpenCV, whose pip wheels cannot write
H.264.  The file's rate is the source's: taken from the first two frames'
``pts`` (``fps:`` overrides).  Each file is written under a hidden temp name
and renamed into place when the stream ends, so a reader never sees half a
video and an interrupted run leaves the previous file intact.
"""
from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from pydantic import Field, field_validator

from edgert._lazy import available, require
from edgert.batch import Batch
from edgert.config.schema import PipelineConfig
from edgert.errors import ConfigError, RuntimeFailure
from edgert.fsutil import fsync_dir
from edgert.sinks.paths import check_template, output_path, partial_path
from edgert.stage import SINKS, Sink, SinkConfig

log = logging.getLogger("edgert.sinks.video")

CODECS = ("auto", "h264", "mp4v", "mjpg")


class VideoSinkConfig(SinkConfig):
    """``{kind: video, input: det, path: out/{source}.mp4}``."""

    path: str = "out/{source}.mp4"
    """File per stream; ``{source}`` is the stream name; relative to the working directory."""
    codec: str = "auto"
    """``auto`` (h264 with PyAV, else mp4v), ``h264`` (needs PyAV), ``mp4v`` or ``mjpg``."""
    fps: Optional[float] = Field(None, gt=0)
    """Frame rate of the file (default: the source's)."""
    thickness: int = Field(2, ge=1, le=16)
    """Box line width in pixels."""
    labels: bool = True
    """Draw ``label score`` above each box."""

    @field_validator("codec")
    @classmethod
    def _codec(cls, v: str) -> str:
        if v not in CODECS:
            raise ValueError("codec '%s' is not one of %s" % (v, ", ".join(CODECS)))
        return v


def color(class_id: int) -> Tuple[int, int, int]:
    """A stable, distinct BGR colour per class."""
    rng = np.random.default_rng(class_id * 7919 + 17)
    c = rng.integers(64, 256, 3)
    return int(c[0]), int(c[1]), int(c[2])


def annotate(cv2: Any, image: np.ndarray, batch: Batch, i: int, cfg: VideoSinkConfig) -> np.ndarray:
    """A copy of frame ``i`` with its detections / classes drawn."""
    out = image.copy()
    font = cv2.FONT_HERSHEY_SIMPLEX
    if batch.detections is not None:
        det = batch.detections.for_item(i)
        boxes = np.round(det.xyxy).astype(np.int32).tolist()
        for (x1, y1, x2, y2), score, cid in zip(boxes, det.score.tolist(), det.class_id.tolist()):
            col = color(cid)
            cv2.rectangle(out, (x1, y1), (x2, y2), col, cfg.thickness)
            if cfg.labels:
                text = "%s %.2f" % (batch.label(cid), score)
                (tw, th), base = cv2.getTextSize(text, font, 0.45, 1)
                ty = max(th + base, y1)
                cv2.rectangle(out, (x1, ty - th - base), (x1 + tw, ty), col, -1)
                cv2.putText(out, text, (x1, ty - base), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    if batch.classes is not None:
        ids = batch.classes.class_id[i].tolist()
        for row, (cid, score) in enumerate(zip(ids, batch.classes.score[i].tolist())):
            if cid >= 0:
                cv2.putText(out, "%s %.2f" % (batch.label(cid), score), (8, 22 + 20 * row),
                            font, 0.6, (0, 255, 255), 2, cv2.LINE_AA)
    return out


class _Writer:
    """One output file: PyAV H.264 or OpenCV, opened lazily at the first frame."""

    def __init__(self, final: Path, codec: str, fps: float, size: Tuple[int, int]) -> None:
        self.final = final
        self.tmp = partial_path(final)
        self.frames = 0
        final.parent.mkdir(parents=True, exist_ok=True)
        w, h = size
        if codec == "auto":
            codec = "h264" if available("av") and w % 2 == 0 and h % 2 == 0 else "mp4v"
        self.codec = codec
        self._av: Any = None
        self._cv: Any = None
        if codec == "h264":
            av = require("av", "H.264 output (codec: h264)")
            self._av = av.open(str(self.tmp), mode="w", format="mp4")
            rate = Fraction(fps).limit_denominator(1001)
            self._stream = self._av.add_stream("libx264", rate=rate)
            self._stream.width, self._stream.height, self._stream.pix_fmt = w, h, "yuv420p"
            self._stream.options = {"crf": "23", "preset": "veryfast"}
            self._mod = av
        else:
            cv2 = require("cv2", "video output")
            fourcc = cv2.VideoWriter_fourcc(*("mp4v" if codec == "mp4v" else "MJPG"))
            self._cv = cv2.VideoWriter(str(self.tmp), fourcc, fps, (w, h))
            if not self._cv.isOpened():
                raise RuntimeFailure("video sink: cannot open %s for writing (codec %s)"
                                     % (self.tmp, codec))
        log.info("video: writing %s (%s, %dx%d @ %.2f fps)", final, codec, w, h, fps)

    def write(self, image: np.ndarray) -> None:
        if self._av is not None:
            frame = self._mod.VideoFrame.from_ndarray(image, format="bgr24")
            for packet in self._stream.encode(frame):
                self._av.mux(packet)
        else:
            self._cv.write(image)
        self.frames += 1

    def close(self) -> None:
        """Finish the file and move it into place (atomic rename)."""
        if self._av is not None:
            for packet in self._stream.encode():
                self._av.mux(packet)
            self._av.close()
            self._av = None
        if self._cv is not None:
            self._cv.release()
            self._cv = None
        with open(self.tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(self.tmp, self.final)
        fsync_dir(self.final.parent)
        log.info("video: %s done, %d frames", self.final, self.frames)


@SINKS.register("video")
class VideoSink(Sink):
    Config = VideoSinkConfig

    @classmethod
    def check_config(cls, config: SinkConfig, pipeline: PipelineConfig) -> None:
        path: str = config.path  # type: ignore[attr-defined]
        check_template(path, pipeline)
        if "{source}" not in path and len(pipeline.sources) > 1:
            raise ConfigError("%d sources would write one video; put {source} in the path"
                              % len(pipeline.sources), key_path="path")

    def __init__(self, config: SinkConfig, context: Any) -> None:
        super().__init__(config, context)
        self._writers: Dict[str, _Writer] = {}
        self._pending: Dict[str, List[Tuple[float, np.ndarray]]] = {}
        self._cv2: Any = None

    def start(self) -> None:
        self._cv2 = require("cv2", "drawing on video frames")

    def write(self, batch: Batch) -> None:
        if self._cv2 is None:
            self.start()
        for i in range(len(batch)):
            name = batch.source_name(i)
            image = annotate(self._cv2, batch.frames[i], batch, i, self.config)  # type: ignore[arg-type]
            writer = self._writers.get(name)
            if writer is not None:
                writer.write(image)
                continue
            pending = self._pending.setdefault(name, [])
            pending.append((float(batch.pts[i]), image))
            if len(pending) >= 2 or self.config.fps:  # type: ignore[attr-defined]
                self._open(name)

    def _open(self, name: str) -> None:
        """Start the file once the rate is known (from two frames' pts, or ``fps:``)."""
        pending = self._pending.pop(name, [])
        if not pending:
            return
        fps = self.config.fps  # type: ignore[attr-defined]
        if not fps:
            gap = pending[1][0] - pending[0][0] if len(pending) > 1 else 0.0
            fps = 1.0 / gap if gap > 1e-4 else 30.0
        h, w = pending[0][1].shape[:2]
        writer = _Writer(output_path(self.config.path, name), self.config.codec,  # type: ignore[attr-defined]
                         float(fps), (w, h))
        self._writers[name] = writer
        for _, image in pending:
            writer.write(image)

    def stop(self) -> None:
        for name in list(self._pending):
            self._open(name)
        errors = []
        for writer in self._writers.values():
            try:
                writer.close()
            except Exception as exc:  # noqa: BLE001 - close every file, report the first failure
                errors.append("%s: %s" % (writer.final, exc))
        self._writers.clear()
        if errors:
            raise RuntimeFailure("video sink: could not finish %s" % errors[0])

    def stats(self) -> Dict[str, Any]:
        return {"files": {str(w.final): w.frames for w in self._writers.values()}}

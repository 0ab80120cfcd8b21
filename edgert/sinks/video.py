"""``video``: an annotated MP4 per stream (boxes, label and score; top-k classes).

Codec ``auto`` is H.264 through PyAV when it is installed (plays in browsers),
else MPEG-4 Part 2 (``mp4v``) through OpenCV, whose pip wheels cannot write
H.264.  The file's rate is the source's: taken from the first two frames'
``pts`` (``fps:`` overrides).  Each file is written under a hidden temp name
and renamed into place when the stream ends, so a reader never sees half a
video and an interrupted run leaves the previous file intact.
"""
from __future__ import annotations

import functools
import logging
import os
import re
import time
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
from edgert.sinks.queued import Worker
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
    segment_s: Optional[float] = Field(None, gt=0)
    """Close the file after this many seconds of video and start the next:
    ``out/cam.1.mp4``, ``out/cam.2.mp4`` ...  Closed segments are complete
    files, whatever happens to the run later."""
    segment_mb: Optional[float] = Field(None, gt=0)
    """Close the file once it reaches this many megabytes and start the next."""
    queue_frames: int = Field(64, ge=0)
    """Frames waiting for the encoder; when full, frames are dropped from the
    video (counted in ``edgert_sink_dropped_total``) instead of stalling
    inference.  ``0`` encodes inline and fails the run on an encoder error."""
    fragmented: bool = True
    """H.264 through PyAV: write fragmented MP4 (a fragment per second), so
    the file being written still plays up to its last fragment after a
    kill -9 or power cut (it is kept as ``<name>.interrupted-<time>.mp4``)."""

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

    def __init__(self, final: Path, codec: str, fps: float, size: Tuple[int, int],
                 fragmented: bool = False) -> None:
        self.final = final
        self.tmp = partial_path(final)
        self.frames = 0
        self.fps = fps
        final.parent.mkdir(parents=True, exist_ok=True)
        keep_interrupted(self.tmp, final)
        w, h = size
        self.size = size
        if codec == "auto":
            codec = "h264" if available("av") and w % 2 == 0 and h % 2 == 0 else "mp4v"
        self.codec = codec
        self._av: Any = None
        self._cv: Any = None
        if codec == "h264":
            av = require("av", "H.264 output (codec: h264)")
            opts = {"movflags": "frag_keyframe+empty_moov+default_base_moof",
                    "flush_packets": "1"} if fragmented else {}  # bytes reach the OS at once
            self._av = av.open(str(self.tmp), mode="w", format="mp4", options=opts)
            rate = Fraction(fps).limit_denominator(1001)
            self._stream = self._av.add_stream("libx264", rate=rate)
            self._stream.width, self._stream.height, self._stream.pix_fmt = w, h, "yuv420p"
            self._stream.options = {"crf": "23", "preset": "veryfast"}
            if fragmented:  # a keyframe, hence a fragment, every second
                self._stream.codec_context.gop_size = max(1, int(round(fps)))
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

    def full(self, segment_s: Optional[float], segment_mb: Optional[float]) -> bool:
        """Whether this segment reached its duration or size."""
        if segment_s and self.frames >= segment_s * self.fps:
            return True
        if segment_mb:
            try:
                return self.tmp.stat().st_size >= segment_mb * 1e6
            except OSError:
                return False
        return False

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


def keep_interrupted(tmp: Path, final: Path) -> None:
    """Keep what a killed run left in ``tmp`` under a visible name instead of overwriting it.

    With ``fragmented: true`` that file plays up to its last fragment.
    """
    try:
        mtime = tmp.stat().st_mtime
    except OSError:
        return
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(mtime))
    kept = final.with_name("%s.interrupted-%s%s" % (final.stem, stamp, final.suffix))
    os.replace(tmp, kept)
    fsync_dir(final.parent)
    log.warning("video: kept %s from an interrupted run as %s", tmp.name, kept.name)


def segment_path(final: Path, index: int) -> Path:
    """``out/cam.mp4`` -> ``out/cam.<index>.mp4``."""
    return final.with_name("%s.%d%s" % (final.stem, index, final.suffix))


def first_free_segment(final: Path) -> int:
    pat = re.compile(re.escape(final.stem) + r"\.(\d+)" + re.escape(final.suffix) + "$")
    used = [int(m.group(1)) for m in (pat.match(p.name) for p in final.parent.iterdir()) if m] \
        if final.parent.is_dir() else []
    return max(used, default=0) + 1


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
        self._rates: Dict[str, Tuple[float, Tuple[int, int]]] = {}  # for the next segment
        self._pending: Dict[str, List[Tuple[float, np.ndarray]]] = {}
        self._cv2: Any = None
        self._worker: Optional[Worker] = None

    def start(self) -> None:
        self._cv2 = require("cv2", "drawing on video frames")
        depth = self.config.queue_frames  # type: ignore[attr-defined]
        if depth and self._worker is None:
            self._worker = Worker(self.name, depth, self.metrics)

    def write(self, batch: Batch) -> None:
        if self._cv2 is None:
            self.start()
        for i in range(len(batch)):
            name = batch.source_name(i)
            image = annotate(self._cv2, batch.frames[i], batch, i, self.config)  # type: ignore[arg-type]
            pts = float(batch.pts[i])
            if self._worker is not None:  # annotate() copied the frame: safe to queue
                self._worker.submit(functools.partial(self._encode, name, pts, image))
            else:
                self._encode(name, pts, image)

    def _encode(self, name: str, pts: float, image: np.ndarray) -> None:
        """Add one annotated frame to its stream's file (the worker thread, if queued)."""
        writer = self._writers.get(name)
        if writer is None and name in self._rates:  # the next segment, at its first frame
            writer = self._new_writer(name, *self._rates[name])
        if writer is not None:
            writer.write(image)
            if writer.full(self.config.segment_s,  # type: ignore[attr-defined]
                           self.config.segment_mb):  # type: ignore[attr-defined]
                self._next_segment(name, writer)
            return
        pending = self._pending.setdefault(name, [])
        pending.append((pts, image))
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
        writer = self._new_writer(name, float(fps), (w, h))
        for _, image in pending:
            writer.write(image)

    def _new_writer(self, name: str, fps: float, size: Tuple[int, int]) -> _Writer:
        cfg: VideoSinkConfig = self.config  # type: ignore[assignment]
        final = output_path(cfg.path, name)
        if cfg.segment_s or cfg.segment_mb:
            final = segment_path(final, first_free_segment(final))
        writer = _Writer(final, cfg.codec, fps, size, cfg.fragmented)
        self._writers[name] = writer
        return writer

    def _next_segment(self, name: str, writer: _Writer) -> None:
        """Close the full segment (complete, renamed into place); the next opens at the
        stream's next frame, so a stream that ends leaves no empty file."""
        del self._writers[name]
        self._rates[name] = (writer.fps, writer.size)
        writer.close()

    def stop(self) -> None:
        if self._worker is not None:  # encode what is queued, then finish the files
            self._worker.close()
            self._worker = None
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
        writers = list(self._writers.values())  # the encoder thread may be adding one
        out: Dict[str, Any] = {"files": {str(w.final): w.frames for w in writers}}
        if self._worker is not None:
            out["dropped"] = self._worker.dropped
        return out

"""``jsonl``: one JSON object per frame, one line each, flushed per frame.

Line format (documented in the README)::

    {"source": "street", "frame": 12, "pts": 0.4004,
     "detections": [{"label": "person", "class_id": 0, "score": 0.61,
                     "box": [x1, y1, x2, y2]}]}

Boxes are in source pixels; classifier pipelines add
``"classes": [{"label", "class_id", "score"}]``.  Every line is written with
one ``write`` call and flushed, so a reader (``tail -f``) never sees half a
line.  The file named by ``path`` is the active one; what a previous (killed)
run left there is rotated away first, never truncated; with ``rotate_lines`` / ``rotate_bytes`` it is closed when full,
fsynced, and renamed atomically to ``<stem>.<N>.jsonl`` (N counts up), so
rotated files are always complete.
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path
from typing import IO, Any, Dict, List, Optional

import numpy as np
from pydantic import Field, field_validator

from edgert.batch import Batch
from edgert.config.schema import PipelineConfig
from edgert.fsutil import fsync_dir
from edgert.sinks.paths import check_template, output_path
from edgert.stage import SINKS, Sink, SinkConfig

log = logging.getLogger("edgert.sinks.jsonl")

FSYNC_POLICIES = ("line", "interval", "rotate")


class JsonlSinkConfig(SinkConfig):
    """``{kind: jsonl, input: det, path: out/detections.jsonl}``."""

    path: str = "out/detections.jsonl"
    """Output file; may contain ``{source}`` for one file per stream; relative to the working
    directory."""
    rotate_lines: Optional[int] = Field(None, ge=1)
    """Start a new file after this many lines."""
    rotate_bytes: Optional[int] = Field(None, ge=1024)
    """Start a new file once the active one reaches this size."""
    rotate_s: Optional[float] = Field(None, gt=0)
    """Start a new file after this many seconds (e.g. ``3600`` for hourly files)."""
    fsync: str = "interval"
    """When lines reach the disk itself, not just the OS: ``line`` (every line;
    slow on SD cards), ``interval`` (every ``fsync_interval_s``), ``rotate``
    (only when a file is closed).  Lines are whole after a kill -9 in every
    mode; ``fsync`` decides what survives a power cut."""
    fsync_interval_s: float = Field(1.0, gt=0)
    """Seconds between fsyncs with ``fsync: interval``."""

    @field_validator("fsync")
    @classmethod
    def _fsync(cls, v: str) -> str:
        if v not in FSYNC_POLICIES:
            raise ValueError("fsync '%s' is not one of %s" % (v, ", ".join(FSYNC_POLICIES)))
        return v


def frame_records(batch: Batch) -> List[Dict[str, Any]]:
    """One JSON-ready dict per frame of the batch."""
    n = len(batch)
    per_item: List[List[Dict[str, Any]]] = [[] for _ in range(n)]
    det = batch.detections
    if det is not None and len(det):
        boxes = np.round(det.xyxy.astype(np.float64), 1).tolist()
        scores = np.round(det.score.astype(np.float64), 4).tolist()
        for k, (i, cid) in enumerate(zip(det.batch_index.tolist(), det.class_id.tolist())):
            per_item[i].append({"label": batch.label(cid), "class_id": cid,
                                "score": scores[k], "box": boxes[k]})
    records = []
    for i in range(n):
        rec: Dict[str, Any] = {"source": batch.source_name(i), "frame": int(batch.frame_index[i]),
                               "pts": round(float(batch.pts[i]), 4), "detections": per_item[i]}
        if batch.classes is not None:
            ids = batch.classes.class_id[i].tolist()
            sc = np.round(batch.classes.score[i].astype(np.float64), 4).tolist()
            rec["classes"] = [{"label": batch.label(c), "class_id": c, "score": s}
                              for c, s in zip(ids, sc) if c >= 0]
        records.append(rec)
    return records


class _Rotating:
    """An append-only line file that rotates by lines/bytes with atomic renames."""

    def __init__(self, path: Path, max_lines: Optional[int], max_bytes: Optional[int],
                 max_s: Optional[float] = None, fsync: str = "rotate",
                 fsync_interval_s: float = 1.0) -> None:
        self.path = path
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.max_s = max_s
        self.fsync = fsync
        self.fsync_interval_s = fsync_interval_s
        self._opened = self._synced = time.monotonic()
        self.lines = 0
        self.bytes = 0
        self.total = 0
        self.rotated: List[Path] = []
        path.parent.mkdir(parents=True, exist_ok=True)
        self._next_index = self._first_free_index()
        self._keep_previous()
        self._f: Optional[IO[str]] = open(path, "w", encoding="utf-8")

    def _first_free_index(self) -> int:
        pat = re.compile(re.escape(self.path.stem) + r"\.(\d+)" + re.escape(self.path.suffix) + "$")
        used = [int(m.group(1)) for p in self.path.parent.iterdir() if (m := pat.match(p.name))] \
            if self.path.parent.is_dir() else []
        return max(used, default=0) + 1

    def write_line(self, line: str) -> None:
        assert self._f is not None
        data = line + "\n"
        self._f.write(data)
        self._f.flush()
        self.lines += 1
        self.total += 1
        self.bytes += len(data.encode("utf-8"))
        now = time.monotonic()
        if self.fsync == "line" or (self.fsync == "interval"
                                    and now - self._synced >= self.fsync_interval_s):
            os.fsync(self._f.fileno())
            self._synced = now
        if (self.max_lines and self.lines >= self.max_lines) or \
                (self.max_bytes and self.bytes >= self.max_bytes) or \
                (self.max_s and now - self._opened >= self.max_s):
            self._rotate()

    def _keep_previous(self) -> None:
        """Rotate away what a previous run left in the active file instead of truncating it.

        After a kill -9 or power cut that file holds the last run's lines; a
        torn last line (power cut mid-write) is cut off so every line parses.
        """
        try:
            size = self.path.stat().st_size
        except OSError:
            return
        if size == 0:
            return
        with open(self.path, "rb+") as f:
            f.seek(max(0, size - 65536))
            tail = f.read()
            if not tail.endswith(b"\n"):
                cut = tail.rfind(b"\n")
                f.truncate(size - len(tail) + cut + 1 if cut >= 0 else max(0, size - len(tail)))
            os.fsync(f.fileno())
        self._rotate_file()

    def _rotate_file(self) -> None:
        done = self.path.with_name("%s.%d%s" % (self.path.stem, self._next_index, self.path.suffix))
        self._next_index += 1
        os.replace(self.path, done)
        fsync_dir(self.path.parent)
        self.rotated.append(done)
        log.info("jsonl: rotated %s -> %s", self.path, done.name)

    def _rotate(self) -> None:
        self._close_file()
        self._rotate_file()
        self._f = open(self.path, "w", encoding="utf-8")
        self.lines = self.bytes = 0
        self._opened = time.monotonic()

    def _close_file(self) -> None:
        if self._f is not None:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            self._f = None

    def close(self) -> None:
        self._close_file()
        fsync_dir(self.path.parent)


@SINKS.register("jsonl")
class JsonlSink(Sink):
    Config = JsonlSinkConfig

    @classmethod
    def check_config(cls, config: SinkConfig, pipeline: PipelineConfig) -> None:
        check_template(config.path, pipeline)  # type: ignore[attr-defined]

    def __init__(self, config: SinkConfig, context: Any) -> None:
        super().__init__(config, context)
        self._files: Dict[Path, _Rotating] = {}

    def _file(self, source: str) -> _Rotating:
        path = output_path(self.config.path, source)  # type: ignore[attr-defined]
        f = self._files.get(path)
        if f is None:
            cfg: JsonlSinkConfig = self.config  # type: ignore[assignment]
            f = _Rotating(path, cfg.rotate_lines, cfg.rotate_bytes, cfg.rotate_s, cfg.fsync,
                          cfg.fsync_interval_s)
            self._files[path] = f
        return f

    def write(self, batch: Batch) -> None:
        for rec in frame_records(batch):
            self._file(rec["source"]).write_line(json.dumps(rec, separators=(",", ":")))

    def stop(self) -> None:
        for f in self._files.values():
            f.close()
        log.info("jsonl: %s", ", ".join("%s (%d lines)" % (f.path, f.total)
                                          for f in self._files.values()) or "nothing written")

    def stats(self) -> Dict[str, Any]:
        return {"lines": sum(f.total for f in self._files.values())}

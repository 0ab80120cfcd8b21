"""``file://`` (a video file) and ``images://`` (a folder of images) sources.

Both read through OpenCV, imported on first use.  Relative paths resolve
against the pipeline file's folder (``base_dir``), like every path in a
pipeline.  A file that exists but cannot be decoded fails at ``open()`` with
one line naming the resolved path, never later with a traceback.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from pydantic import Field, model_validator

from edgert._lazy import require
from edgert.errors import RuntimeFailure
from edgert.sources.base import SOURCES, Frame, Source, SourceConfig, resolve_local, split_uri

log = logging.getLogger("edgert.sources.local")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class FileSourceConfig(SourceConfig):
    """A video file: ``{name: street, uri: file://../assets/street.mp4}``."""

    fps: Optional[float] = Field(None, gt=0)
    """Override the file's frame rate (used for ``pts`` and the output video)."""
    realtime: bool = False
    """Deliver frames at the file's rate, like a camera (and, like a camera,
    let the runtime drop frames under load instead of blocking)."""
    start_s: float = Field(0.0, ge=0)
    """Start this many seconds into the file (each loop starts here too)."""
    end_s: Optional[float] = Field(None, gt=0)
    """Stop (or loop back to ``start_s``) at this time in the file."""

    @model_validator(mode="after")
    def _range(self) -> "FileSourceConfig":
        if self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError("end_s (%g) must be after start_s (%g)" % (self.end_s, self.start_s))
        return self


class ImagesSourceConfig(SourceConfig):
    """A folder of images read in name order: ``{name: cam, uri: images://frames/, fps: 10}``."""

    fps: float = Field(30.0, gt=0)
    """Rate the images are stamped with: frame ``i`` has ``pts = i / fps``."""


def local_path(uri: str, base_dir: Path) -> Path:
    """The local path a ``file://`` / ``images://`` URI names."""
    return resolve_local(split_uri(uri)[1], base_dir)


@SOURCES.register("file")
class FileSource(Source):
    """Frames of a video file, decoded by OpenCV (FFmpeg backend)."""

    Config = FileSourceConfig

    def __init__(self, config: SourceConfig, base_dir: Path) -> None:
        super().__init__(config, base_dir)
        self.path = local_path(config.uri, base_dir)
        self._cap: Any = None
        self._cv2: Any = None
        self._first: Optional[np.ndarray] = None  # decoded by open() to prove the file reads
        self._fps: Optional[float] = None
        self._size: Optional[Tuple[int, int]] = None
        self._count: Optional[int] = None
        self._next = 0
        self._pass = 0  # completed loops (``loop: true``)
        cfg: FileSourceConfig = config  # type: ignore[assignment]
        self._window = _Window(cfg.start_s, cfg.end_s, cfg.realtime)
        if cfg.realtime:
            self.live = True  # type: ignore[misc]  # paced like a camera: drop, don't block

    def open(self) -> None:
        # FFmpeg prints its own errors ("moov atom not found") straight to stderr; the one-line
        # error below says it better.  Set OPENCV_FFMPEG_LOGLEVEL yourself to see them.
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        cv2 = require("cv2", "reading video files")
        if not self.path.is_file():
            raise RuntimeFailure("source '%s': video file not found: %s" % (self.name, self.path))
        cap = cv2.VideoCapture(str(self.path))
        ok, first = (cap.read() if cap.isOpened() else (False, None))
        if not ok or first is None:
            cap.release()
            raise RuntimeFailure("source '%s': cannot decode video %s (corrupt or unsupported "
                                 "format)" % (self.name, self.path))
        self._cap, self._cv2, self._first = cap, cv2, first
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        override = getattr(self.config, "fps", None)
        self._fps = float(override) if override else (fps if fps > 0 else 30.0)
        self._size = (int(first.shape[1]), int(first.shape[0]))
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._count = count if count > 0 else None
        log.info("source %s: %s %dx%d @ %.2f fps, %s frames", self.name, self.path,
                 self._size[0], self._size[1], self._fps, self._count or "?")
        if self._window.open(self, cap):
            self._first = None  # the window starts later: the probe frame is not in it

    def read(self) -> Optional[Frame]:
        if self._cap is None:
            raise RuntimeError("source %s read before open()" % self.name)
        if self._first is not None:
            ok, image, self._first = True, self._first, None
            self._window.pos += 1
        else:
            ok, image = self._window.read(self._cap)
        if not ok or image is None:
            if not self.config.loop or self._next == 0:
                return None
            self._pass += 1
            self._window.rewind(self._cap)
            ok, image = self._window.read(self._cap)
            if not ok or image is None:
                return None
        index = self._next
        self._next += 1
        fps = float(self._fps or 30.0)
        self._window.pace(index, fps)
        return Frame(image=image, index=index, pts=self._window.first / fps + index / fps,
                     capture_time=time.monotonic())

    def close(self) -> None:
        self._first = None
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    @property
    def fps(self) -> Optional[float]:
        return self._fps

    @property
    def size(self) -> Optional[Tuple[int, int]]:
        return self._size

    @property
    def frame_count(self) -> Optional[int]:
        return None if self.config.loop else self._count

    def stats(self) -> Dict[str, Any]:
        return {"frames_read": self._next, "loops": self._pass}


class _Window:
    """``start_s``/``end_s`` and real-time pacing for :class:`FileSource`."""

    def __init__(self, start_s: float, end_s: Optional[float], realtime: bool) -> None:
        self.start_s, self.end_s, self.realtime = start_s, end_s, realtime
        self.first = 0  # first frame number of the window
        self.stop: Optional[int] = None  # frame number the window ends before
        self.pos = 0
        self._t0: Optional[float] = None

    def open(self, src: "FileSource", cap: Any) -> bool:
        """Place the window; True when it had to seek (frame 0 is not in it)."""
        fps = float(src.fps or 30.0)
        self.first = int(round(self.start_s * fps))
        self.stop = None if self.end_s is None else int(round(self.end_s * fps))
        count = src._count
        if count is not None and self.first >= count:
            raise RuntimeFailure("source '%s': start_s %g is past the end of %s (%.2f s)"
                                 % (src.name, self.start_s, src.path, count / fps))
        if self.first == 0:
            self.pos = 0  # open() decoded frame 0 already; no seek needed
            return False
        self.rewind(cap)
        return True

    def rewind(self, cap: Any) -> None:
        cap.set(1, self.first)  # cv2.CAP_PROP_POS_FRAMES (exact: decodes from a keyframe)
        self.pos = self.first

    def read(self, cap: Any) -> Tuple[bool, Any]:
        if self.stop is not None and self.pos >= self.stop:
            return False, None
        self.pos += 1
        return cap.read()

    def pace(self, index: int, fps: float) -> None:
        """Sleep until frame ``index`` is due; a slow consumer is never made to catch up."""
        if not self.realtime:
            return
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        due = self._t0 + index / fps
        if due > now:
            time.sleep(due - now)
        elif now - due > 1.0:  # far behind (paused, slow pipeline): restart the clock
            self._t0 = now - index / fps


@SOURCES.register("images")
class ImagesSource(Source):
    """Images of a folder in sorted name order; unreadable images fail by name."""

    Config = ImagesSourceConfig

    def __init__(self, config: SourceConfig, base_dir: Path) -> None:
        super().__init__(config, base_dir)
        self.folder = local_path(config.uri, base_dir)
        self._files: List[Path] = []
        self._cv2: Any = None
        self._next = 0
        self._size: Optional[Tuple[int, int]] = None

    def open(self) -> None:
        self._cv2 = require("cv2", "reading images")
        if not self.folder.is_dir():
            raise RuntimeFailure("source '%s': image folder not found: %s"
                                 % (self.name, self.folder))
        self._files = sorted(p for p in self.folder.iterdir()
                             if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise RuntimeFailure("source '%s': no images (%s) in %s"
                                 % (self.name, " ".join(IMAGE_SUFFIXES), self.folder))
        log.info("source %s: %d images in %s", self.name, len(self._files), self.folder)

    def read(self) -> Optional[Frame]:
        if self._cv2 is None:
            raise RuntimeError("source %s read before open()" % self.name)
        n = len(self._files)
        if self._next >= n and not self.config.loop:
            return None
        path = self._files[self._next % n]
        image = self._cv2.imread(str(path), self._cv2.IMREAD_COLOR)
        if image is None:
            raise RuntimeFailure("source '%s': cannot decode image %s" % (self.name, path))
        if self._size is None:
            self._size = (int(image.shape[1]), int(image.shape[0]))
        index = self._next
        self._next += 1
        return Frame(image=image, index=index, pts=index / float(self.fps or 30.0),
                     capture_time=time.monotonic())

    def close(self) -> None:
        self._cv2 = None

    @property
    def fps(self) -> Optional[float]:
        return float(getattr(self.config, "fps", 30.0))

    @property
    def size(self) -> Optional[Tuple[int, int]]:
        return self._size

    @property
    def frame_count(self) -> Optional[int]:
        return None if self.config.loop else (len(self._files) or None)

    def stats(self) -> Dict[str, Any]:
        return {"frames_read": self._next}

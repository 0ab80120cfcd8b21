"""Real frames for calibration and for the accuracy gate, from an image folder or a video.

Calibration frames and held-out frames are sampled evenly over the whole
source and are disjoint by construction, interleaved so both span the same
scenes; in a video, neighbouring picks are ``total / (count + held_out)``
frames apart, so a held-out frame is never the calibration frame next door.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple, Union

import numpy as np

from edgert._lazy import require
from edgert.errors import RuntimeFailure, UsageError

log = logging.getLogger("edgert.quant.frames")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


@dataclass
class FrameSet:
    """Calibration and held-out frames (BGR uint8, HxWx3) with where they came from."""

    source: str
    calibration: List[np.ndarray]
    held_out: List[np.ndarray]
    calibration_ids: List[Union[int, str]] = field(default_factory=list)
    held_out_ids: List[Union[int, str]] = field(default_factory=list)
    total: int = 0

    def describe(self) -> Dict[str, Any]:
        return {"source": self.source, "available": self.total,
                "calibration_frames": len(self.calibration),
                "held_out_frames": len(self.held_out),
                "calibration_ids": self.calibration_ids, "held_out_ids": self.held_out_ids}


def split_indices(total: int, count: int, held_out: int) -> Tuple[List[int], List[int]]:
    """Evenly spaced, disjoint picks: ``count`` for calibration, ``held_out`` for the gate."""
    if count < 1 or held_out < 0:
        raise UsageError("need at least 1 calibration frame and >= 0 held-out frames")
    n = count + held_out
    if total < n:
        raise UsageError("the source has %d frames; %d calibration + %d held-out were asked for"
                         % (total, count, held_out))
    picks = sorted({int((i + 0.5) * total / n) for i in range(n)})
    held_pos = {int((j + 0.5) * n / held_out) for j in range(held_out)} if held_out else set()
    held = [p for i, p in enumerate(picks) if i in held_pos]
    calib = [p for i, p in enumerate(picks) if i not in held_pos]
    return calib, held


def is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() not in IMAGE_SUFFIXES


def load_frames(path: Union[str, Path], count: int, held_out: int) -> FrameSet:
    """Sample frames from a folder of images or a video file."""
    p = Path(path)
    if not p.exists():
        raise UsageError("%s: no such folder or video" % p)
    if p.is_dir():
        return _from_folder(p, count, held_out)
    return _from_video(p, count, held_out)


def _from_folder(folder: Path, count: int, held_out: int) -> FrameSet:
    cv2 = require("cv2", "reading calibration images")
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UsageError("%s: no images (%s)" % (folder, ", ".join(IMAGE_SUFFIXES)))
    calib, held = split_indices(len(files), count, held_out)

    def read(i: int) -> np.ndarray:
        img = cv2.imread(str(files[i]), cv2.IMREAD_COLOR)
        if img is None:
            raise RuntimeFailure("%s: not a readable image" % files[i])
        return np.ascontiguousarray(img)

    return FrameSet(str(folder), [read(i) for i in calib], [read(i) for i in held],
                    [files[i].name for i in calib], [files[i].name for i in held], len(files))


def _from_video(video: Path, count: int, held_out: int) -> FrameSet:
    cv2 = require("cv2", "reading calibration video")
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise RuntimeFailure("%s: cannot open video" % video)
    try:
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if total <= 0:
            raise RuntimeFailure("%s: the video does not report a frame count" % video)
        calib, held = split_indices(total, count, held_out)
        frames = _read_indices(cap, sorted(calib + held))
    finally:
        cap.release()
    if len(frames) < len(calib) + len(held):
        log.warning("%s: reported %d frames but ended early; using the %d frames read",
                    video, total, len(frames))
    return FrameSet(str(video), [frames[i] for i in calib if i in frames],
                    [frames[i] for i in held if i in frames],
                    [i for i in calib if i in frames], [i for i in held if i in frames], total)


def _read_indices(cap: Any, wanted: Sequence[int]) -> Dict[int, np.ndarray]:
    """Decode sequentially (exact, unlike seeking) and keep the wanted frames."""
    out: Dict[int, np.ndarray] = {}
    want = set(wanted)
    last = max(wanted) if wanted else -1
    idx = 0
    while idx <= last:
        if idx in want:
            ok, frame = cap.read()
            if not ok:
                break
            out[idx] = np.ascontiguousarray(frame)
        elif not cap.grab():
            break
        idx += 1
    return out

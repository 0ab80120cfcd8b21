"""The one batch type that flows through a pipeline.

A :class:`Batch` carries N frames from one or more streams as *parallel arrays*
(no Python object per frame or per detection), and is enriched stage by stage:
preprocess fills ``tensor`` and ``transforms``, an engine fills ``outputs``, a
decoder fills ``detections`` or ``classes``, sinks read all of it.

Coordinates: ``transforms[i] = (sx, sy, px, py)`` maps source pixels of item
``i`` into model-input pixels as ``x_in = x_src * sx + px`` (same for y);
decoders use it to map boxes back, so ``Detections.xyxy`` is always in *source*
pixels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np


def _check(name: str, arr: np.ndarray, shape: Tuple[Optional[int], ...]) -> None:
    """Raise ValueError naming ``name`` unless ``arr`` has ``shape`` (None = any)."""
    ok = arr.ndim == len(shape) and all(
        want is None or want == got for want, got in zip(shape, arr.shape)
    )
    if not ok:
        want_s = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise ValueError(
            "%s: expected shape %s, got %s" % (name, want_s, tuple(arr.shape))
        )


@dataclass
class Detections:
    """Boxes of a whole batch; ``batch_index[k]`` says which frame box k is in."""

    xyxy: np.ndarray  # (M, 4) float32, source pixels
    score: np.ndarray  # (M,) float32
    class_id: np.ndarray  # (M,) int32
    batch_index: np.ndarray  # (M,) int32

    def __post_init__(self) -> None:
        _check("Detections.xyxy", self.xyxy, (None, 4))
        m = self.xyxy.shape[0]
        _check("Detections.score", self.score, (m,))
        _check("Detections.class_id", self.class_id, (m,))
        _check("Detections.batch_index", self.batch_index, (m,))

    @classmethod
    def empty(cls) -> "Detections":
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            score=np.zeros((0,), np.float32),
            class_id=np.zeros((0,), np.int32),
            batch_index=np.zeros((0,), np.int32),
        )

    @classmethod
    def concatenate(cls, parts: Sequence["Detections"]) -> "Detections":
        if not parts:
            return cls.empty()
        return cls(
            xyxy=np.concatenate([p.xyxy for p in parts]),
            score=np.concatenate([p.score for p in parts]),
            class_id=np.concatenate([p.class_id for p in parts]),
            batch_index=np.concatenate([p.batch_index for p in parts]),
        )

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def for_item(self, i: int) -> "Detections":
        """The detections of frame ``i`` of the batch (batch_index kept)."""
        keep = self.batch_index == i
        return Detections(
            self.xyxy[keep], self.score[keep], self.class_id[keep], self.batch_index[keep]
        )


@dataclass
class Classifications:
    """Top-k classes per frame: ``class_id[i, j]`` is frame i's j-th best class."""

    class_id: np.ndarray  # (N, k) int32
    score: np.ndarray  # (N, k) float32

    def __post_init__(self) -> None:
        _check("Classifications.class_id", self.class_id, (None, None))
        _check("Classifications.score", self.score, tuple(self.class_id.shape))


@dataclass
class Batch:
    """N frames and everything the pipeline has learned about them so far."""

    frames: List[np.ndarray]  # N source images, HxWx3 uint8 BGR (host)
    source_index: np.ndarray  # (N,) int32 index into ``source_names``
    frame_index: np.ndarray  # (N,) int64 frame number within its stream
    pts: np.ndarray  # (N,) float64 presentation time in the stream, seconds
    capture_time: np.ndarray  # (N,) float64 time.monotonic() when the frame was read
    source_names: Sequence[str] = ()
    tensor: Optional[np.ndarray] = None  # model input, e.g. (N, 3, H, W) float32
    transforms: Optional[np.ndarray] = None  # (N, 4) sx, sy, px, py
    outputs: Dict[str, np.ndarray] = field(default_factory=dict)  # raw engine outputs
    detections: Optional[Detections] = None
    classes: Optional[Classifications] = None
    labels: Optional[Sequence[str]] = None  # class names for detections/classes
    extras: Dict[str, Any] = field(default_factory=dict)  # stage-specific annotations

    def __post_init__(self) -> None:
        n = len(self.frames)
        _check("Batch.source_index", self.source_index, (n,))
        _check("Batch.frame_index", self.frame_index, (n,))
        _check("Batch.pts", self.pts, (n,))
        _check("Batch.capture_time", self.capture_time, (n,))
        if self.transforms is not None:
            _check("Batch.transforms", self.transforms, (n, 4))

    def __len__(self) -> int:
        return len(self.frames)

    @classmethod
    def of_frames(
        cls,
        frames: Sequence[np.ndarray],
        source_index: Sequence[int],
        frame_index: Sequence[int],
        pts: Sequence[float],
        capture_time: Sequence[float],
        source_names: Sequence[str] = (),
    ) -> "Batch":
        return cls(
            frames=list(frames),
            source_index=np.asarray(source_index, np.int32).reshape(-1),
            frame_index=np.asarray(frame_index, np.int64).reshape(-1),
            pts=np.asarray(pts, np.float64).reshape(-1),
            capture_time=np.asarray(capture_time, np.float64).reshape(-1),
            source_names=tuple(source_names),
        )

    def source_name(self, i: int) -> str:
        idx = int(self.source_index[i])
        if idx < len(self.source_names):
            return self.source_names[idx]
        return str(idx)

    def label(self, class_id: int) -> str:
        if self.labels is not None and 0 <= class_id < len(self.labels):
            return self.labels[class_id]
        return str(class_id)

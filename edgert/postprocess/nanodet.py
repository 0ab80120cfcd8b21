"""``nanodet``: NanoDet / GFL detection heads -> boxes in source pixels.

NanoDet predicts, for every anchor point of every stride level, class scores
and a *distribution* over ``reg_max + 1`` bins for each side's distance
(left, top, right, bottom) from the point.  Decoding (Generalized Focal Loss):
softmax over the bins, expectation (sum of ``bin * p``) times the level's
stride gives the distance in input pixels; the point sits at
``((x + center_offset) * stride, (y + center_offset) * stride)``.

Two output layouts are understood, found by shape:

* per level, separate scores ``(N, A_l, C)`` and distributions
  ``(N, A_l, 4 * (reg_max + 1))`` (the TF.js NanoDet-m in ``models/``);
* one tensor ``(N, sum A_l, C + 4 * (reg_max + 1))`` (NanoDet-Plus exports).

Everything is vectorized over the batch and the candidates; only NMS runs
once per frame.  Boxes are mapped back through ``batch.transforms`` and
clipped to the frame, so ``Detections.xyxy`` is in source pixels.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
from pydantic import Field, field_validator

from edgert.batch import Batch, Detections
from edgert.engines.infer import load_labels
from edgert.errors import RuntimeFailure
from edgert.postprocess.nms import nms
from edgert.stage import STAGES, Stage, StageConfig, StageContext

log = logging.getLogger("edgert.postprocess.nanodet")


class NanoDetConfig(StageConfig):
    """``{name: det, kind: nanodet, input: infer, score_threshold: 0.35}``."""

    score_threshold: float = Field(0.35, ge=0.0, le=1.0)
    """Keep candidates whose class score is at least this."""
    iou_threshold: float = Field(0.6, gt=0.0, le=1.0)
    """NMS: drop a box overlapping a better one of the same class by more than this."""
    max_detections: int = Field(100, ge=1, le=100000)
    """Keep at most this many boxes per frame (best first)."""
    max_candidates: int = Field(1000, ge=1, le=100000)
    """Candidates per frame entering NMS (best first)."""
    strides: List[int] = Field([8, 16, 32], min_length=1)
    """Stride of each output level, finest first."""
    reg_max: int = Field(10, ge=1, le=64)
    """Highest distribution bin (bins = reg_max + 1): 10 for NanoDet-m here, 7 for NanoDet-Plus."""
    center_offset: float = Field(0.0, ge=0.0, le=1.0)
    """Anchor point at ``(x + center_offset) * stride``; NanoDet uses 0."""
    classes: Optional[List[int]] = None
    """Only keep these class ids (e.g. ``[0]`` for people in COCO)."""
    labels: Optional[Path] = None
    """Class names file; defaults to the model's ``labels``."""

    @field_validator("strides")
    @classmethod
    def _strides(cls, v: List[int]) -> List[int]:
        if any(s < 1 for s in v):
            raise ValueError("strides must be positive, got %s" % v)
        return v


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def anchor_points(height: int, width: int, strides: List[int], offset: float
                  ) -> Tuple[np.ndarray, np.ndarray]:
    """Centers ``(A, 2)`` and strides ``(A,)`` of all levels, row-major, finest first."""
    centers, level_strides = [], []
    for s in strides:
        h, w = -(-height // s), -(-width // s)
        ys, xs = np.mgrid[0:h, 0:w]
        pts = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
        centers.append((pts + offset) * s)
        level_strides.append(np.full(h * w, s, np.float32))
    return np.concatenate(centers), np.concatenate(level_strides)


class NanoDetHead:
    """Finds scores/distributions among the raw outputs and decodes them."""

    def __init__(self, cfg: NanoDetConfig) -> None:
        self.cfg = cfg
        self.bins = cfg.reg_max + 1
        self._anchors: Dict[Tuple[int, int], Tuple[np.ndarray, np.ndarray]] = {}

    def split(self, outputs: Dict[str, np.ndarray], h: int, w: int
              ) -> Tuple[np.ndarray, np.ndarray]:
        """``scores (N, A, C)`` and ``dist (N, A, 4, bins)`` in anchor order."""
        reg_width = 4 * self.bins
        counts = [(-(-h // s)) * (-(-w // s)) for s in self.cfg.strides]
        arrays = [a.reshape(a.shape[0], -1, a.shape[-1]) for a in outputs.values()]
        if len(arrays) == 1 and arrays[0].shape[1] == sum(counts):
            a = arrays[0]
            scores, dist = a[..., :-reg_width], a[..., -reg_width:]
        else:
            score_parts, dist_parts = [], []
            for count in counts:
                level = [a for a in arrays if a.shape[1] == count]
                sc = [a for a in level if a.shape[-1] != reg_width]
                dl = [a for a in level if a.shape[-1] == reg_width]
                if len(sc) != 1 or len(dl) != 1:
                    raise RuntimeFailure(
                        "nanodet: outputs %s do not match strides %s with reg_max %d at input "
                        "%dx%d (need one scores and one (.., %d) tensor with %d anchors)"
                        % ([tuple(a.shape) for a in arrays], self.cfg.strides, self.cfg.reg_max,
                           w, h, reg_width, count))
                score_parts.append(sc[0])
                dist_parts.append(dl[0])
            scores = np.concatenate(score_parts, axis=1)
            dist = np.concatenate(dist_parts, axis=1)
        return scores, dist.reshape(dist.shape[0], dist.shape[1], 4, self.bins)

    def anchors(self, h: int, w: int) -> Tuple[np.ndarray, np.ndarray]:
        key = (h, w)
        if key not in self._anchors:
            self._anchors[key] = anchor_points(h, w, self.cfg.strides, self.cfg.center_offset)
        return self._anchors[key]

    def decode(self, outputs: Dict[str, np.ndarray], h: int, w: int) -> Detections:
        """Boxes in model-input pixels for the whole batch, after NMS."""
        cfg = self.cfg
        scores, dist = self.split(outputs, h, w)
        centers, strides = self.anchors(h, w)
        if cfg.classes is not None:
            mask = np.zeros(scores.shape[-1], bool)
            mask[[c for c in cfg.classes if 0 <= c < scores.shape[-1]]] = True
            scores = np.where(mask, scores, 0.0)
        item, anchor, cls = np.nonzero(scores >= cfg.score_threshold)
        score = scores[item, anchor, cls].astype(np.float32)
        d = softmax(dist[item, anchor].astype(np.float32)) @ np.arange(self.bins, dtype=np.float32)
        d *= strides[anchor, None]
        c = centers[anchor]
        xyxy = np.concatenate([c - d[:, :2], c + d[:, 2:]], axis=1)
        parts = []
        for i in np.unique(item):
            sel = np.nonzero(item == i)[0]
            sel = sel[np.argsort(-score[sel], kind="stable")[:cfg.max_candidates]]
            keep = sel[nms(xyxy[sel], score[sel], cfg.iou_threshold, cls[sel])][:cfg.max_detections]
            parts.append(Detections(xyxy[keep].astype(np.float32), score[keep],
                                    cls[keep].astype(np.int32), item[keep].astype(np.int32)))
        return Detections.concatenate(parts)


def to_source(det: Detections, batch: Batch) -> Detections:
    """Map boxes from model-input pixels back to each frame and clip them to it."""
    if len(det) == 0 or batch.transforms is None:
        return det
    t = batch.transforms[det.batch_index]
    xyxy = det.xyxy.astype(np.float64)
    xyxy[:, [0, 2]] = (xyxy[:, [0, 2]] - t[:, 2:3]) / t[:, 0:1]
    xyxy[:, [1, 3]] = (xyxy[:, [1, 3]] - t[:, 3:4]) / t[:, 1:2]
    sizes = np.array([f.shape[:2] for f in batch.frames], np.float64)[det.batch_index]
    xyxy[:, [0, 2]] = np.clip(xyxy[:, [0, 2]], 0, sizes[:, 1:2])
    xyxy[:, [1, 3]] = np.clip(xyxy[:, [1, 3]], 0, sizes[:, 0:1])
    return Detections(xyxy.astype(np.float32), det.score, det.class_id, det.batch_index)


@STAGES.register("nanodet")
class NanoDet(Stage):
    """Decode NanoDet outputs into ``batch.detections`` (source pixels)."""

    Config = NanoDetConfig

    def __init__(self, config: StageConfig, context: StageContext) -> None:
        super().__init__(config, context)
        self.head = NanoDetHead(self.config)  # type: ignore[arg-type]
        labels = self.config.labels  # type: ignore[attr-defined]
        self.labels: Optional[List[str]] = load_labels(labels) if labels is not None else None
        self.count = 0

    def process(self, batch: Batch) -> Batch:
        if not batch.outputs:
            raise RuntimeFailure("stage '%s': its input '%s' produced no model outputs"
                                 % (self.name, self.config.input))
        if batch.tensor is None:
            raise RuntimeFailure("stage '%s' needs the model input size; no tensor in the batch"
                                 % self.name)
        shape = batch.tensor.shape
        h, w = (shape[2], shape[3]) if shape[1] in (1, 3) else (shape[1], shape[2])
        det = to_source(self.head.decode(batch.outputs, int(h), int(w)), batch)
        batch.detections = det
        if self.labels is not None:
            batch.labels = self.labels
        self.count += len(det)
        return batch

    def stats(self) -> Dict[str, int]:
        return {"detections": self.count}

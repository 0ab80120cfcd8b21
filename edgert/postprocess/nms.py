"""Class-aware non-maximum suppression in numpy, without a Python loop per box.

Greedy NMS keeps a box unless a *kept* higher-scoring box of the same class
overlaps it by more than ``iou_threshold``.  Here that rule is applied to the
whole pairwise IoU matrix at once and iterated to its fixed point, which is
exactly the greedy result; the number of iterations is the length of the
longest suppression chain (typically 2-4), not the number of boxes.
Candidates are capped (``max_candidates``) so the matrix stays small.
"""
from __future__ import annotations

from typing import Optional

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``a (M,4)`` and ``b (K,4)`` xyxy boxes -> ``(M, K)``."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
        class_id: Optional[np.ndarray] = None, max_candidates: int = 2000) -> np.ndarray:
    """Indices of the kept boxes, highest score first (greedy NMS, per class)."""
    if boxes.shape[0] == 0:
        return np.zeros((0,), np.int64)
    order = np.argsort(-scores, kind="stable")[:max_candidates]
    b = boxes[order].astype(np.float64)
    suppress = box_iou(b, b) > iou_threshold
    if class_id is not None:
        c = class_id[order]
        suppress &= c[:, None] == c[None, :]
    suppress = np.triu(suppress, k=1)  # only a higher-scoring box suppresses a lower one
    keep = np.ones(len(order), bool)
    while True:
        new = ~np.any(suppress & keep[:, None], axis=0)
        if np.array_equal(new, keep):
            break
        keep = new
    return order[keep]

"""How far INT8 drifts from FP32 on frames the calibration never saw.

Detectors: boxes are matched greedily (highest FP32 score first) to an INT8
box of the same class with IoU >= 0.5; agreement is the F1 of the matching,
``2 * matched / (fp32 boxes + int8 boxes)``, so both lost and invented boxes
count, and the mean score drift is measured over matched pairs.  Classifiers:
top-1 agreement.  Raw outputs (any model): cosine similarity and relative L2
error per output, reported always.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from edgert.batch import Detections

IOU_MATCH = 0.5


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes ``a`` (N,4) and ``b`` (M,4)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float64)
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def match_boxes(ref: Detections, test: Detections, iou: float = IOU_MATCH) -> List[tuple]:
    """Greedy same-class matches ``(ref_index, test_index, iou)``, best reference score first."""
    ious = iou_matrix(ref.xyxy.astype(np.float64), test.xyxy.astype(np.float64))
    used = np.zeros(len(test), bool)
    pairs = []
    for i in np.argsort(-ref.score, kind="stable"):
        if ious.shape[1] == 0:
            break
        cand = np.where((test.class_id == ref.class_id[i]) & ~used, ious[i], -1.0)
        j = int(np.argmax(cand))
        if cand[j] >= iou:
            used[j] = True
            pairs.append((int(i), j, float(cand[j])))
    return pairs


@dataclass
class DetectionStats:
    fp32_boxes: int = 0
    int8_boxes: int = 0
    matched: int = 0
    drifts: List[float] = field(default_factory=list)
    frames_identical: int = 0

    def add(self, ref: Detections, test: Detections) -> None:
        pairs = match_boxes(ref, test)
        self.fp32_boxes += len(ref)
        self.int8_boxes += len(test)
        self.matched += len(pairs)
        self.drifts.extend(float(test.score[j] - ref.score[i]) for i, j, _ in pairs)
        if len(pairs) == len(ref) == len(test):
            self.frames_identical += 1

    @property
    def agreement(self) -> float:
        total = self.fp32_boxes + self.int8_boxes
        return 1.0 if total == 0 else 2.0 * self.matched / total

    def to_dict(self) -> Dict[str, Any]:
        d = np.asarray(self.drifts, np.float64)
        return {
            "task": "detect", "agreement": round(self.agreement, 6),
            "iou_threshold": IOU_MATCH, "fp32_boxes": self.fp32_boxes,
            "int8_boxes": self.int8_boxes, "matched_boxes": self.matched,
            "fp32_boxes_kept": (round(self.matched / self.fp32_boxes, 6)
                                if self.fp32_boxes else None),
            "mean_score_drift": round(float(np.mean(np.abs(d))), 6) if d.size else None,
            "mean_signed_score_drift": round(float(np.mean(d)), 6) if d.size else None,
            "frames_with_same_boxes": self.frames_identical,
        }


@dataclass
class ClassStats:
    frames: int = 0
    same_top1: int = 0
    drifts: List[float] = field(default_factory=list)

    def add(self, ref_scores: np.ndarray, test_scores: np.ndarray) -> None:
        """Compare two score vectors of one frame."""
        r, t = np.ravel(ref_scores), np.ravel(test_scores)
        top = int(np.argmax(r))
        self.add_top1(top, int(np.argmax(t)), float(t[top] - r[top]))

    def add_top1(self, ref_top: int, test_top: int, drift: float) -> None:
        """Compare a decoder's top-1 of one frame (``drift``: INT8 minus FP32 score)."""
        self.frames += 1
        self.same_top1 += int(ref_top == test_top)
        self.drifts.append(drift)

    @property
    def agreement(self) -> float:
        return self.same_top1 / float(self.frames) if self.frames else 1.0

    def to_dict(self) -> Dict[str, Any]:
        d = np.asarray(self.drifts, np.float64)
        return {"task": "classify", "agreement": round(self.agreement, 6),
                "same_top1": self.same_top1, "frames": self.frames,
                "mean_score_drift": round(float(np.mean(np.abs(d))), 6) if d.size else None}


def output_error(ref: Sequence[Dict[str, np.ndarray]],
                 test: Sequence[Dict[str, np.ndarray]]) -> Dict[str, Dict[str, float]]:
    """Per output: mean cosine similarity, relative L2 error and max abs difference."""
    out: Dict[str, Dict[str, float]] = {}
    for name in ref[0] if ref else {}:
        cos, rel, mx = [], [], 0.0
        for r_d, t_d in zip(ref, test):
            r = np.ravel(r_d[name]).astype(np.float64)
            t = np.ravel(t_d[name]).astype(np.float64)
            nr, nt = np.linalg.norm(r), np.linalg.norm(t)
            cos.append(float(r @ t / (nr * nt)) if nr > 0 and nt > 0 else float(nr == nt))
            rel.append(float(np.linalg.norm(t - r) / nr) if nr > 0 else float(np.linalg.norm(t)))
            mx = max(mx, float(np.max(np.abs(t - r))) if r.size else 0.0)
        out[name] = {"cosine": round(float(np.mean(cos)), 6),
                     "relative_l2": round(float(np.mean(rel)), 6), "max_abs": round(mx, 6)}
    return out


def relative_error(ref: Sequence[Dict[str, np.ndarray]],
                   test: Sequence[Dict[str, np.ndarray]]) -> float:
    """One number for ranking layers: mean relative L2 error over outputs and frames."""
    errs = [v["relative_l2"] for v in output_error(ref, test).values()]
    return float(np.mean(errs)) if errs else 0.0


def summarize(stats: Optional[Any]) -> Dict[str, Any]:
    if stats is None:
        return {"task": "raw", "agreement": None}
    result: Dict[str, Any] = stats.to_dict()
    return result

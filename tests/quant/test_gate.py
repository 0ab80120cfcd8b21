"""Accuracy-gate metrics on hand-made detections and scores."""
from __future__ import annotations

import numpy as np
import pytest

from edgert.batch import Detections
from edgert.quant.gate import ClassStats, DetectionStats, iou_matrix, match_boxes, output_error


def dets(boxes, scores, classes) -> Detections:
    n = len(boxes)
    return Detections(np.asarray(boxes, np.float32).reshape(n, 4),
                      np.asarray(scores, np.float32), np.asarray(classes, np.int32),
                      np.zeros(n, np.int32))


def test_iou() -> None:
    m = iou_matrix(np.array([[0, 0, 10, 10]], float), np.array([[5, 0, 15, 10], [20, 20, 30, 30]],
                                                                 float))
    assert m[0, 0] == pytest.approx(50 / 150) and m[0, 1] == 0


def test_matching_needs_same_class_and_iou() -> None:
    ref = dets([[0, 0, 10, 10], [20, 20, 40, 40], [50, 50, 60, 60]], [0.9, 0.8, 0.7], [0, 1, 2])
    test = dets([[1, 0, 11, 10], [20, 20, 40, 40], [70, 70, 80, 80]], [0.85, 0.8, 0.6], [0, 3, 2])
    pairs = match_boxes(ref, test)
    assert [(i, j) for i, j, _ in pairs] == [(0, 0)]  # class 1 vs 3 and a far box don't match


@pytest.mark.parametrize("ref,test,agreement", [
    ([[0, 0, 10, 10]], [[0, 0, 10, 10]], 1.0),
    ([[0, 0, 10, 10], [20, 20, 30, 30]], [[0, 0, 10, 10]], 2 / 3),
    ([], [], 1.0),
    ([[0, 0, 10, 10]], [], 0.0),
])
def test_detection_agreement_is_f1(ref, test, agreement) -> None:
    s = DetectionStats()
    s.add(dets(ref, [0.9] * len(ref), [0] * len(ref)), dets(test, [0.8] * len(test),
                                                              [0] * len(test)))
    assert s.agreement == pytest.approx(agreement)
    d = s.to_dict()
    if s.matched:
        assert d["mean_score_drift"] == pytest.approx(0.1, abs=1e-6)
        assert d["mean_signed_score_drift"] == pytest.approx(-0.1, abs=1e-6)


def test_class_stats() -> None:
    s = ClassStats()
    s.add(np.array([0.1, 0.7, 0.2]), np.array([0.1, 0.6, 0.3]))
    s.add(np.array([0.5, 0.4, 0.1]), np.array([0.4, 0.5, 0.1]))
    assert s.agreement == 0.5 and s.to_dict()["same_top1"] == 1


def test_output_error() -> None:
    ref = [{"y": np.array([1.0, 0.0])}]
    e = output_error(ref, [{"y": np.array([1.0, 0.0])}])["y"]
    assert e["cosine"] == 1.0 and e["relative_l2"] == 0.0
    e = output_error(ref, [{"y": np.array([0.0, 1.0])}])["y"]
    assert e["cosine"] == 0.0 and e["max_abs"] == 1.0

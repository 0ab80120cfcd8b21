from __future__ import annotations

from typing import List, Optional

import numpy as np
import pytest

from edgert.postprocess.nms import box_iou, nms


def _greedy(boxes: np.ndarray, scores: np.ndarray, thr: float,
            cls: Optional[np.ndarray]) -> List[int]:
    """The textbook loop, as the reference."""
    order = list(np.argsort(-scores, kind="stable"))
    keep: List[int] = []
    while order:
        i = order.pop(0)
        keep.append(int(i))
        order = [j for j in order
                 if not ((cls is None or cls[i] == cls[j])
                         and box_iou(boxes[i:i + 1], boxes[j:j + 1])[0, 0] > thr)]
    return keep


@pytest.mark.parametrize("a, b, iou", [
    ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
    ([0, 0, 10, 10], [5, 0, 15, 10], 50 / 150),
    ([0, 0, 10, 10], [10, 10, 20, 20], 0.0),
    ([0, 0, 10, 10], [2, 2, 4, 4], 4 / 100),
    ([0, 0, 0, 0], [0, 0, 0, 0], 0.0),  # degenerate boxes never divide by zero
])
def test_box_iou(a: list, b: list, iou: float) -> None:
    got = box_iou(np.array([a], float), np.array([b], float))
    assert got.shape == (1, 1) and got[0, 0] == pytest.approx(iou)


def test_overlapping_same_class_suppressed_other_class_kept() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [1, 1, 11, 11], [50, 50, 60, 60]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    cls = np.array([0, 0, 1, 0])
    assert nms(boxes, scores, 0.5, cls).tolist() == [0, 2, 3]
    assert nms(boxes, scores, 0.5).tolist() == [0, 3]


def test_chain_suppression_matches_greedy() -> None:
    # A suppresses B, B would suppress C, but B is gone so C stays
    boxes = np.array([[0, 0, 10, 10], [6, 0, 16, 10], [12, 0, 22, 10]], float)
    scores = np.array([0.9, 0.8, 0.7])
    assert nms(boxes, scores, 0.2).tolist() == [0, 2] == _greedy(boxes, scores, 0.2, None)


@pytest.mark.parametrize("seed", range(8))
def test_random_matches_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 80))
    xy = rng.uniform(0, 100, (n, 2))
    boxes = np.hstack([xy, xy + rng.uniform(5, 40, (n, 2))])
    scores = rng.uniform(size=n)
    cls = rng.integers(0, 3, n)
    assert nms(boxes, scores, 0.45, cls).tolist() == _greedy(boxes, scores, 0.45, cls)


def test_empty_and_candidate_cap() -> None:
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []
    boxes = np.array([[i * 20, 0, i * 20 + 10, 10] for i in range(10)], float)
    scores = np.linspace(1, 0.1, 10)
    assert nms(boxes, scores, 0.5, max_candidates=3).tolist() == [0, 1, 2]

"""Batches with known detections for sink tests."""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

import numpy as np

from edgert.batch import Batch, Detections

LABELS = ("person", "car", "dog")
SOURCES = ("north", "south")


def boxes_for(frame: int) -> int:
    """How many boxes frame ``frame`` has: 0 for every third frame."""
    return 0 if frame % 3 == 0 else 1 + frame % 2


def make_batch(frames: Sequence[int], source: int = 0, size: int = 32) -> Batch:
    """One batch of ``frames`` of stream ``source`` with deterministic boxes."""
    images = [np.full((size, size, 3), f % 255, np.uint8) for f in frames]
    batch = Batch.of_frames(images, [source] * len(frames), list(frames),
                            [f / 25.0 for f in frames], [0.0] * len(frames), SOURCES)
    parts = []
    for i, f in enumerate(frames):
        n = boxes_for(f)
        xyxy = np.array([[f, 2 * k, f + 10, 2 * k + 5] for k in range(n)], np.float32)
        parts.append(Detections(xyxy.reshape(n, 4), np.full(n, 0.5, np.float32),
                                np.arange(n, dtype=np.int32) % len(LABELS),
                                np.full(n, i, np.int32)))
    batch.detections = Detections.concatenate(parts)
    batch.labels = LABELS
    return batch


def expected_record(frame: int, source: int = 0) -> Dict[str, Any]:
    dets: List[Dict[str, Any]] = [
        {"label": LABELS[k % len(LABELS)], "class_id": k % len(LABELS), "score": 0.5,
         "box": [float(frame), 2.0 * k, frame + 10.0, 2.0 * k + 5]}
        for k in range(boxes_for(frame))]
    return {"source": SOURCES[source], "frame": frame, "pts": round(frame / 25.0, 4),
            "detections": dets}

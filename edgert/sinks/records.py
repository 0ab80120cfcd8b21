"""One JSON-ready record per frame: the shape every structured sink emits.

``{"source": "street", "frame": 12, "pts": 0.48, "detections": [{"label":
"person", "class_id": 0, "score": 0.91, "box": [x1, y1, x2, y2]}]}`` with
boxes in source pixels.  The jsonl file and the MQTT messages carry exactly
this object, so a consumer can switch transports without changing its parser.
"""
from __future__ import annotations

from typing import Any, Dict, Iterator, List

from edgert.batch import Batch


def frame_records(batch: Batch, only_detections: bool = False) -> Iterator[Dict[str, Any]]:
    """The records of ``batch`` in frame order (frames without boxes skipped if asked)."""
    dets = batch.detections
    for i in range(len(batch)):
        items: List[Dict[str, Any]] = []
        if dets is not None and len(dets):
            mine = dets.for_item(i)
            for k in range(len(mine)):
                cid = int(mine.class_id[k])
                items.append({
                    "label": batch.label(cid),
                    "class_id": cid,
                    "score": round(float(mine.score[k]), 4),
                    "box": [round(float(v), 2) for v in mine.xyxy[k]],
                })
        if only_detections and not items:
            continue
        yield {
            "source": batch.source_name(i),
            "frame": int(batch.frame_index[i]),
            "pts": round(float(batch.pts[i]), 6),
            "detections": items,
        }

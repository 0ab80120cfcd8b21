"""Real media and tiny generated models shared by the pipeline tests.

Frames come from the committed demo video (assets/street.mp4, a 1906 street
film with people, see NOTICE); short clips are cut from it per test session so
tests stay fast.  Tiny ONNX models are built here with ``onnx.helper``.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
STREET = REPO / "assets" / "street.mp4"
NANODET = REPO / "models" / "nanodet-coco.onnx"
COCO = REPO / "models" / "coco.names"
PERSON = 0


def street_frames(count: int, start: int = 0) -> List[np.ndarray]:
    """``count`` BGR frames of the demo video from frame ``start``."""
    import cv2

    cap = cv2.VideoCapture(str(STREET))
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    frames = []
    while len(frames) < count:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    assert len(frames) == count, "assets/street.mp4 has fewer than %d frames" % (start + count)
    return frames


def write_clip(path: Path, frames: Sequence[np.ndarray], fps: float = 29.97) -> Path:
    """Frames as an MP4 (OpenCV mp4v: fast, no PyAV needed)."""
    import cv2

    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        out.write(f)
    out.release()
    return path


def count_frames(path: Path) -> int:
    """Frames a video really has (decoded one by one, not the header's claim)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def tiny_model(path: Path, batch: object = "N", size: int = 8) -> Path:
    """``y = 2 * x + 1`` over ``[batch, 3, size, size]`` float32 plus ``s = sum(x)`` per item."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, size, size])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3, size, size])
    s = helper.make_tensor_value_info("s", TensorProto.FLOAT, [batch, 1])
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    axes = helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3])
    nodes = [
        helper.make_node("Mul", ["x", "two"], ["t"]),
        helper.make_node("Add", ["t", "one"], ["y"]),
        helper.make_node("ReduceSum", ["x", "axes"], ["s3"], keepdims=0),
        helper.make_node("Unsqueeze", ["s3", "ax1"], ["s"]),
    ]
    ax1 = helper.make_tensor("ax1", TensorProto.INT64, [1], [1])
    graph = helper.make_graph(nodes, "tiny", [x], [y, s], initializer=[two, one, axes, ax1])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path

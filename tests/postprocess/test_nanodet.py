"""NanoDet decoding: synthetic heads with known answers, and the real model on real frames."""
from __future__ import annotations

from typing import Any, Dict

import numpy as np
import pytest

from edgert.batch import Batch
from edgert.config.schema import PipelineConfig
from edgert.errors import RuntimeFailure
from edgert.postprocess.nanodet import NanoDet, NanoDetConfig, NanoDetHead, anchor_points, to_source
from edgert.stage import StageContext
from tests.media import COCO, NANODET, PERSON, street_frames

CTX = StageContext(PipelineConfig.model_construct(sources=[]))


def _cfg(**kw: Any) -> NanoDetConfig:
    base: Dict[str, Any] = {"name": "det", "kind": "nanodet", "input": "infer"}
    base.update(kw)
    return NanoDetConfig(**base)


def _peaked(bins: int, value: int) -> np.ndarray:
    """Logits whose softmax is (almost) one-hot at ``value``."""
    logits = np.full(bins, -50.0, np.float32)
    logits[value] = 50.0
    return logits


def test_anchor_points_order_and_stride() -> None:
    centers, strides = anchor_points(32, 64, [8, 16], 0.0)
    assert centers.shape == (4 * 8 + 2 * 4, 2)
    assert centers[:3].tolist() == [[0, 0], [8, 0], [16, 0]]
    assert centers[8].tolist() == [0, 8]  # second row of stride 8
    assert centers[32].tolist() == [0, 0] and strides[32] == 16


def test_gfl_decode_known_box_per_level_layout() -> None:
    """One anchor at stride 16, distances 2/3/4/5 bins -> box from its center."""
    h = w = 64
    cfg = _cfg(strides=[8, 16], reg_max=7, score_threshold=0.5)
    counts = [64, 16]
    outputs = {}
    for s, n in zip([8, 16], counts):
        scores = np.zeros((1, n, 3), np.float32)
        dist = np.zeros((1, n, 4, 8), np.float32)
        outputs["cls%d" % s] = scores
        outputs["reg%d" % s] = dist.reshape(1, n, 32)
    anchor = 1 * 4 + 2  # row 1, col 2 at stride 16 -> center (32, 16)
    outputs["cls16"][0, anchor, 2] = 0.9
    reg = np.stack([_peaked(8, v) for v in (2, 3, 4, 5)])
    outputs["reg16"][0, anchor] = reg.reshape(32)
    det = NanoDetHead(cfg).decode(outputs, h, w)
    assert len(det) == 1
    assert det.class_id.tolist() == [2] and det.score[0] == pytest.approx(0.9)
    assert np.allclose(det.xyxy[0], [32 - 32, 16 - 48, 32 + 64, 16 + 80], atol=1e-3)


def test_single_tensor_layout_and_center_offset() -> None:
    cfg = _cfg(strides=[8], reg_max=3, center_offset=0.5, score_threshold=0.3)
    out = np.zeros((2, 4, 2 + 16), np.float32)  # 16x16 input, stride 8 -> 4 anchors, 2 classes
    out[1, 3, 0] = 0.8  # frame 1, anchor (1,1) -> center (12, 12)
    out[1, 3, 2:] = np.stack([_peaked(4, 1)] * 4).reshape(16)
    det = NanoDetHead(cfg).decode({"output": out}, 16, 16)
    assert det.batch_index.tolist() == [1]
    assert np.allclose(det.xyxy[0], [4, 4, 20, 20], atol=1e-3)


def test_mismatched_outputs_are_a_clear_error() -> None:
    with pytest.raises(RuntimeFailure, match="do not match strides"):
        NanoDetHead(_cfg()).decode({"a": np.zeros((1, 10, 80), np.float32)}, 416, 416)


def test_to_source_maps_back_and_clips() -> None:
    frame = np.zeros((360, 640, 3), np.uint8)
    batch = Batch.of_frames([frame], [0], [0], [0.0], [0.0])
    r = 416 / 640
    batch.transforms = np.array([[r, r, 0.0, 91.0]])
    from edgert.batch import Detections

    det = Detections(np.array([[52, 91 + 26, 104, 91 + 52], [-10, 0, 500, 500]], np.float32),
                     np.array([0.9, 0.5], np.float32), np.zeros(2, np.int32),
                     np.zeros(2, np.int32))
    out = to_source(det, batch)
    assert np.allclose(out.xyxy[0], [80, 40, 160, 80], atol=1e-3)
    assert out.xyxy[1].tolist() == [0, 0, 640, 360]


@pytest.fixture(scope="module")
def real_batch() -> Batch:
    """Six real frames through letterbox + the committed NanoDet (ONNX Runtime)."""
    from edgert.engines.onnxruntime import OrtEngine
    from edgert.preprocess.letterbox import Letterbox, LetterboxConfig

    frames = street_frames(6, start=0)[::1]
    batch = Batch.of_frames(frames, [0] * 6, range(6), [0.0] * 6, [0.0] * 6, ["street"])
    pre = Letterbox(LetterboxConfig(name="pre", kind="letterbox", size=[416, 416],
                                    channel_order="bgr", mean=[103.53, 116.28, 123.675],
                                    std=[57.375, 57.12, 58.395]), CTX)
    pre.start()
    pre.process(batch)
    engine = OrtEngine("detector", NANODET, "cpu")
    batch.outputs = engine.infer({engine.inputs[0].name: batch.tensor})
    return batch


def test_real_frames_find_people_inside_the_frame(real_batch: Batch) -> None:
    stage = NanoDet(_cfg(labels=COCO), CTX)
    det = stage.process(real_batch).detections
    assert det is not None
    people = det.class_id == PERSON
    per_frame = np.bincount(det.batch_index[people], minlength=6)
    assert (per_frame >= 2).all(), per_frame  # a busy street: several people in every frame
    assert real_batch.label(PERSON) == "person"
    xy = det.xyxy
    assert (xy[:, 0] >= 0).all() and (xy[:, 2] <= 640).all() and (xy[:, 3] <= 360).all()
    assert (xy[:, 2] > xy[:, 0]).all() and (xy[:, 3] > xy[:, 1]).all()
    # people in this film are upright: taller than wide, and not the whole frame
    h, w = xy[people, 3] - xy[people, 1], xy[people, 2] - xy[people, 0]
    assert np.median(h / w) > 1.3 and h.max() < 360
    assert (det.score >= 0.35).all()


def test_real_frames_thresholds_and_limits(real_batch: Batch) -> None:
    loose = NanoDet(_cfg(score_threshold=0.2), CTX).process(real_batch).detections
    strict = NanoDet(_cfg(score_threshold=0.45), CTX).process(real_batch).detections
    capped = NanoDet(_cfg(score_threshold=0.2, max_detections=2), CTX).process(real_batch)
    capped = capped.detections
    only = NanoDet(_cfg(score_threshold=0.2, classes=[PERSON]), CTX).process(real_batch).detections
    assert len(loose) > len(strict)
    assert np.bincount(capped.batch_index).max() <= 2
    assert set(only.class_id.tolist()) == {PERSON}

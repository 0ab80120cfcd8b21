from __future__ import annotations

from typing import Any, Dict, Tuple

import numpy as np
import pytest

from edgert.batch import Batch
from edgert.config.schema import PipelineConfig
from edgert.errors import RuntimeFailure
from edgert.preprocess.letterbox import Letterbox, LetterboxConfig, Resize, ResizeConfig, fit
from edgert.stage import StageContext

CTX = StageContext(PipelineConfig.model_construct(sources=[]))


def _batch(*images: np.ndarray) -> Batch:
    n = len(images)
    return Batch.of_frames(images, [0] * n, range(n), [0.0] * n, [0.0] * n, ["s"])


def _stage(kind: str = "letterbox", **opts: Any) -> Any:
    base: Dict[str, Any] = {"name": "pre", "kind": kind, "size": [64, 48]}
    base.update(opts)
    if kind == "letterbox":
        stage = Letterbox(LetterboxConfig(**base), CTX)
    else:
        stage = Resize(ResizeConfig(**base), CTX)
    stage.start()
    return stage


def _gradient(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx % 256, yy % 256, (xx + yy) % 256], axis=-1)
    return img.astype(np.uint8)


@pytest.mark.parametrize("src, dst, keep, expected", [
    ((640, 360), (416, 416), True, (416, 234, 0, 91)),
    ((360, 640), (416, 416), True, (234, 416, 91, 0)),   # portrait
    ((417, 233), (416, 416), True, (416, 232, 0, 92)),   # odd sizes
    ((100, 100), (64, 48), True, (48, 48, 8, 0)),
    ((640, 360), (416, 416), False, (416, 416, 0, 0)),
    ((416, 416), (416, 416), True, (416, 416, 0, 0)),
])
def test_fit(src: Tuple[int, int], dst: Tuple[int, int], keep: bool,
             expected: Tuple[int, int, int, int]) -> None:
    assert fit(src[0], src[1], dst[0], dst[1], keep) == expected


@pytest.mark.parametrize("h, w", [(360, 640), (640, 360), (233, 417), (48, 64), (7, 5)])
def test_transforms_round_trip(h: int, w: int) -> None:
    """Source corners map into the content area and back exactly."""
    batch = _stage().process(_batch(_gradient(h, w)))
    sx, sy, px, py = batch.transforms[0]
    corners = np.array([[0, 0], [w, h]], np.float64)
    mapped = corners * [sx, sy] + [px, py]
    assert mapped[0].tolist() == [px, py]
    assert 0 <= mapped[1][0] <= 64 and 0 <= mapped[1][1] <= 48
    back = (mapped - [px, py]) / [sx, sy]
    assert np.allclose(back, corners)


def test_letterbox_pads_and_keeps_pixels() -> None:
    img = np.full((24, 64, 3), (10, 20, 30), np.uint8)  # BGR, wide: pads top/bottom
    batch = _stage(pad_value=114).process(_batch(img))
    t = batch.tensor
    assert t.shape == (1, 3, 48, 64) and t.dtype == np.float32
    assert t[0, :, 0, 0].tolist() == [114.0] * 3  # top border
    assert t[0, :, 24, 32].tolist() == [30.0, 20.0, 10.0]  # rgb order by default
    assert batch.transforms[0].tolist() == [1.0, 1.0, 0.0, 12.0]


@pytest.mark.parametrize("opts, pixel, expected", [
    ({"scale": 1 / 255.0}, (0, 128, 255), [1.0, 128 / 255.0, 0.0]),
    ({"channel_order": "bgr"}, (1, 2, 3), [1.0, 2.0, 3.0]),
    ({"mean": [1, 2, 3], "std": [2, 2, 2], "channel_order": "bgr"}, (5, 6, 7), [2.0, 2.0, 2.0]),
    ({"scale": 1 / 255.0, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}, (255, 0, 255),
     [1.0, -1.0, 1.0]),
])
def test_normalize_table(opts: Dict[str, Any], pixel: Tuple[int, int, int], expected: list) -> None:
    img = np.full((48, 64, 3), pixel, np.uint8)
    t = _stage("resize", **opts).process(_batch(img)).tensor
    assert np.allclose(t[0, :, 10, 10], expected, atol=1e-6)


def test_pad_value_is_normalized_too() -> None:
    img = np.zeros((24, 64, 3), np.uint8)
    t = _stage(scale=1 / 255.0, pad_value=255).process(_batch(img)).tensor
    assert np.allclose(t[0, :, 0, 0], 1.0)


@pytest.mark.parametrize("layout, dtype, shape", [
    ("nchw", "float32", (2, 3, 48, 64)),
    ("nhwc", "float32", (2, 48, 64, 3)),
    ("nchw", "float16", (2, 3, 48, 64)),
    ("nhwc", "uint8", (2, 48, 64, 3)),
])
def test_layouts_and_dtypes(layout: str, dtype: str, shape: Tuple[int, ...]) -> None:
    imgs = [_gradient(360, 640), _gradient(100, 80)]
    t = _stage("resize", layout=layout, dtype=dtype).process(_batch(*imgs)).tensor
    assert t.shape == shape and t.dtype == np.dtype(dtype)
    chw = t if layout == "nchw" else t.transpose(0, 3, 1, 2)
    import cv2

    want = cv2.resize(imgs[1], (64, 48), interpolation=cv2.INTER_LINEAR)[..., ::-1]
    assert np.allclose(chw[1].astype(np.float32), want.transpose(2, 0, 1), atol=0.5)


def test_writes_into_preallocated_engine_buffer() -> None:
    buf = np.zeros((4, 3, 48, 64), np.float32)
    batch = _batch(_gradient(360, 640), _gradient(48, 64))
    batch.tensor = buf[:2]
    out = _stage().process(batch)
    assert np.shares_memory(out.tensor, buf)
    assert buf[1].max() > 0 and buf[2:].max() == 0


def test_preallocated_buffer_of_wrong_shape_is_a_clear_error() -> None:
    batch = _batch(_gradient(48, 64))
    batch.tensor = np.zeros((1, 3, 416, 416), np.float32)
    with pytest.raises(RuntimeFailure, match=r"stage 'pre' makes \(3, 48, 64\) float32 tensors "
                                             r"but the model input is \(3, 416, 416\)"):
        _stage().process(batch)


@pytest.mark.parametrize("opts", [
    {"size": [416]}, {"size": [0, 416]}, {"layout": "chw"}, {"dtype": "int16"},
    {"std": [1, 0, 1]}, {"mean": [1, 2]}, {"channel_order": "rgba"},
])
def test_config_rejects(opts: Dict[str, Any]) -> None:
    from pydantic import ValidationError

    base: Dict[str, Any] = {"name": "p", "kind": "letterbox", "size": [416, 416]}
    base.update(opts)
    with pytest.raises(ValidationError):
        LetterboxConfig(**base)


def test_uint8_with_normalization_is_refused() -> None:
    with pytest.raises(RuntimeFailure, match="uint8 takes no scale"):
        _stage(dtype="uint8", scale=0.5)

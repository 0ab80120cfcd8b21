"""Calibration frames go through the pipeline's OWN preprocess stages (real video, letterbox)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgert.config.loader import load_pipeline
from edgert.engines.tensorrt.calibdata import CalibrationData, preprocess_chain, sample_frames
from edgert.engines.tensorrt.calibrator import parse_cache
from edgert.engines.tensorrt.compat import detect
from edgert.engines.tensorrt.manager import ensure_engine
from edgert.errors import RuntimeFailure
from edgert.sources.base import SOURCES
from edgert.stage import STAGES, StageContext
from tests.engines.models import tiny_model

REPO = Path(__file__).resolve().parents[3]
STREET = REPO / "assets" / "street.mp4"


def _clip(folder: Path, frames: int = 12) -> Path:
    """A short clip of the demo video's first frames (decoding all of it is slow)."""
    import cv2
    path = folder / "clip.mp4"
    if not path.exists():
        cap = cv2.VideoCapture(str(STREET))
        out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (160, 90))
        for _ in range(frames):
            ok, img = cap.read()
            assert ok, "cannot read %s" % STREET
            out.write(cv2.resize(img, (160, 90)))
        out.release()
        cap.release()
    return path

PIPELINE = """
version: 1
sources: [{name: street, uri: "file://%(video)s"}]
models:
  tiny:
    onnx: %(onnx)s
    backend: tensorrt
    precision: int8
    batch: 2
    int8: {calibration: {%(calib)s, count: 4, cache: %(cache)s}}
stages:
  - {name: pre, kind: letterbox, input: sources, size: [8, 8],
     mean: [100, 110, 120], std: [50, 50, 50]}
  - {name: infer, kind: infer, model: tiny, input: pre}
"""


def _pipeline(tmp_path: Path, calib: str) -> Any:
    p = tmp_path / "p.yaml"
    p.write_text(PIPELINE % {"video": _clip(tmp_path), "onnx": tiny_model(tmp_path / "tiny.onnx"),
                             "calib": calib, "cache": tmp_path / "tiny.calib"})
    return load_pipeline(p)


def _expected_amax(cfg: Any, count: int) -> float:
    """The same frames through an independently created letterbox stage."""
    src_cfg = cfg.sources[0]
    src = SOURCES.get("file")(src_cfg, cfg.base_dir)
    src.open()
    frames = [f.image for f in sample_frames(src, count)]
    src.close()
    stage = STAGES.get("letterbox")(cfg.stages[0], StageContext(cfg))
    stage.start()
    from edgert.batch import Batch

    n = len(frames)
    batch = stage.process(Batch.of_frames(frames, [0] * n, range(n), [0.0] * n, [0.0] * n))
    return float(np.abs(batch.tensor).max())


def test_chain_is_the_stages_upstream_of_the_model(tmp_path: Path) -> None:
    cfg = _pipeline(tmp_path, "source: street")
    assert [s.name for s in preprocess_chain(cfg, "tiny")] == ["pre"]
    with pytest.raises(RuntimeFailure, match="no stage of the pipeline runs model 'other'"):
        preprocess_chain(cfg, "other")


def test_batches_come_from_the_pipeline_preprocessing(tmp_path: Path) -> None:
    cfg = _pipeline(tmp_path, "source: street")
    data = CalibrationData(cfg, "tiny", cfg.models["tiny"].int8.calibration, "images",
                           (2, 3, 8, 8), np.dtype(np.float32))
    batches = list(data.batches())
    assert len(batches) == data.num_batches == 2
    assert all(b["images"].shape == (2, 3, 8, 8) for b in batches)
    got = max(float(np.abs(b["images"]).max()) for b in batches)
    assert got == pytest.approx(_expected_amax(cfg, 4))


def test_images_folder_and_video_file(tmp_path: Path) -> None:
    import cv2
    folder = tmp_path / "calib"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / ("%d.png" % i)), np.full((20, 30, 3), 40 * i, np.uint8))
    for calib in ("images: %s" % folder, "images: %s" % _clip(tmp_path)):
        cfg = _pipeline(tmp_path, calib)
        data = CalibrationData(cfg, "tiny", cfg.models["tiny"].int8.calibration, "images",
                               (2, 3, 8, 8), np.dtype(np.float32))
        assert len(list(data.batches())) == 2  # 3 images: the short batch is topped up


@pytest.mark.parametrize("version", ["8.5.2", "10.3.0"])
def test_int8_build_calibrates_through_the_pipeline(trt_factory: Any, tmp_path: Path,
                                                    version: str) -> None:
    trt = trt_factory(version)
    cfg = _pipeline(tmp_path, "source: street")
    model = cfg.models["tiny"]
    rec = ensure_engine("tiny", model, "gpu", detect(trt))
    header, scales = parse_cache((tmp_path / "tiny.calib").read_bytes())
    assert header.endswith("EntropyCalibration2")
    assert scales["images"] * 127 == pytest.approx(_expected_amax(cfg, 4), rel=1e-5)
    # The calibration cache now exists: it is part of the key, and the next lookup hits.
    again = ensure_engine("tiny", model, "gpu", detect(trt))
    assert not again.built and again.entry == rec.entry
    assert rec.meta["inputs"]["calibration"]["cache_sha256"]

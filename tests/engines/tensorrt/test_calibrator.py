"""INT8 calibrator: protocol (pointers in input order, [] when done), cache format, round trip."""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Dict, Iterator, List

import numpy as np
import pytest

from edgert.engines.tensorrt.builder import BuildRequest, build
from edgert.engines.tensorrt.calibrator import (
    CalibrationFeed,
    cache_header,
    cache_matches,
    decode_scale,
    encode_scale,
    format_cache,
    make_calibrator,
    parse_cache,
)
from edgert.engines.tensorrt.compat import detect
from tests.engines import fake_cuda, fake_tensorrt


@pytest.mark.parametrize("version,method,header", [
    ("8.5.2", "entropy", "TRT-8502-EntropyCalibration2"),
    ("10.3.0", "entropy", "TRT-100300-EntropyCalibration2"),
    ("10.3.0", "minmax", "TRT-100300-MinMaxCalibration"),
])
def test_header_per_version(trt_factory: Any, version: str, method: str, header: str) -> None:
    feats = detect(trt_factory(version))
    assert cache_header(feats.calibration_header_version, method) == header


def test_scale_encoding_matches_the_reference_example() -> None:
    # TRT_REFERENCE.md section 3: 3c008912 decodes to 0.0078452
    assert decode_scale("3c008912") == pytest.approx(0.0078452, rel=1e-5)
    assert encode_scale(decode_scale("3c88edfc")) == "3c88edfc"


def test_cache_round_trip() -> None:
    data = format_cache("TRT-8502-EntropyCalibration2", {"data": 0.0078452, "conv1": 0.0167})
    assert data.splitlines()[0] == b"TRT-8502-EntropyCalibration2"
    header, scales = parse_cache(data)
    assert header == "TRT-8502-EntropyCalibration2"
    assert scales == {"data": pytest.approx(0.0078452), "conv1": pytest.approx(0.0167)}


@pytest.mark.parametrize("data,why", [
    (b"", "unreadable"),
    (b"hello\n", "unreadable"),
    (b"TRT-8502-EntropyCalibration2\ndata: 3c0089\n", "unreadable"),
    (b"TRT-100300-EntropyCalibration2\ndata: 3c008912\n", "made by TRT-100300"),
    (b"TRT-8502-MinMaxCalibration\ndata: 3c008912\n", "made by TRT-8502-MinMax"),
])
def test_cache_mismatches_are_explained(data: bytes, why: str) -> None:
    assert why in str(cache_matches(data, "TRT-8502-EntropyCalibration2"))


def _batches(n: int, shapes: Dict[str, tuple]) -> Iterator[Dict[str, np.ndarray]]:
    for i in range(n):
        yield {k: np.full(s, float(i + 1) * (j + 1), np.float32)
               for j, (k, s) in enumerate(shapes.items())}


def test_get_batch_returns_device_pointers_in_the_order_asked(monkeypatch: Any) -> None:
    fake_cuda.patch(monkeypatch)
    shapes = {"a": (2, 3), "b": (2, 5)}
    specs = [(k, s, np.dtype(np.float32)) for k, s in shapes.items()]
    seen: List[int] = []
    feed = CalibrationFeed(specs, _batches(2, shapes), None, "TRT-8502-EntropyCalibration2",
                           total=2, on_batch=seen.append)
    assert feed.batch_size == 2
    ptrs = feed.get_batch(["b", "a"])
    assert ptrs == [feed.buffers["b"].ptr, feed.buffers["a"].ptr]
    assert np.all(fake_cuda.read(ptrs[0], 40).view(np.float32) == 2.0)  # batch 1, input b
    assert np.all(fake_cuda.read(ptrs[1], 24).view(np.float32) == 1.0)
    assert len(feed.get_batch(["a", "b"])) == 2
    assert feed.get_batch(["a", "b"]) == []  # exhausted
    assert seen == [1, 2]
    feed.close()


def test_cache_read_and_write(monkeypatch: Any, tmp_path: Path, caplog: Any) -> None:
    fake_cuda.patch(monkeypatch)
    cache = tmp_path / "c" / "det.calib"
    header = "TRT-8502-EntropyCalibration2"
    feed = CalibrationFeed([("x", (1, 2), np.dtype(np.float32))], iter(()), cache, header)
    assert feed.read_cache() is None  # no file yet
    feed.write_cache(memoryview(format_cache(header, {"x": 0.5})))
    assert feed.read_cache() == cache.read_bytes()
    cache.write_bytes(format_cache("TRT-100300-EntropyCalibration2", {"x": 0.5}))
    assert feed.read_cache() is None and "ignored" in caplog.text


@pytest.mark.parametrize("method,base", [("entropy", "IInt8EntropyCalibrator2"),
                                         ("minmax", "IInt8MinMaxCalibrator")])
def test_calibrator_class_per_method(trt_factory: Any, method: str, base: str) -> None:
    trt = trt_factory("10.3.0")
    feed = CalibrationFeed([("x", (1, 2), np.dtype(np.float32))], iter(()), None, "h")
    calib = make_calibrator(feed, method)
    assert isinstance(calib, getattr(trt, base))
    assert calib.get_batch_size() == 1 and calib.get_batch(["x"]) == []
    assert calib.read_calibration_cache() is None


@pytest.mark.parametrize("version", ["8.5.2", "10.3.0"])
def test_builder_calibrates_and_reuses_the_cache(trt_factory: Any, onnx_path: Path,
                                                 tmp_path: Path, version: str) -> None:
    trt = trt_factory(version)
    feats = detect(trt)
    cache = tmp_path / "tiny.calib"
    header = cache_header(feats.calibration_header_version, "entropy")
    made: List[CalibrationFeed] = []

    def factory(specs: Any) -> CalibrationFeed:
        assert specs[0][0] == "images" and specs[0][1] == (2, 3, 8, 8)
        feed = CalibrationFeed(specs, _batches(3, {"images": (2, 3, 8, 8)}), cache, header, 3)
        feed.calibrator = make_calibrator(feed, "entropy")
        made.append(feed)
        return feed

    req = BuildRequest(name="tiny", onnx=onnx_path, device="gpu", precision="int8", batch=2,
                       has_calibration=True)
    built = build(req, feats, factory)
    assert built.calibrated and made[0].used == 3
    header_line, scales = parse_cache(cache.read_bytes())
    assert header_line == header
    assert scales["images"] == pytest.approx(3.0 / 127)  # amax over the 3 batches / 127
    plan = json.loads(built.plan[len(fake_tensorrt.PLAN_MAGIC):])
    assert plan["calibration_profile"] is True  # dynamic batch: calibrate at the OPT shape
    again = build(req, feats, factory)  # second build: cache hit, no batches consumed
    assert made[1].used == 0 and not again.calibrated
    assert struct.pack("!f", scales["images"]).hex() in cache.read_text()

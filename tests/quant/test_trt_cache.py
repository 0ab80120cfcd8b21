"""TensorRT calibration cache: header versions, encoding, round trip, names, DLA ranges."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict

import numpy as np
import onnx
import pytest

from edgert.analysis.onnx_graph import GraphView
from edgert.errors import RuntimeFailure, UsageError
from edgert.quant import trt_cache


@pytest.mark.parametrize("version,code", [("8.5.2", 8502), ("8.6.1", 8601), ("7.0.0", 7000),
                                          ("10.3.0", 100300), ("10.3", 100300),
                                          ("10.13.2", 101302)])
def test_version_code(version: str, code: int) -> None:
    assert trt_cache.version_code(version) == code


@pytest.mark.parametrize("bad", ["eight", "8.x", "6.0", "10.100"])
def test_bad_version_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError):
        trt_cache.version_code(bad)


def test_reference_example_decodes() -> None:
    # TRT_REFERENCE.md section 3: 3c008912 -> 0.0078452 (amax ~ 0.996)
    assert trt_cache.decode_scale("3c008912") == pytest.approx(0.0078452, rel=1e-4)
    assert trt_cache.encode_scale(trt_cache.decode_scale("3c008912")) == "3c008912"


def test_round_trip_and_floor(tmp_path: Path) -> None:
    path = tmp_path / "c" / "x.cache"
    trt_cache.write_cache(path, {"data": 0.996, "zero": 0.0, "conv:0": 12.7}, "10.3.0")
    head, scales = trt_cache.read_cache(path)
    assert head == "TRT-100300-EntropyCalibration2"
    assert scales["data"] == pytest.approx(0.996 / 127, rel=1e-6)
    assert scales["conv:0"] == pytest.approx(0.1, rel=1e-6)
    assert scales["zero"] > 0


def test_malformed_cache_is_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cache"
    bad.write_text("TRT-8502-EntropyCalibration2\nconv1 3c008912\n")
    with pytest.raises(RuntimeFailure, match="bad.cache:2"):
        trt_cache.read_cache(bad)
    bad.write_text("hello\n")
    with pytest.raises(RuntimeFailure, match="header"):
        trt_cache.read_cache(bad)


def test_written_cache_parses_with_positive_finite_values_and_model_names(
        quantized: Dict[str, Any], classifier_path: Path) -> None:
    head, scales = trt_cache.read_cache(quantized["opts"].trt_cache)
    assert head == "TRT-8502-EntropyCalibration2"
    assert all(math.isfinite(v) and v > 0 for v in scales.values())
    g = GraphView(onnx.load(str(classifier_path)))
    names = set(g.inputs) | {o for n in g.nodes for o in n.output}
    assert trt_cache.check_names(scales, names) == []
    assert {"x", "c1", "r1", "a", "p", "cat", "y"} <= set(scales)
    lines = quantized["opts"].trt_cache.read_text().splitlines()[1:]
    for line in lines:
        name, hex8 = line.rsplit(": ", 1)
        assert len(hex8) == 8 and int(hex8, 16) >= 0


def test_dla_equalization_shares_concat_and_pool_ranges(
        quantized: Dict[str, Any], classifier_path: Path) -> None:
    _, scales = trt_cache.read_cache(quantized["opts"].trt_cache)
    # MaxPool a->p, Concat p,p->cat, Add r2,r1: one range each group
    assert scales["a"] == scales["p"] == scales["cat"]
    assert scales["r1"] == scales["r2"]
    g = GraphView(onnx.load(str(classifier_path)))
    out, widened = trt_cache.equalize_for_dla(g, {"a": 1.0, "p": 0.5, "cat": 0.25, "y": 3.0})
    assert out == {"a": 1.0, "p": 1.0, "cat": 1.0, "y": 3.0}
    assert sorted(widened) == ["cat", "p"]


def test_names_with_separator_are_refused() -> None:
    with pytest.raises(RuntimeFailure):
        trt_cache.render({"a: b": 1.0})
    assert np.isclose(trt_cache.scale_of(-2.54), 0.02)

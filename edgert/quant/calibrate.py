"""Activation ranges of the FP32 model from real frames, with ONNX Runtime's calibrators.

The ranges are collected once, on the *original* FP32 graph, so one pass serves
three consumers: the Q/DQ model, the TensorRT calibration cache (whose names
must be the FP32 model's tensor names) and every model the sensitivity pass
builds.  Frames are fed in small chunks so memory stays bounded: ONNX Runtime's
histogram calibrators keep every intermediate output of a chunk in memory.
"""
from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import numpy as np

from edgert._lazy import require
from edgert.errors import RuntimeFailure, UsageError
from edgert.progress import Progress
from edgert.quant.qdq import ort_quantization

log = logging.getLogger("edgert.quant.calibrate")

METHODS = ("entropy", "minmax", "percentile")
CHUNK = 4  # frames per collect_data call


def calibration_method(name: str) -> Any:
    q = ort_quantization()
    table = {"entropy": q.CalibrationMethod.Entropy, "minmax": q.CalibrationMethod.MinMax,
             "percentile": q.CalibrationMethod.Percentile}
    if name not in table:
        raise UsageError("--method %r: use one of %s" % (name, ", ".join(METHODS)))
    return table[name]


class _Feed:
    """A CalibrationDataReader over a list of input dicts (the ORT protocol: get_next)."""

    def __init__(self, feeds: Sequence[Dict[str, np.ndarray]]) -> None:
        self._it: Iterator[Dict[str, np.ndarray]] = iter(feeds)

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        return next(self._it, None)


def _quiet() -> Any:
    """ORT's calibrators print progress to stdout; library code must not print."""
    return contextlib.redirect_stdout(io.StringIO())


def collect_ranges(model: Any, feeds: Sequence[Dict[str, np.ndarray]], method: str) -> Any:
    """Run ``feeds`` through the FP32 ``model`` (ModelProto) and return ORT's TensorsData."""
    q = ort_quantization()
    onnx = require("onnx", "INT8 quantization")
    if not feeds:
        raise UsageError("no calibration frames")
    calib_method = calibration_method(method)
    with tempfile.TemporaryDirectory(prefix="edgert-calib-") as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(model, str(path))
        with _quiet():
            calibrator = q.create_calibrator(path, None,
                                             augmented_model_path=str(Path(tmp) / "aug.onnx"),
                                             calibrate_method=calib_method)
        with Progress("calibrating (%s)" % method, total=len(feeds)) as bar:
            for start in range(0, len(feeds), CHUNK):
                chunk = feeds[start:start + CHUNK]
                with _quiet():
                    calibrator.collect_data(_Feed(chunk))
                bar.advance(len(chunk))
        with _quiet():
            ranges = calibrator.compute_data()
    log.info("calibrated %d tensors on %d frames", len(ranges.data), len(feeds))
    return ranges


def amax_table(ranges: Any, tensor_names: Sequence[str]) -> Dict[str, float]:
    """``{tensor: max(|low|, |high|)}`` for the tensors in ``tensor_names`` that were calibrated."""
    out: Dict[str, float] = {}
    for name in tensor_names:
        if name not in ranges.data:
            continue
        low, high = ranges.data[name].range_value
        both = np.concatenate([np.ravel(low), np.ravel(high)]).astype(np.float64)
        amax = float(np.max(np.abs(both)))
        if not np.isfinite(amax):
            raise RuntimeFailure("tensor %r has a non-finite calibrated range" % name)
        out[name] = amax
    return out


def activation_tensors(g: Any) -> List[str]:
    """Float runtime tensors of the FP32 model in graph order: inputs, then node outputs."""
    names: List[str] = [i for i in g.inputs if g.is_float(i)]
    for n in g.topo_order():
        for o in n.output:
            if o and o not in g.constant and g.is_float(o) and o not in names:
                names.append(o)
    return names

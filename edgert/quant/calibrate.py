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


HUGE = 1e30  # a "range" this large (e.g. -inf padding before a max pool) is not quantizable


def find_unquantizable(model: Any, feeds: Sequence[Dict[str, np.ndarray]],
                       tensors: Sequence[str]) -> List[str]:
    """Tensors holding inf/NaN or absurdly large values on the first frames.

    tf2onnx pads before a max pool with -inf; such a tensor has no INT8 scale
    (its histogram is undefined), so it and the nodes touching it stay in float.
    """
    onnx = require("onnx", "INT8 quantization")
    ort = require("onnxruntime", "INT8 quantization")
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    have = {o.name for o in probe.graph.output}
    probe.graph.output.extend(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None)
                              for t in tensors if t not in have)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(probe.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    bad: List[str] = []
    for feed in feeds[:CHUNK]:
        for name, value in zip(names, sess.run(None, feed)):
            arr = np.asarray(value)
            if name in tensors and name not in bad and arr.dtype.kind == "f" and arr.size and (
                    not np.all(np.isfinite(arr)) or float(np.max(np.abs(arr))) > HUGE):
                bad.append(name)
    if bad:
        log.info("not quantizable (non-finite values): %s", ", ".join(bad))
    return bad


def collect_ranges(model: Any, feeds: Sequence[Dict[str, np.ndarray]], method: str,
                   skip: Sequence[str] = ()) -> Any:
    """Run ``feeds`` through the FP32 ``model`` (ModelProto) and return ORT's TensorsData.

    Tensors in ``skip`` (see :func:`find_unquantizable`) get no range.
    """
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
        chosen = getattr(calibrator, "tensors_to_calibrate", None)
        if isinstance(chosen, set):  # histogram calibrators filter collected tensors by it
            chosen.difference_update(skip)
        with Progress("calibrating (%s)" % method, total=len(feeds)) as bar:
            for start in range(0, len(feeds), CHUNK):
                chunk = feeds[start:start + CHUNK]
                with _quiet():
                    calibrator.collect_data(_Feed(chunk))
                bar.advance(len(chunk))
        with _quiet():
            ranges = calibrator.compute_data()
    for name in skip:
        ranges.data.pop(name, None)
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

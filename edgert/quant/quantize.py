"""``edgert quantize``: post-training INT8 for TensorRT, judged on frames calibration never saw.

One calibration pass over real frames gives per-tensor ranges of the FP32
model.  From them: a TensorRT-compatible Q/DQ model (explicit quantization, the
only DLA path on TRT 11 and the GPU path elsewhere), a TensorRT calibration
cache (the implicit path DLA needs on TRT 8.5/10.x), and an accuracy gate that
compares INT8 with FP32 on held-out frames.  An optional sensitivity pass keeps
the worst layers in float and names them.

What the gate measures: the Q/DQ model run by ONNX Runtime on the CPU.
TensorRT's INT8 kernels (and its implicit path with the cache) round and fuse
differently, so on the device the numbers are close but not identical.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from edgert.analysis.onnx_graph import GraphView, load_model, model_bytes
from edgert.errors import RuntimeFailure, UsageError
from edgert.fsutil import atomic_write_bytes, atomic_write_text
from edgert.progress import Progress
from edgert.quant import trt_cache as tcache
from edgert.quant.calibrate import (
    activation_tensors, amax_table, collect_ranges, find_unquantizable,
)
from edgert.quant.feeds import Preparer
from edgert.quant.frames import FrameSet
from edgert.quant.gate import ClassStats, DetectionStats, output_error, summarize
from edgert.quant.qdq import check_trt_qdq, prepare, quantize, quantized_nodes
from edgert.quant.sensitivity import rank_layers, run_all, session

log = logging.getLogger("edgert.quant.quantize")


@dataclass
class QuantizeOptions:
    model: Path
    out: Path
    method: str = "entropy"
    trt_cache: Optional[Path] = None
    trt_version: str = tcache.DEFAULT_TRT_VERSION
    report: Optional[Path] = None
    keep_fp32: int = 0
    sensitivity_frames: int = 4
    exclude: Sequence[str] = ()
    equalize_dla: bool = True
    min_agreement: Optional[float] = None


@dataclass
class Prepared:
    """Frames turned into model feeds, plus the batches the decoder needs."""

    calibration: List[Dict[str, np.ndarray]]
    held_out: List[Dict[str, np.ndarray]]
    held_batches: List[Any] = field(default_factory=list)


def prepare_frames(frames: FrameSet, preparer: Preparer) -> Prepared:
    calib, held, batches = [], [], []
    with Progress("preprocessing frames",
                  total=len(frames.calibration) + len(frames.held_out)) as bar:
        for i, f in enumerate(frames.calibration):
            calib.append(preparer.feed(preparer.batch(f, i)))
            bar.advance()
        for i, f in enumerate(frames.held_out):
            b = preparer.batch(f, i)
            batches.append(b)
            held.append(preparer.feed(b))
            bar.advance()
    return Prepared(calib, held, batches)


def judge(preparer: Preparer, batches: Sequence[Any], ref: List[Dict[str, np.ndarray]],
          test: List[Dict[str, np.ndarray]]) -> Dict[str, Any]:
    """Task-level agreement of ``test`` with ``ref`` outputs (detections, top-1, or raw only).

    ``batches`` are the preprocessed frames (the decoder needs their transforms).
    """
    stats: Any = None
    if preparer.decoder is not None:
        for b, r, t in zip(batches, ref, test):
            dr, dt = preparer.decode(b, r), preparer.decode(b, t)
            if isinstance(dr, tuple) and isinstance(dt, tuple):
                stats = stats or ClassStats()
                stats.add_top1(dr[0], dt[0], dt[1] - dr[1] if dr[0] == dt[0] else 0.0)
            else:
                stats = stats or DetectionStats()
                stats.add(dr, dt)
    elif ref and len(ref[0]) == 1 and next(iter(ref[0].values())).ndim == 2:
        stats = ClassStats()
        for r, t in zip(ref, test):
            stats.add(next(iter(r.values())), next(iter(t.values())))
    result = summarize(stats)
    result["outputs"] = output_error(ref, test)
    return result


def run_quantize(opts: QuantizeOptions, frames: FrameSet, preparer: Preparer) -> Dict[str, Any]:
    """Calibrate, quantize, gate, and write every output atomically; returns the report."""
    t0 = time.monotonic()
    fp32 = load_model(opts.model)
    g = GraphView(fp32)
    preparer.start()
    try:
        data = prepare_frames(frames, preparer)
        prepared = prepare(fp32)
        _check_exclude(prepared, opts.exclude)
        bad = find_unquantizable(prepared, data.calibration,
                                 activation_tensors(GraphView(prepared, infer=False)))
        ranges = collect_ranges(prepared, data.calibration, opts.method, skip=bad)
        ref_held = run_all(session(prepared), data.held_out)
        exclude = list(opts.exclude) + _touching(prepared, bad, opts.exclude)
        sens: List[Any] = []
        if opts.keep_fp32 > 0:
            few = data.calibration[:max(1, opts.sensitivity_frames)]
            sens = rank_layers(prepared, ranges, few, run_all(session(prepared), few), exclude)
            exclude += [e.node for e in sens[:opts.keep_fp32]]
        qmodel = quantize(prepared, ranges, exclude=exclude)
        problems = check_trt_qdq(qmodel)
        if problems:
            raise RuntimeFailure("the Q/DQ model breaks TensorRT's rules: %s" % problems[0])
        test_held = run_all(session(qmodel), data.held_out)
        gate = judge(preparer, data.held_batches, ref_held, test_held)
    finally:
        preparer.stop()
    atomic_write_bytes(opts.out, model_bytes(qmodel))
    report = _report(opts, frames, preparer, gate, qmodel, exclude, sens)
    report["unquantizable_tensors"] = bad
    if opts.trt_cache is not None:
        report["trt_cache"] = write_trt_cache(opts, g, ranges)
    report["seconds"] = round(time.monotonic() - t0, 1)
    if opts.report is not None:
        atomic_write_text(opts.report, json.dumps(report, indent=2) + "\n")
    return report


def _check_exclude(model: Any, names: Sequence[str]) -> None:
    known = {n.name for n in model.graph.node}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError("--exclude %s: no such node in the model" % ", ".join(unknown))


def _touching(model: Any, tensors: Sequence[str], already: Sequence[str]) -> List[str]:
    """Nodes that read or write one of ``tensors`` (they must stay in float)."""
    bad = set(tensors)
    return [n.name for n in model.graph.node
            if n.name not in already and bad & (set(n.input) | set(n.output))]


def write_trt_cache(opts: QuantizeOptions, g: GraphView, ranges: Any) -> Dict[str, Any]:
    """The TensorRT cache over the FP32 model's tensor names (see :mod:`edgert.quant.trt_cache`)."""
    assert opts.trt_cache is not None
    amax = amax_table(ranges, activation_tensors(g))
    widened: List[str] = []
    if opts.equalize_dla:
        amax, widened = tcache.equalize_for_dla(g, amax)
    tcache.write_cache(opts.trt_cache, amax, opts.trt_version)
    return {"path": str(opts.trt_cache), "header": tcache.header(opts.trt_version),
            "tensors": len(amax), "equalized_for_dla": opts.equalize_dla,
            "widened_for_dla": len(widened)}


def _report(opts: QuantizeOptions, frames: FrameSet, preparer: Preparer, gate: Dict[str, Any],
            qmodel: Any, exclude: Sequence[str], sens: Sequence[Any]) -> Dict[str, Any]:
    agreement = gate.get("agreement")
    passed = None
    if opts.min_agreement is not None and agreement is not None:
        passed = bool(agreement >= opts.min_agreement)
    return {
        "model": str(opts.model), "out": str(opts.out), "method": opts.method,
        "agreement": agreement, "min_agreement": opts.min_agreement, "passed": passed,
        "held_out_frames": len(frames.held_out),
        "calibration_frames": len(frames.calibration),
        "layers_kept_in_higher_precision": list(exclude),
        "quantized_layers": len(quantized_nodes(qmodel)),
        "gate": gate, "frames": frames.describe(), "preprocess": preparer.describe,
        "decoder": preparer.decoder.config.kind if preparer.decoder is not None else None,
        "sensitivity": [{"node": e.node, "op": e.op, "relative_error": round(e.error, 6)}
                        for e in sens],
        "qdq": {"format": "QDQ", "activations": "int8 symmetric per-tensor",
                "weights": "int8 symmetric per-channel (output-channel axis)",
                "zero_points": 0, "opset": _opset(qmodel), "trt_checks": "passed"},
        "note": "agreement is measured with ONNX Runtime on the Q/DQ model; TensorRT's INT8 "
                "kernels round and fuse differently, so device results are close, not "
                "identical",
    }


def _opset(model: Any) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def check_min_agreement(value: Optional[float]) -> None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise UsageError("--min-agreement %g: must be between 0 and 1" % value)

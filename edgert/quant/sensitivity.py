"""Which layers INT8 hurts most, so they can stay in higher precision.

Each weighted layer (Conv/Gemm/MatMul) is quantized *alone* with the shared
calibrated ranges and the model's outputs are compared with FP32 on a few
calibration frames (never the held-out frames, which stay reserved for the
accuracy gate).  The layers with the largest output error are the ones worth
keeping in FP32/FP16.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence

import numpy as np

from edgert._lazy import require
from edgert.progress import Progress
from edgert.quant.gate import relative_error
from edgert.quant.qdq import WEIGHTED, quantize

log = logging.getLogger("edgert.quant.sensitivity")


@dataclass
class LayerError:
    node: str
    op: str
    error: float


def session(model: Any) -> Any:
    """A CPU ONNX Runtime session on an in-memory model."""
    ort = require("onnxruntime", "INT8 quantization")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


def run_all(sess: Any, feeds: Sequence[Dict[str, np.ndarray]]) -> List[Dict[str, np.ndarray]]:
    names = [o.name for o in sess.get_outputs()]
    return [dict(zip(names, sess.run(None, f))) for f in feeds]


def weighted_nodes(prepared: Any, exclude: Sequence[str] = ()) -> List[Any]:
    """Conv/Gemm/MatMul nodes with a constant weight (the ones Q/DQ quantizes)."""
    inits = {t.name for t in prepared.graph.initializer}
    return [n for n in prepared.graph.node
            if n.op_type in WEIGHTED and len(n.input) > 1 and n.input[1] in inits
            and n.name not in exclude]


def rank_layers(prepared: Any, ranges: Any, feeds: Sequence[Dict[str, np.ndarray]],
                reference: Sequence[Dict[str, np.ndarray]],
                exclude: Sequence[str] = ()) -> List[LayerError]:
    """Output error of quantizing each weighted layer alone, worst first."""
    nodes = weighted_nodes(prepared, exclude)
    result: List[LayerError] = []
    with Progress("sensitivity", total=len(nodes)) as bar:
        for n in nodes:
            model = quantize(prepared, ranges, only=[n.name])
            err = relative_error(reference, run_all(session(model), feeds))
            result.append(LayerError(n.name, n.op_type, err))
            bar.advance(note=n.name[-30:])
    result.sort(key=lambda e: -e.error)
    if result:
        log.info("most sensitive layer: %s (relative output error %.4f)",
                 result[0].node, result[0].error)
    return result

"""TensorRT-compatible Q/DQ models from calibrated ranges, with ONNX Runtime's quantizer.

TensorRT's ONNX parser accepts explicit quantization only in one shape
(TRT_REFERENCE.md section 3): QuantizeLinear/DequantizeLinear pairs with zero
point 0 (symmetric int8), per-channel scales only for weights and only on the
output-channel axis, per-tensor scales for activations, opset >= 13 for the
``axis`` attribute; no QLinearConv/ConvInteger.  ONNX Runtime's QDQ quantizer is
configured for exactly that, and :func:`check_trt_qdq` verifies the result
instead of trusting the configuration.

Weights keep their FP32 values behind a Q/DQ pair (``AddQDQPairToWeight``), the
form NVIDIA's own QAT exports use, and biases stay FP32 (TensorRT folds them in
FP32; an int32 DequantizeLinear would not parse on 8.5).
"""
from __future__ import annotations

import copy
import logging
from types import ModuleType
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from edgert._lazy import require
from edgert.analysis.onnx_graph import sort_nodes

log = logging.getLogger("edgert.quant.qdq")

# Ops that get Q/DQ on their inputs: the weighted ops, plus the residual Add and
# the data-movement ops TensorRT can keep in INT8 between them.  ConvTranspose
# is left in float: its per-channel axis for TensorRT is not confirmed here.
TRT_OP_TYPES = ("Conv", "Gemm", "MatMul", "Add", "Concat", "MaxPool", "AveragePool",
                "GlobalAveragePool", "Resize")
WEIGHTED = ("Conv", "Gemm", "MatMul")
MIN_OPSET = 13

_EXTRA_OPTIONS: Dict[str, Any] = {
    "ActivationSymmetric": True,
    "WeightSymmetric": True,
    "AddQDQPairToWeight": True,
    "QuantizeBias": False,
}


def ort_quantization(submodule: str = "") -> ModuleType:
    """``onnxruntime.quantization[.submodule]``, with the edgert install hint when missing."""
    require("onnxruntime", "INT8 quantization")
    return require("onnxruntime.quantization" + ("." + submodule if submodule else ""),
                   "INT8 quantization")


def prepare(model: Any) -> Any:
    """Upgrade to opset >= 13 and infer shapes (what the quantizer expects)."""
    onnx = require("onnx", "INT8 quantization")
    qu = ort_quantization("quant_utils")
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < MIN_OPSET:
        log.info("converting the model from opset %d to %d (Q/DQ axis needs >= 13)",
                 opset, MIN_OPSET)
        model = onnx.version_converter.convert_version(model, MIN_OPSET)
    return qu.save_and_reload_model_with_shape_infer(model)


def quantize(prepared: Any, ranges: Any, exclude: Sequence[str] = (),
             only: Optional[Sequence[str]] = None,
             op_types: Sequence[str] = TRT_OP_TYPES) -> Any:
    """A Q/DQ copy of ``prepared`` (from :func:`prepare`) using calibrated ``ranges``.

    ``exclude`` keeps those nodes in float; ``only`` quantizes just those nodes
    (the sensitivity pass).
    """
    q = ort_quantization()
    qdq_mod = ort_quantization("qdq_quantizer")
    quantizer = qdq_mod.QDQQuantizer(
        model=copy.deepcopy(prepared), per_channel=True, reduce_range=False,
        weight_qType=q.QuantType.QInt8, activation_qType=q.QuantType.QInt8,
        tensors_range=ranges, nodes_to_quantize=list(only or []),
        nodes_to_exclude=list(exclude), op_types_to_quantize=list(op_types),
        extra_options=dict(_EXTRA_OPTIONS))
    quantizer.quantize_model()
    model = quantizer.model.model
    sort_nodes(model)  # ORT appends Q/DQ nodes at the end; ONNX wants topological order
    return model


def quantized_nodes(model: Any) -> List[str]:
    """Names of the weighted nodes whose weight goes through a DequantizeLinear."""
    dq_out = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    return [n.name for n in model.graph.node
            if n.op_type in WEIGHTED and len(n.input) > 1 and n.input[1] in dq_out]


def _weight_axis(consumer: Any, input_index: int) -> Optional[int]:
    """The output-channel axis TensorRT expects for a per-channel weight, or None."""
    if input_index != 1:
        return None
    if consumer.op_type == "Conv":
        return 0
    if consumer.op_type == "Gemm":
        trans_b = next((a.i for a in consumer.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    if consumer.op_type == "MatMul":
        return 1
    return None


def check_trt_qdq(model: Any) -> List[str]:
    """Every way ``model`` breaks TensorRT's Q/DQ rules, as readable lines (empty = ok)."""
    onnx = require("onnx", "INT8 quantization")
    g = model.graph
    problems: List[str] = []
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < MIN_OPSET:
        problems.append("opset %d < %d" % (opset, MIN_OPSET))
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in g.initializer}
    consumers: Dict[str, List[Any]] = {}
    for n in g.node:
        for i, name in enumerate(n.input):
            consumers.setdefault(name, []).append((n, i))
        if n.op_type in ("QLinearConv", "ConvInteger", "MatMulInteger", "QLinearMatMul"):
            problems.append("%s: %s is rejected by TensorRT" % (n.name, n.op_type))
    for n in g.node:
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        problems.extend(_check_qdq_node(n, inits, consumers))
    return problems


def _check_qdq_node(n: Any, inits: Dict[str, np.ndarray],
                    consumers: Dict[str, List[Any]]) -> List[str]:
    out: List[str] = []
    if n.domain not in ("", "ai.onnx"):
        out.append("%s: domain %r (TensorRT parses only the standard op)" % (n.name, n.domain))
    scale = inits.get(n.input[1])
    zp = inits.get(n.input[2]) if len(n.input) > 2 and n.input[2] else None
    if scale is None:
        return out + ["%s: scale %r is not an initializer" % (n.name, n.input[1])]
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        out.append("%s: scale must be positive and finite" % n.name)
    if zp is not None and (zp.dtype != np.int8 or np.any(zp != 0)):
        out.append("%s: zero point must be int8 0 (got %s %s)" % (n.name, zp.dtype, zp.ravel()[:4]))
    if scale.size > 1:
        axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
        dq_out = n.output[0]
        if n.op_type == "QuantizeLinear":
            dqs = [c for c, _ in consumers.get(n.output[0], []) if c.op_type == "DequantizeLinear"]
            dq_out = dqs[0].output[0] if dqs else ""
        want = {_weight_axis(c, i) for c, i in consumers.get(dq_out, [])}
        if len(want) != 1 or None in want:
            out.append("%s: per-channel scales on a tensor that is not a weight" % n.name)
        elif axis != want.pop():
            out.append("%s: per-channel axis %d is not the output-channel axis" % (n.name, axis))
    return out

"""The Q/DQ model follows TensorRT's explicit-quantization rules and runs in ONNX Runtime."""
from __future__ import annotations

from typing import Any, Dict

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from edgert.quant.qdq import check_trt_qdq, quantized_nodes
from tests.quant.conftest import qdq_nodes


def _load(quantized: Dict[str, Any]) -> onnx.ModelProto:
    return onnx.load(str(quantized["opts"].out))


def test_qdq_model_runs_in_onnxruntime(quantized: Dict[str, Any]) -> None:
    sess = ort.InferenceSession(str(quantized["opts"].out), providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {"x": np.random.default_rng(1).random((1, 3, 64, 64), np.float32)})
    assert y.shape == (1, 10) and np.all(np.isfinite(y))


def test_every_zero_point_is_int8_zero(quantized: Dict[str, Any]) -> None:
    m = _load(quantized)
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    nodes = qdq_nodes(m)
    assert len(nodes) >= 10
    for n in nodes:
        zp = inits[n.input[2]]
        assert zp.dtype == np.int8 and not np.any(zp), n.name
        assert np.all(inits[n.input[1]] > 0)


def test_weight_scales_are_per_channel_on_the_output_axis(quantized: Dict[str, Any]) -> None:
    m = _load(quantized)
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    conv_weights = {n.input[1] for n in m.graph.node if n.op_type == "Conv"}
    dq_by_out = {n.output[0]: n for n in m.graph.node if n.op_type == "DequantizeLinear"}
    checked = 0
    for w_in in conv_weights:
        if w_in not in dq_by_out:
            continue  # a layer kept in float by the sensitivity pass
        dq = dq_by_out[w_in]
        scale = inits[dq.input[1]]
        axis = next(a.i for a in dq.attribute if a.name == "axis")
        assert axis == 0 and scale.ndim == 1 and scale.size > 1
        checked += 1
    assert checked >= 1
    activation_dqs = [n for n in qdq_nodes(m) if inits[n.input[1]].ndim == 0]
    assert activation_dqs  # activations per-tensor


def test_opset_is_at_least_13(quantized: Dict[str, Any]) -> None:
    m = _load(quantized)
    assert max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) >= 13


def test_checker_passes_and_catches_a_nonzero_zero_point(quantized: Dict[str, Any]) -> None:
    m = _load(quantized)
    assert check_trt_qdq(m) == []
    zp_name = qdq_nodes(m)[0].input[2]
    for t in m.graph.initializer:
        if t.name == zp_name:
            t.CopyFrom(numpy_helper.from_array(np.array(5, np.int8), zp_name))
    problems = check_trt_qdq(m)
    assert problems and "zero point" in problems[0]


def test_checker_catches_per_channel_on_the_wrong_axis(quantized: Dict[str, Any]) -> None:
    m = _load(quantized)
    for n in m.graph.node:
        if n.op_type == "DequantizeLinear" and any(a.name == "axis" for a in n.attribute):
            for a in n.attribute:
                if a.name == "axis":
                    a.i = 1
            break
    assert any("axis" in p for p in check_trt_qdq(m))


def test_kept_layer_is_not_quantized(quantized: Dict[str, Any]) -> None:
    m = _load(quantized)
    kept = quantized["report"]["layers_kept_in_higher_precision"]
    assert len(kept) == 1
    assert kept[0] not in quantized_nodes(m)
    assert len(quantized_nodes(m)) == quantized["report"]["quantized_layers"] == 2


def test_nodes_are_topologically_sorted(quantized: Dict[str, Any]) -> None:
    m = _load(quantized)
    known = {i.name for i in m.graph.input} | {t.name for t in m.graph.initializer} | {""}
    for n in m.graph.node:
        assert all(i in known for i in n.input), n.name
        known.update(n.output)

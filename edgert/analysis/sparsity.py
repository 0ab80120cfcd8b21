"""2:4 structured sparsity: magnitude pruning of eligible weights, and what it costs.

TensorRT's sparse kernels (``BuilderFlag.SPARSE_WEIGHTS``; Ampere+ GPUs such as
Orin's, not Xavier's Volta) need weights in which every group of 4 consecutive
*input* channels holds at least 2 zeros (TRT_REFERENCE.md section 4):
Conv weights ``[K, C, R, S]`` with ``C % 4 == 0`` grouped along C for each
(k, r, s); Gemm/MatMul weights grouped along their input dimension.

Pruning here is one-shot magnitude pruning (the 2 smallest |w| of each group
become 0) WITHOUT fine-tuning.  That always costs accuracy; NVIDIA's recipe
(ASP) prunes and then retrains.  The report measures the output difference
against the dense model on real frames so the cost is a number, not a hope.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from edgert._lazy import require
from edgert.analysis.onnx_graph import GraphView

log = logging.getLogger("edgert.analysis.sparsity")


@dataclass
class LayerPlan:
    """Eligibility and result for one weighted node."""

    node: str
    op: str
    weight: str
    shape: List[int]
    eligible: bool
    reason: str
    axis: Optional[int] = None
    params: int = 0
    zeros_before: float = 0.0
    zeros_after: float = 0.0


def prune_2_4(w: np.ndarray, axis: int) -> np.ndarray:
    """Zero the 2 smallest-magnitude values of every group of 4 along ``axis``."""
    moved = np.moveaxis(w, axis, -1)
    c = moved.shape[-1]
    if c % 4:
        raise ValueError("axis %d has %d channels, not a multiple of 4" % (axis, c))
    groups = moved.reshape(moved.shape[:-1] + (c // 4, 4))
    order = np.argsort(np.abs(groups), axis=-1, kind="stable")
    mask = np.ones_like(groups, dtype=bool)
    np.put_along_axis(mask, order[..., :2], False, axis=-1)
    pruned = np.where(mask, groups, np.zeros_like(groups)).reshape(moved.shape)
    return np.ascontiguousarray(np.moveaxis(pruned, -1, axis)).astype(w.dtype)


def is_2_4(w: np.ndarray, axis: int) -> bool:
    """True when every group of 4 along ``axis`` holds at least 2 zeros."""
    moved = np.moveaxis(w, axis, -1)
    c = moved.shape[-1]
    if c % 4:
        return False
    groups = moved.reshape(moved.shape[:-1] + (c // 4, 4))
    return bool(np.all(np.sum(groups == 0, axis=-1) >= 2))


def _weight_axis(g: GraphView, node: Any) -> Tuple[Optional[int], str]:
    """The input-channel axis of the node's weight, or (None, why not)."""
    shape = g.shape(node.input[1]) or ()
    if node.op_type == "Conv":
        group = int(g.attr(node, "group", 1))
        if group != 1:
            return None, "grouped convolution (group=%d); the 2:4 rule covers dense convs" % group
        return 1, ""
    if node.op_type == "Gemm":
        return (1 if int(g.attr(node, "transB", 0)) else 0), ""
    if len(shape) != 2:
        return None, "MatMul weight of rank %d; only 2D weights are pruned" % len(shape)
    return 0, ""


def plan_layers(g: GraphView, exclude: Sequence[str] = ()) -> List[LayerPlan]:
    """The eligibility table: every Conv/Gemm/MatMul with a reason when it is skipped."""
    plans: List[LayerPlan] = []
    for n in g.topo_order():
        if n.op_type not in ("Conv", "Gemm", "MatMul") or len(n.input) < 2:
            continue
        wname = n.input[1]
        shape = [int(d or 0) for d in (g.shape(wname) or ())]
        plan = LayerPlan(n.name, n.op_type, wname, shape, False, "")
        axis, why = _weight_axis(g, n)
        if n.name in exclude:
            plan.reason = "excluded by --exclude"
        elif wname not in g.initializers:
            plan.reason = ("weight is not a constant initializer (quantized or computed); "
                           "sparsify the FP32 model before quantizing")
        elif axis is None:
            plan.reason = why
        elif shape[axis] % 4:
            plan.reason = "input channels %d not a multiple of 4" % shape[axis]
        else:
            plan.eligible, plan.axis, plan.reason = True, axis, "pruned 2:4 along axis %d" % axis
        plans.append(plan)
    return plans


def sparsify(model: Any, exclude: Sequence[str] = ()) -> Tuple[Any, List[LayerPlan]]:
    """A pruned copy of ``model`` and the per-layer table (shared weights pruned once)."""
    numpy_helper = require("onnx", "sparsity").numpy_helper
    out = copy.deepcopy(model)
    g = GraphView(out, infer=True)
    plans = plan_layers(g, exclude)
    inits = {t.name: t for t in out.graph.initializer}
    done: Dict[str, float] = {}
    for p in plans:
        w = numpy_helper.to_array(inits[p.weight]) if p.weight in inits else None
        if w is None:
            continue
        p.params = int(w.size)
        p.zeros_before = round(float(np.mean(w == 0)), 6)
        if not p.eligible or p.axis is None:
            p.zeros_after = p.zeros_before
            continue
        if p.weight not in done:
            pruned = prune_2_4(w, p.axis)
            inits[p.weight].CopyFrom(numpy_helper.from_array(pruned, p.weight))
            done[p.weight] = float(np.mean(pruned == 0))
        p.zeros_after = round(done[p.weight], 6)
    pruned_n = sum(1 for p in plans if p.eligible)
    log.info("pruned %d of %d weighted layers to 2:4", pruned_n, len(plans))
    return out, plans


def summary(plans: Sequence[LayerPlan]) -> Dict[str, Any]:
    pruned = [p for p in plans if p.eligible]
    total = sum(p.params for p in plans)
    pruned_params = sum(p.params for p in pruned)
    return {
        "weighted_layers": len(plans), "pruned_layers": len(pruned),
        "skipped_layers": len(plans) - len(pruned),
        "weighted_params": total, "params_in_pruned_layers": pruned_params,
        "fraction_of_params_pruned": round(pruned_params / 2.0 / total, 6) if total else 0.0,
    }


def plans_as_dicts(plans: Sequence[LayerPlan]) -> List[Dict[str, Any]]:
    return [asdict(p) for p in plans]


def render_table(plans: Sequence[LayerPlan], width: int = 40) -> str:
    lines = ["%-*s %-7s %-18s %-6s %s" % (width, "node", "op", "weight shape", "2:4", "reason")]
    for p in plans:
        name = p.node if len(p.node) <= width else "~" + p.node[-(width - 1):]
        lines.append("%-*s %-7s %-18s %-6s %s" % (width, name, p.op,
                                                  "x".join(str(d) for d in p.shape),
                                                  "yes" if p.eligible else "no", p.reason))
    return "\n".join(lines) + "\n"

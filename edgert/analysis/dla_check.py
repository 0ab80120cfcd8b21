"""Predict, on the host, which nodes of an ONNX model TensorRT will place on DLA.

Jetson users otherwise learn after a ten-minute build on the device that half
the network fell back to the GPU.  This walks the shape-inferred graph, applies
the per-op rules of :mod:`edgert.analysis.dla_rules` for the chosen platform,
groups consecutive DLA nodes into the subgraphs (DLA loadables) TensorRT would
form, and counts the GPU<->DLA transitions, each of which costs a reformat
layer (``<t> to nvm`` / ``from nvm``) and a synchronisation.

It is a prediction from documented rules, not a TensorRT build: the report says
so, and every UNCONFIRMED rule is flagged in the node's reason.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple, Union

from edgert.analysis.dla_ops import RULES
from edgert.analysis.dla_rules import (
    DLA, FOLDED, GPU, MAX_BATCH, MAX_DIM, PLATFORMS, RuleContext, Verdict, Violation, gpu,
)
from edgert.analysis.onnx_graph import (
    GraphView, fix_input_shapes, fmt_shape, load_model, tensor_bytes,
)
from edgert.errors import UsageError

log = logging.getLogger("edgert.analysis.dla_check")

# Fixes for ops that have no rule function of their own.
_UNSUPPORTED_FIX = {
    "Cast": "keep the DLA part in float; cast on the GPU side or in post-processing",
    "TopK": "do top-k in post-processing",
    "NonMaxSuppression": "run NMS in post-processing (edgert decoders do)",
    "Expand": "rely on broadcasting in the consuming elementwise op",
    "Tile": "rely on broadcasting in the consuming elementwise op",
    "Where": "move the selection to post-processing",
    "ArgMax": "take the argmax in post-processing",
}
SUBGRAPH_MEMORY_LIMIT = 1 << 30  # non-I/O tensors per DLA loadable must stay below 1 GiB
LOADABLES_PER_CORE = 16  # current docs; the TRT 8.4 guide said 4

UNCHECKED_RULES = [
    "conv: CBUF bank check (wtBanks + minDataBanks <= 16): the formula is not in TRT_REFERENCE "
    "and is not evaluated; a very wide conv can still fall back",
    "resize: the allowed coordinate-transformation/rounding mode combinations are listed in the "
    "header but not in TRT_REFERENCE; not evaluated",
    "int8: equal dynamic ranges (concat, elementwise, pooling) depend on the calibration cache; "
    "edgert quantize --trt-cache equalizes them",
]


@dataclass
class NodeResult:
    name: str
    op: str
    device: str
    reason: str
    rule: str = ""
    fix: str = ""
    unconfirmed: bool = False
    subgraph: Optional[int] = None


@dataclass
class Subgraph:
    id: int
    nodes: List[str]
    first: str
    last: str
    inputs: List[str]
    outputs: List[str]
    batch: int
    memory_bytes: Optional[int]


@dataclass
class ReformatPoint:
    tensor: str
    src: str
    dst: str
    shape: str


@dataclass
class DlaReport:
    model: str
    platform: str
    trt: str
    precision: str
    batch: Optional[int]
    nodes: List[NodeResult]
    subgraphs: List[Subgraph]
    reformat_points: List[ReformatPoint]
    warnings: List[str] = field(default_factory=list)
    unchecked_rules: List[str] = field(default_factory=lambda: list(UNCHECKED_RULES))

    @property
    def transitions(self) -> int:
        return len(self.reformat_points)

    def count(self, device: str) -> int:
        return sum(1 for n in self.nodes if n.device == device)

    def node(self, name: str) -> NodeResult:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def to_dict(self) -> Dict[str, Any]:
        d = {
            "model": self.model, "platform": self.platform, "trt": self.trt,
            "precision": self.precision, "batch": self.batch,
            "summary": {"nodes": len(self.nodes), "dla": self.count(DLA),
                        "gpu": self.count(GPU), "folded": self.count(FOLDED),
                        "subgraphs": len(self.subgraphs), "transitions": self.transitions},
            "nodes": [asdict(n) for n in self.nodes],
            "subgraphs": [asdict(s) for s in self.subgraphs],
            "transitions": self.transitions,
            "reformat_points": [{"tensor": r.tensor, "from": r.src, "to": r.dst,
                                 "shape": r.shape} for r in self.reformat_points],
            "warnings": self.warnings,
            "unchecked_rules": self.unchecked_rules,
            "note": "prediction from documented DLA rules (TRT_REFERENCE.md section 2), not a "
                    "TensorRT build; device 'folded' = constant at build time, no layer runs",
        }
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


# ---------------------------------------------------------------- per node


def _general(node: Any, c: RuleContext) -> Tuple[List[Violation], List[str]]:
    """Limits that apply to every DLA layer: float data, static dims, dim and batch limits."""
    vs: List[Violation] = []
    notes: List[str] = []
    tensors = c.g.activation_inputs(node) + [o for o in node.output if o]
    for t in tensors:
        dt = c.g.dtype(t)
        if dt is not None and not c.g.is_float(t):
            vs.append(Violation("general.dtype", "tensor %r is not floating point; DLA computes "
                                "FP16/INT8 only" % t))
            break
    for t in tensors:
        shape = c.g.shape(t)
        if shape is None:
            notes.append("shape of %r unknown; dim limits not checked" % t)
            continue
        if any(d is None for d in shape):
            vs.append(Violation("general.dynamic-dims", "tensor %r has shape %s; DLA needs "
                                "static dims" % (t, fmt_shape(shape)),
                                "pass --batch N / --input-shape NAME=..., or export static"))
            break
        dims = [int(d) for d in shape]  # type: ignore[arg-type]
        chw = dims[-3:]
        if any(d > MAX_DIM for d in chw):
            vs.append(Violation("general.dim-limit", "tensor %r has shape %s: a non-batch dim "
                                "> %d" % (t, fmt_shape(shape), MAX_DIM)))
            break
        b = _prod(dims[:-3])
        if b > MAX_BATCH:
            vs.append(Violation("general.batch", "tensor %r: DLA batch %d (product of dims "
                                "before CHW) > %d" % (t, b, MAX_BATCH)))
            break
    return vs, notes


def _prod(dims: Sequence[int]) -> int:
    n = 1
    for d in dims:
        n *= d
    return n


def check_node(node: Any, c: RuleContext) -> Verdict:
    if c.g.folded(node):
        return Verdict(FOLDED, notes=["constant at build time: TensorRT folds it, no layer runs"])
    if node.domain not in ("", "ai.onnx"):
        return gpu("op.custom", "%s::%s is a custom op (a TensorRT plugin runs on GPU)"
                   % (node.domain, node.op_type))
    rule = RULES.get(node.op_type)
    if rule is None:
        verdict = gpu("op.unsupported", "%s is not a DLA layer in %s"
                      % (node.op_type, c.platform.source), _UNSUPPORTED_FIX.get(node.op_type, ""))
    else:
        verdict = rule(node, c)
    general, notes = _general(node, c)
    verdict.notes.extend(notes)
    if general:
        verdict.device = GPU
        verdict.passthrough = False
        verdict.violations.extend(general)
    elif verdict.device == DLA and not verdict.notes:
        verdict.notes.append("within the DLA %s limits (%s)" % (node.op_type, c.platform.source))
    return verdict


# ---------------------------------------------------------------- grouping


class _UnionFind:
    def __init__(self) -> None:
        self.parent: Dict[int, int] = {}

    def add(self, x: int) -> None:
        self.parent[x] = x

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x


def _batch_of(g: GraphView, node: Any) -> int:
    shape = g.shape(node.output[0]) if node.output else None
    if not shape or any(d is None for d in shape):
        return 1
    return _prod([int(d) for d in shape[:-3]])  # type: ignore[arg-type]


def group_subgraphs(order: Sequence[Any], device: Mapping[str, str],
                    g: GraphView) -> Dict[str, int]:
    """Assign DLA nodes to subgraphs the way TensorRT partitions them.

    A node joins the subgraph of a DLA predecessor unless that subgraph already
    reaches the node through a node outside it (joining would make a cycle
    DLA -> GPU -> same DLA loadable) or the DLA batch differs.  Subgraphs that
    meet at a node are merged when neither reaches the other from outside.
    """
    uf = _UnionFind()
    anc: Dict[str, Set[int]] = {}
    tainted: Dict[int, Set[int]] = {}
    batch: Dict[int, int] = {}
    member: Dict[str, int] = {}
    for n in order:
        if device[n.name] == FOLDED:
            anc[n.name] = set()
            continue
        preds = [g.producer[i] for i in g.activation_inputs(n) if i in g.producer]
        up: Set[int] = set()
        forbidden: Set[int] = set()
        for p in preds:
            pa = {uf.find(x) for x in anc.get(p.name, set())}
            up |= pa
            own = {uf.find(member[p.name])} if p.name in member else set()
            forbidden |= pa - own
        if device[n.name] != DLA:
            anc[n.name] = up
            continue
        nb = _batch_of(g, n)
        cands = sorted({uf.find(member[p.name]) for p in preds if p.name in member})
        cands = [s for s in cands if s not in forbidden and batch[s] == nb]
        if not cands:
            sid = len(uf.parent)
            uf.add(sid)
            tainted[sid], batch[sid] = set(forbidden), nb
        else:
            sid = cands[0]
            for other in cands[1:]:
                t_sid = {uf.find(x) for x in tainted[sid]}
                t_oth = {uf.find(x) for x in tainted[other]}
                if other not in t_sid and sid not in t_oth:
                    uf.parent[other] = sid
                    tainted[sid] |= tainted[other]
            tainted[sid] |= forbidden
        member[n.name] = sid
        anc[n.name] = up | {sid}
    # renumber by first appearance in topological order
    ids: Dict[int, int] = {}
    out: Dict[str, int] = {}
    for n in order:
        if n.name in member:
            root = uf.find(member[n.name])
            out[n.name] = ids.setdefault(root, len(ids))
    return out


def _sides(order: Sequence[Any], device: Mapping[str, str], sub: Mapping[str, int]
           ) -> Dict[str, str]:
    return {n.name: ("dla:%d" % sub[n.name]) if n.name in sub else device[n.name] for n in order}


def find_reformats(g: GraphView, order: Sequence[Any], device: Mapping[str, str],
                   sub: Mapping[str, int]) -> List[ReformatPoint]:
    """Every tensor that crosses into or out of a DLA subgraph (one reformat layer each)."""
    side = _sides(order, device, sub)
    points: List[ReformatPoint] = []
    seen: Set[Tuple[str, str]] = set()

    def add(t: str, src: str, dst: str) -> None:
        if (t, dst) not in seen:
            seen.add((t, dst))
            points.append(ReformatPoint(t, src, dst, fmt_shape(g.shape(t))))

    for t in list(g.inputs) + [o for n in order for o in n.output if o]:
        if t in g.constant:
            continue
        prod = g.producer.get(t)
        src = side[prod.name] if prod is not None else "gpu"
        for cons in g.consumers.get(t, []):
            dst = side[cons.name]
            if dst != FOLDED and dst != src and (src.startswith("dla") or dst.startswith("dla")):
                add(t, src, dst if dst.startswith("dla") else "gpu")
        if t in g.outputs and src.startswith("dla"):
            add(t, src, "gpu")
    return points


def _subgraphs(g: GraphView, order: Sequence[Any], sub: Mapping[str, int],
               itemsize: int) -> List[Subgraph]:
    groups: Dict[int, List[Any]] = {}
    for n in order:
        if n.name in sub:
            groups.setdefault(sub[n.name], []).append(n)
    result = []
    for sid in sorted(groups):
        members = groups[sid]
        names = {n.name for n in members}
        produced = [o for n in members for o in n.output if o]
        ins = sorted({i for n in members for i in g.activation_inputs(n)
                      if g.producer.get(i) is None or g.producer[i].name not in names})
        outs = [t for t in produced if t in g.outputs
                or any(c.name not in names for c in g.consumers.get(t, []))]
        internal = [t for t in produced if t not in outs]
        sizes = [tensor_bytes(g.shape(t), itemsize) for t in internal]
        mem = None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None)
        result.append(Subgraph(sid, [n.name for n in members], members[0].name, members[-1].name,
                               ins, outs, _batch_of(g, members[0]), mem))
    return result


def check_model(model: Union[str, Path, Any], platform: str = "orin", precision: str = "fp16",
                batch: Optional[int] = None,
                input_shapes: Optional[Mapping[str, Sequence[int]]] = None,
                fold_pads: bool = False) -> DlaReport:
    """Predict DLA placement for every node of ``model`` (a path or a ModelProto)."""
    if platform not in PLATFORMS:
        raise UsageError("unknown platform %r; use %s" % (platform, " or ".join(PLATFORMS)))
    if precision not in ("fp16", "int8"):
        raise UsageError("precision %r: DLA runs fp16 or int8 only" % precision)
    name = str(model) if isinstance(model, (str, Path)) else (model.graph.name or "<model>")
    proto = load_model(model) if isinstance(model, (str, Path)) else _copy(model)
    warnings = fix_input_shapes(proto, batch if batch is not None else 1, input_shapes or {})
    forget_shapes(proto)
    g = GraphView(proto)
    ctx = RuleContext(g, PLATFORMS[platform], precision, fold_pads)
    order = g.topo_order()
    verdicts: Dict[str, Verdict] = {}
    device: Dict[str, str] = {}
    for n in order:
        v = check_node(n, ctx)
        if v.passthrough:
            srcs = [g.producer[i] for i in g.activation_inputs(n) if i in g.producer]
            v.device = device[srcs[0].name] if srcs else GPU
        verdicts[n.name], device[n.name] = v, v.device
    sub = group_subgraphs(order, device, g)
    nodes = [NodeResult(n.name, n.op_type, device[n.name], verdicts[n.name].reason,
                        verdicts[n.name].rule, verdicts[n.name].fix,
                        verdicts[n.name].unconfirmed, sub.get(n.name)) for n in order]
    subgraphs = _subgraphs(g, order, sub, 1 if precision == "int8" else 2)
    report = DlaReport(name, platform, PLATFORMS[platform].trt, precision, batch, nodes,
                       subgraphs, find_reformats(g, order, device, sub), warnings)
    report.warnings.extend(_subgraph_warnings(subgraphs))
    log.info("%s on %s: %d DLA, %d GPU, %d folded nodes; %d subgraphs, %d transitions",
             name, platform, report.count(DLA), report.count(GPU), report.count(FOLDED),
             len(subgraphs), report.transitions)
    return report


def _copy(model: Any) -> Any:
    out = type(model)()
    out.CopyFrom(model)
    return out


def forget_shapes(model: Any) -> None:
    """Drop stored intermediate/output shapes so inference recomputes them from the pinned
    inputs (a stale ``N`` in value_info would otherwise survive and read as dynamic)."""
    del model.graph.value_info[:]
    for o in model.graph.output:
        if o.type.HasField("tensor_type"):
            o.type.tensor_type.ClearField("shape")


def _subgraph_warnings(subgraphs: Sequence[Subgraph]) -> List[str]:
    out = []
    if len(subgraphs) > LOADABLES_PER_CORE:
        out.append("%d DLA subgraphs: only %d loadables fit one DLA core (current docs; the TRT "
                   "8.4 guide says 4), the rest fall back to GPU"
                   % (len(subgraphs), LOADABLES_PER_CORE))
    for s in subgraphs:
        if s.memory_bytes is not None and s.memory_bytes >= SUBGRAPH_MEMORY_LIMIT:
            out.append("subgraph %d: intermediate tensors need %.1f GiB; DLA allows < 1 GiB per "
                       "subgraph" % (s.id, s.memory_bytes / float(1 << 30)))
    return out


# ---------------------------------------------------------------- terminal table


def _clip(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    half = (width - 1) // 2
    return text[:half] + "~" + text[len(text) - (width - 1 - half):]


def render_table(report: DlaReport, gpu_only: bool = False, name_width: int = 40) -> str:
    """The terminal view: one row per node, then subgraphs, transitions and warnings."""
    rows = [n for n in report.nodes if not gpu_only or n.device == GPU]
    lines = ["%-4s %-*s %-18s %-7s %s" % ("#", name_width, "node", "op", "device", "reason")]
    index = {n.name: i for i, n in enumerate(report.nodes)}
    for n in rows:
        dev = n.device if n.subgraph is None else "dla:%d" % n.subgraph
        lines.append("%-4d %-*s %-18s %-7s %s" % (index[n.name], name_width,
                                                  _clip(n.name, name_width), _clip(n.op, 18),
                                                  dev, n.reason))
    lines.append("")
    lines.append("%s on %s (TRT %s, %s, batch %s): %d nodes: %d DLA, %d GPU, %d folded"
                 % (report.model, report.platform, report.trt, report.precision,
                    report.batch or 1, len(report.nodes), report.count(DLA), report.count(GPU),
                    report.count(FOLDED)))
    for s in report.subgraphs:
        mem = "?" if s.memory_bytes is None else "%.1f MiB" % (s.memory_bytes / 1048576.0)
        lines.append("  DLA subgraph %d: %d nodes, %s .. %s, intermediate tensors %s"
                     % (s.id, len(s.nodes), _clip(s.first, 40), _clip(s.last, 40), mem))
    lines.append("  GPU<->DLA transitions (reformat points): %d" % report.transitions)
    for r in report.reformat_points:
        lines.append("    %s -> %s: %s [%s]" % (r.src, r.dst, _clip(r.tensor, 60), r.shape))
    for w in report.warnings:
        lines.append("  warning: " + w)
    lines.append("  prediction from documented rules, not a TensorRT build; UNCONFIRMED marks "
                 "rules TRT_REFERENCE could not verify")
    return "\n".join(lines) + "\n"

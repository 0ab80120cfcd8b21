"""A read-only view of an ONNX graph with inferred shapes, for the host-side model tools.

DLA placement, sparsity and quantization all ask the same questions of a model:
what shape does this tensor have, is it a build-time constant, who produces and
who consumes it, what is this attribute's value.  :class:`GraphView` answers
them once (with ``onnx.shape_inference``), so the tools stay small.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple, Union

import numpy as np

from edgert._lazy import require
from edgert.errors import RuntimeFailure, UsageError

log = logging.getLogger("edgert.analysis.onnx_graph")

Shape = Tuple[Optional[int], ...]

# Ops whose output is random or has side effects: never treat them as foldable.
_NOT_FOLDABLE = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                 "Multinomial", "Bernoulli", "If", "Loop", "Scan"}


def load_model(path: Union[str, Path]) -> Any:
    """``onnx.load`` with a one-line error for a missing or corrupt file."""
    onnx = require("onnx", "reading ONNX models")
    p = Path(path)
    if not p.is_file():
        raise UsageError("%s: no such model file" % p)
    try:
        return onnx.load(str(p))
    except Exception as exc:  # noqa: BLE001 - protobuf raises many kinds
        raise RuntimeFailure("%s: not a readable ONNX model (%s)" % (p, exc)) from exc


def model_bytes(model: Any) -> bytes:
    """Serialize a model for an atomic write; fails clearly above protobuf's 2 GB limit."""
    data = model.SerializeToString()
    if not isinstance(data, bytes):
        raise RuntimeFailure("model serialization failed")
    return bytes(data)


def parse_shape_overrides(items: Sequence[str]) -> Dict[str, List[int]]:
    """``["images=1x3x416x416"]`` -> ``{"images": [1, 3, 416, 416]}`` (usage error otherwise)."""
    out: Dict[str, List[int]] = {}
    for item in items:
        name, sep, dims = item.rpartition("=")
        try:
            shape = [int(d) for d in dims.lower().split("x")]
        except ValueError:
            shape = []
        if not sep or not name or not shape or min(shape) < 1:
            raise UsageError("--input-shape %r: expected NAME=1x3x416x416" % item)
        out[name] = shape
    return out


def fix_input_shapes(model: Any, batch: Optional[int],
                     shapes: Optional[Mapping[str, Sequence[int]]] = None) -> List[str]:
    """Pin dynamic input dims in place: named shapes first, then a dynamic leading dim to ``batch``.

    Returns warnings (e.g. a static batch that differs from ``batch``).
    """
    warnings: List[str] = []
    shapes = shapes or {}
    inits = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    known = {i.name for i in inputs}
    for name in shapes:
        if name not in known:
            raise UsageError("--input-shape: the model has no input %r (inputs: %s)"
                             % (name, ", ".join(sorted(known))))
    for inp in inputs:
        dims = inp.type.tensor_type.shape.dim
        if inp.name in shapes:
            want = list(shapes[inp.name])
            if len(want) != len(dims):
                raise UsageError("--input-shape %s: model input has rank %d, got %d dims"
                                 % (inp.name, len(dims), len(want)))
            for d, v in zip(dims, want):
                d.Clear()
                d.dim_value = int(v)
            continue
        if batch is None or not len(dims):
            continue
        first = dims[0]
        if first.HasField("dim_value") and first.dim_value > 0:
            if first.dim_value != batch:
                warnings.append("input %s has a static batch of %d; --batch %d does not change it"
                                % (inp.name, first.dim_value, batch))
            continue
        first.Clear()
        first.dim_value = int(batch)
    return warnings


def topo_sort(nodes: Iterable[Any], known: Set[str]) -> Tuple[List[Any], List[str]]:
    """Nodes in topological order (stable where already ordered), and unresolved inputs.

    Nodes whose inputs never become available (a cycle or a dangling input)
    are appended in their original order; their missing inputs are returned.
    """
    ready = set(known) | {""}
    pending = list(nodes)
    order: List[Any] = []
    while pending:
        rest = []
        for n in pending:
            if all(i in ready for i in n.input):
                order.append(n)
                ready.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            order.extend(rest)
            return order, sorted({i for n in rest for i in n.input if i not in ready})
        pending = rest
    return order, []


def sort_nodes(model: Any) -> None:
    """Reorder ``model.graph.node`` topologically in place (stable where already ordered).

    ONNX requires topological order and shape inference depends on it; ONNX
    Runtime's quantizer appends its Q/DQ nodes at the end.
    """
    g = model.graph
    known = {i.name for i in g.input} | {t.name for t in g.initializer}
    order, _ = topo_sort(g.node, known)
    copies = [type(n)() for n in order]
    for dst, src in zip(copies, order):
        dst.CopyFrom(src)
    del g.node[:]
    g.node.extend(copies)


def _shape_of(value_info: Any) -> Optional[Shape]:
    tt = value_info.type.tensor_type
    if not tt.HasField("shape"):
        return None
    dims: List[Optional[int]] = []
    for d in tt.shape.dim:
        dims.append(int(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else None)
    return tuple(dims)


class GraphView:
    """Shapes, constants, producers and consumers of one (shape-inferred) ONNX graph."""

    def __init__(self, model: Any, infer: bool = True) -> None:
        onnx = require("onnx", "reading ONNX models")
        self._onnx = onnx
        if infer:
            sort_nodes(model)
            try:
                model = onnx.shape_inference.infer_shapes(model, data_prop=True)
            except Exception as exc:  # noqa: BLE001 - inference errors vary by opset
                log.warning("shape inference failed (%s); shapes are partial", exc)
        self.model = model
        g = model.graph
        self.nodes: List[Any] = list(g.node)
        self.initializers: Dict[str, Any] = {t.name: t for t in g.initializer}
        self.inputs: List[str] = [i.name for i in g.input if i.name not in self.initializers]
        self.outputs: List[str] = [o.name for o in g.output]
        self.opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                         default=0)
        self._vi: Dict[str, Any] = {}
        for vi in list(g.input) + list(g.value_info) + list(g.output):
            self._vi[vi.name] = vi
        self.producer: Dict[str, Any] = {}
        self.consumers: Dict[str, List[Any]] = {}
        for n in self.nodes:
            for o in n.output:
                if o:
                    self.producer[o] = n
            for i in n.input:
                if i:
                    self.consumers.setdefault(i, []).append(n)
        self._names_unique()
        self._const_values: Dict[str, np.ndarray] = {}
        self.constant: Set[str] = self._find_constants()
        if infer:
            self._materialize_constants()

    # ------------------------------------------------------------ structure

    def _names_unique(self) -> None:
        """Give unnamed nodes a stable name (``<op>_<index>``); reports key on node names."""
        seen: Set[str] = set()
        for idx, n in enumerate(self.nodes):
            if not n.name or n.name in seen:
                n.name = "%s_%d" % (n.op_type, idx)
            seen.add(n.name)

    def topo_order(self) -> List[Any]:
        """Nodes in a topological order (ONNX requires one; re-sorted defensively)."""
        order, missing = topo_sort(self.nodes, set(self.inputs) | set(self.initializers))
        if missing:
            log.warning("graph is not a DAG over known tensors (unresolved: %s)",
                        ", ".join(missing[:5]))
        return order

    # ------------------------------------------------------------ tensors

    def shape(self, name: str) -> Optional[Shape]:
        if name in self.initializers:
            return tuple(int(d) for d in self.initializers[name].dims)
        if name in self._const_values:
            return tuple(int(d) for d in self._const_values[name].shape)
        vi = self._vi.get(name)
        return _shape_of(vi) if vi is not None else None

    def dtype(self, name: str) -> Optional[int]:
        """ONNX TensorProto elem type of a tensor, or None if unknown."""
        if name in self.initializers:
            return int(self.initializers[name].data_type)
        vi = self._vi.get(name)
        if vi is None or not vi.type.HasField("tensor_type"):
            return None
        return int(vi.type.tensor_type.elem_type) or None

    def is_float(self, name: str) -> bool:
        tp = self._onnx.TensorProto
        return self.dtype(name) in (tp.FLOAT, tp.FLOAT16, tp.BFLOAT16, tp.DOUBLE)

    def value(self, name: str) -> Optional[np.ndarray]:
        """The numpy value of an initializer or Constant output (None for runtime tensors)."""
        if name in self.initializers:
            return self._onnx.numpy_helper.to_array(self.initializers[name])
        return self._const_values.get(name)

    def activation_inputs(self, node: Any) -> List[str]:
        """Inputs that are runtime tensors (not constants, not omitted)."""
        return [i for i in node.input if i and i not in self.constant]

    # ------------------------------------------------------------ attributes

    def attr(self, node: Any, name: str, default: Any = None) -> Any:
        for a in node.attribute:
            if a.name == name:
                return self._onnx.helper.get_attribute_value(a)
        return default

    def attr_str(self, node: Any, name: str, default: str = "") -> str:
        v = self.attr(node, name, None)
        if v is None:
            return default
        return v.decode() if isinstance(v, bytes) else str(v)

    # ------------------------------------------------------------ constants

    def _find_constants(self) -> Set[str]:
        """Tensors TensorRT knows at build time: initializers, Constant outputs, and
        everything computed only from them or from the static shape of a tensor."""
        const: Set[str] = set(self.initializers)
        for n in self.topo_order():
            if n.op_type in _NOT_FOLDABLE:
                continue
            if n.op_type == "Constant":
                val = self._constant_node_value(n)
                if val is not None:
                    self._const_values[n.output[0]] = val
                const.update(o for o in n.output if o)
                continue
            if n.op_type in ("Shape", "Size") and n.input:
                s = self.shape(n.input[0])
                if s is not None and all(d is not None for d in s):
                    const.update(o for o in n.output if o)
                continue
            ins = [i for i in n.input if i]
            if ins and all(i in const for i in ins):
                const.update(o for o in n.output if o)
        return const

    def _constant_node_value(self, node: Any) -> Optional[np.ndarray]:
        for a in node.attribute:
            if a.name == "value":
                return self._onnx.numpy_helper.to_array(a.t)
            if a.name in ("value_float", "value_int"):
                return np.asarray(self._onnx.helper.get_attribute_value(a))
            if a.name in ("value_floats", "value_ints"):
                return np.asarray(list(self._onnx.helper.get_attribute_value(a)))
        return None

    def _materialize_constants(self) -> None:
        """Evaluate folded subgraphs and re-infer shapes with their values as initializers.

        ONNX shape inference cannot see through shape math such as
        ``Shape -> ScatterND -> Reshape`` (tf2onnx emits it); TensorRT folds it at
        build time and knows every shape, so the predictor must too.
        """
        runtime_outs = [o for n in self.nodes if not self.folded(n) for o in n.output if o]
        if all(self.shape(o) is not None and static(self.shape(o)) for o in runtime_outs):
            return
        values: Dict[str, np.ndarray] = {}
        for n in self.topo_order():
            if self.folded(n) and n.op_type != "Constant":
                values.update(self._evaluate(n, values))
        if not values:
            return
        model = self._onnx.ModelProto()
        model.CopyFrom(self.model)
        keep = [n for n in model.graph.node if not all(o in values for o in n.output if o)]
        del model.graph.node[:]
        model.graph.node.extend(keep)
        model.graph.initializer.extend(self._onnx.numpy_helper.from_array(v, k)
                                       for k, v in values.items())
        try:
            model = self._onnx.shape_inference.infer_shapes(model, data_prop=True)
        except Exception as exc:  # noqa: BLE001
            log.debug("shape inference with folded constants failed: %s", exc)
            return
        for vi in list(model.graph.value_info) + list(model.graph.output):
            old = self._vi.get(vi.name)
            if old is None or not static(_shape_of(old)):
                self._vi[vi.name] = vi

    def _evaluate(self, node: Any, values: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Outputs of one folded node (empty when it cannot be evaluated here)."""
        helper = self._onnx.helper
        feeds: Dict[str, np.ndarray] = {}
        for i in node.input:
            if not i:
                continue
            v = values.get(i)
            v = self.value(i) if v is None else v
            if v is None:
                if node.op_type == "Shape" and static(self.shape(i)):
                    shape = self.shape(i) or ()
                    return {node.output[0]: np.asarray(shape, dtype=np.int64)}
                return {}
            if v.size > 10000000:
                return {}
            feeds[i] = v
        try:
            ref = require("onnx.reference", "evaluating constant subgraphs")
            graph = helper.make_graph(
                [node], "fold",
                [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype),
                                               list(v.shape)) for k, v in feeds.items()],
                [helper.make_tensor_value_info(o, 0, None) for o in node.output if o])
            tiny = helper.make_model(graph, opset_imports=list(self.model.opset_import))
            outs = ref.ReferenceEvaluator(tiny).run(None, feeds)
        except Exception as exc:  # noqa: BLE001 - best effort; shapes stay unknown
            log.debug("cannot evaluate folded node %s: %s", node.name, exc)
            return {}
        return {o: np.asarray(v) for o, v in zip([o for o in node.output if o], outs)}

    def folded(self, node: Any) -> bool:
        """True when every output of ``node`` is a build-time constant (no layer runs)."""
        outs = [o for o in node.output if o]
        return bool(outs) and all(o in self.constant for o in outs)


def tensor_bytes(shape: Optional[Shape], itemsize: int) -> Optional[int]:
    if shape is None or any(d is None for d in shape):
        return None
    n = 1
    for d in shape:
        n *= int(d)  # type: ignore[arg-type]
    return n * itemsize


def static(shape: Optional[Shape]) -> bool:
    return shape is not None and all(d is not None for d in shape)


def fmt_shape(shape: Optional[Iterable[Optional[int]]]) -> str:
    if shape is None:
        return "?"
    return "x".join("?" if d is None else str(d) for d in shape) or "scalar"

"""Tiny ONNX graphs built with onnx.helper for the DLA-placement and sparsity tests.

Every graph is ``input -> [probe node] -> output`` (plus any initializers the
probe needs), so a test can say exactly which node it expects where.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

Dim = Union[int, str, None]
RNG = np.random.default_rng(0)


def init(name: str, value: Any, dtype: Any = np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def weights(name: str, shape: Sequence[int]) -> onnx.TensorProto:
    return init(name, RNG.standard_normal(tuple(shape)).astype(np.float32))


def model(nodes: List[onnx.NodeProto], in_shape: Sequence[Dim], out: Sequence[str] = ("y",),
          inits: Sequence[onnx.TensorProto] = (), opset: int = 13,
          extra_inputs: Optional[Dict[str, Sequence[Dim]]] = None) -> onnx.ModelProto:
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))]
    for name, shape in (extra_inputs or {}).items():
        inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))
    outputs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in out]
    g = helper.make_graph(nodes, "probe", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def probe(op: str, in_shape: Sequence[Dim] = (1, 8, 16, 16), extra: Sequence[str] = (),
          inits: Sequence[onnx.TensorProto] = (), opset: int = 13, **attrs: Any
          ) -> onnx.ModelProto:
    """One node named ``probe`` reading ``x`` (plus ``extra`` inputs) and writing ``y``."""
    node = helper.make_node(op, ["x"] + list(extra), ["y"], name="probe", **attrs)
    return model([node], in_shape, inits=inits, opset=opset)


def conv(kernel: int = 3, cin: int = 8, cout: int = 8, in_shape: Sequence[Dim] = (1, 8, 16, 16),
         **attrs: Any) -> onnx.ModelProto:
    w = weights("w", (cout, cin // int(attrs.get("group", 1)), kernel, kernel))
    return probe("Conv", in_shape, ["w"], [w], **attrs)


def deconv(kernel: int = 2, **attrs: Any) -> onnx.ModelProto:
    return probe("ConvTranspose", (1, 8, 16, 16), ["w"], [weights("w", (8, 8, kernel, kernel))],
                 **attrs)


def resize_scales(scales: Sequence[float], mode: str = "nearest") -> onnx.ModelProto:
    return probe("Resize", (1, 8, 16, 16), ["", "scales"],
                 [init("scales", scales)], mode=mode)


def resize_sizes(sizes: Sequence[int]) -> onnx.ModelProto:
    return probe("Resize", (1, 8, 16, 16), ["", "", "sizes"],
                 [init("sizes", sizes, np.int64)], mode="nearest")


def concat(axis: int) -> onnx.ModelProto:
    return probe("Concat", (1, 8, 16, 16), ["x"], axis=axis)


def clip(lo: float, hi: float) -> onnx.ModelProto:
    return probe("Clip", (1, 8, 16, 16), ["lo", "hi"], [init("lo", lo), init("hi", hi)])


def gather() -> onnx.ModelProto:
    return probe("Gather", (1, 8, 16, 16), ["idx"], [init("idx", [0, 2], np.int64)], axis=1)


def slice_(axes: Sequence[int], steps: Sequence[int] = (1,)) -> onnx.ModelProto:
    return probe("Slice", (2, 8, 16, 16), ["starts", "ends", "axes", "steps"],
                 [init("starts", [0] * len(axes), np.int64),
                  init("ends", [1] * len(axes), np.int64),
                  init("axes", list(axes), np.int64), init("steps", list(steps), np.int64)])


def binary(op: str) -> onnx.ModelProto:
    return probe(op, (1, 8, 16, 16), ["k"], [init("k", np.full((1, 8, 1, 1), 2.0))])


def group_norm() -> onnx.ModelProto:
    return probe("GroupNormalization", (1, 8, 16, 16), ["s", "b"],
                 [init("s", np.ones(8)), init("b", np.zeros(8))], opset=18, num_groups=2)


def instance_norm() -> onnx.ModelProto:
    return probe("InstanceNormalization", (1, 8, 16, 16), ["s", "b"],
                 [init("s", np.ones(8)), init("b", np.zeros(8))])


def reduce_max(axes: Sequence[int]) -> onnx.ModelProto:
    return probe("ReduceMax", (1, 8, 16, 16), axes=list(axes), keepdims=1)


def prelu_runtime_slope() -> onnx.ModelProto:
    node = helper.make_node("PRelu", ["x", "slope"], ["y"], name="probe")
    return model([node], (1, 8, 16, 16), extra_inputs={"slope": (1, 8, 1, 1)})


def qdq() -> onnx.ModelProto:
    return probe("QuantizeLinear", (1, 8, 16, 16), ["s", "z"],
                 [init("s", 0.1), init("z", 0, np.int8)])


def matmul() -> onnx.ModelProto:
    return probe("MatMul", (1, 8, 16, 16), ["w"], [weights("w", (16, 4))])


def pad() -> onnx.ModelProto:
    return probe("Pad", (1, 8, 16, 16), ["p"], [init("p", [0, 0, 1, 1, 0, 0, 1, 1], np.int64)])


def shape_gather_reshape() -> onnx.ModelProto:
    """Shape -> Gather -> Concat -> Reshape: the shape math folds, only Reshape is a layer."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "i0"], ["n"], name="gather_n", axis=0),
        helper.make_node("Concat", ["n", "rest"], ["target"], name="target", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"], name="probe"),
    ]
    return model(nodes, (1, 8, 16, 16), inits=[init("i0", [0], np.int64),
                                               init("rest", [8, 256], np.int64)])


def chain(ops: Sequence[str]) -> onnx.ModelProto:
    """x -> op0 -> op1 ... -> y; ``Conv`` entries get their own 3x3 weights (8 channels)."""
    nodes, inits, prev = [], [], "x"
    for i, op in enumerate(ops):
        out = "y" if i == len(ops) - 1 else "t%d" % i
        if op == "Conv":
            inits.append(weights("w%d" % i, (8, 8, 3, 3)))
            nodes.append(helper.make_node("Conv", [prev, "w%d" % i], [out], name="n%d" % i,
                                          pads=[1, 1, 1, 1]))
        else:
            nodes.append(helper.make_node(op, [prev], [out], name="n%d" % i))
        prev = out
    return model(nodes, (1, 8, 16, 16), inits=inits)


def diamond() -> onnx.ModelProto:
    """conv_a feeds conv_b (DLA) and exp (GPU); add joins both.

    ``add`` must not join conv_a's subgraph: that subgraph reaches it through
    the GPU node ``exp``, which would make the loadable wait on the GPU.
    """
    nodes = [
        helper.make_node("Conv", ["x", "wa"], ["a"], name="conv_a", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["a", "wb"], ["b"], name="conv_b", pads=[1, 1, 1, 1]),
        helper.make_node("Exp", ["a"], ["e"], name="exp"),
        helper.make_node("Add", ["b", "e"], ["y"], name="add"),
    ]
    return model(nodes, (1, 8, 16, 16),
                 inits=[weights("wa", (8, 8, 3, 3)), weights("wb", (8, 8, 3, 3))])


def pad_conv(pads: Sequence[int] = (0, 0, 1, 1, 0, 0, 1, 1), kernel: int = 3) -> onnx.ModelProto:
    """A zero Pad feeding a Conv (the tf2onnx pattern for TF 'SAME' stride-2 convs)."""
    nodes = [helper.make_node("Pad", ["x", "p"], ["xp"], name="probe"),
             helper.make_node("Conv", ["xp", "w"], ["y"], name="conv", strides=[2, 2])]
    return model(nodes, (1, 8, 16, 16), inits=[init("p", list(pads), np.int64),
                                               weights("w", (8, 8, kernel, kernel))])


def scatter_reshape() -> onnx.ModelProto:
    """Reshape whose target comes from Shape -> ScatterND: shape inference alone cannot
    see through it, TensorRT folds it."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("ScatterND", ["s", "idx", "upd"], ["target4"], name="scatter"),
        helper.make_node("Slice", ["target4", "st", "en"], ["target"], name="take3"),
        helper.make_node("Reshape", ["x", "target"], ["r"], name="reshape"),
        helper.make_node("Transpose", ["r"], ["y"], name="probe", perm=[0, 2, 1]),
    ]
    return model(nodes, (1, 8, 16, 16), inits=[
        init("idx", [[2]], np.int64), init("upd", [256], np.int64),
        init("st", [0], np.int64), init("en", [3], np.int64)])

"""The DLA rule functions, one per ONNX op family, and the op -> rule table.

Each function takes the node and a :class:`~edgert.analysis.dla_rules.RuleContext`
and returns a :class:`~edgert.analysis.dla_rules.Verdict` naming the rule, the
offending value and the usual fix.  Sources are in TRT_REFERENCE.md section 2;
rules it marks UNCONFIRMED are returned with ``unconfirmed=True``.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional, Sequence

from edgert.analysis.dla_rules import (
    DLA, MAX_DIM, RuleContext, Verdict, Violation, collect, const_list, dla, gpu, in_range,
)
from edgert.analysis.onnx_graph import fmt_shape
# ---------------------------------------------------------------- convolution


def _pads(c: RuleContext, node: Any, kernel: Sequence[int], strides: Sequence[int],
          dilations: Sequence[int]) -> List[int]:
    """Explicit pads (begin..., end...), resolving auto_pad from the input shape."""
    auto = c.g.attr_str(node, "auto_pad", "NOTSET")
    n = len(kernel)
    if auto in ("NOTSET", ""):
        return [int(p) for p in c.g.attr(node, "pads", [0] * (2 * n))]
    if auto == "VALID":
        return [0] * (2 * n)
    shape = c.g.shape(node.input[0]) or ()
    spatial = list(shape[-n:]) if len(shape) >= n else [None] * n
    begin, end = [], []
    for size, k, s, d in zip(spatial, kernel, strides, dilations):
        if size is None:
            total = (k - 1) * d
        else:
            total = max((int(math.ceil(size / float(s))) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2
        begin.append(big if auto == "SAME_LOWER" else small)
        end.append(small if auto == "SAME_LOWER" else big)
    return begin + end


def _conv_geometry(c: RuleContext, node: Any):  # -> (kernel, strides, dilations, pads)
    wshape = c.g.shape(node.input[1]) or ()
    kernel = [int(k) for k in c.g.attr(node, "kernel_shape", list(wshape[2:]))]
    n = len(kernel)
    strides = [int(s) for s in c.g.attr(node, "strides", [1] * n)]
    dilations = [int(d) for d in c.g.attr(node, "dilations", [1] * n)]
    return kernel, strides, dilations, _pads(c, node, kernel, strides, dilations)


def rule_conv(node: Any, c: RuleContext) -> Verdict:
    wshape = c.g.shape(node.input[1])
    if wshape is None or any(d is None for d in wshape):
        return gpu("conv.weights", "weight shape unknown", unconfirmed=True)
    if len(wshape) not in (3, 4):
        return gpu("conv.2d", "%dD convolution (weights %s); DLA runs 2D only"
                   % (len(wshape) - 2, fmt_shape(wshape)),
                   "fold the extra spatial dim into channels/batch or run it on GPU")
    vs: List[Violation] = []
    kernel, strides, dilations, pads = _conv_geometry(c, node)
    in_range(vs, "conv.kernel", "kernel", kernel, 1, 32,
           "split a large kernel into a stack of smaller ones (e.g. two 3x3 for 5x5)")
    in_range(vs, "conv.stride", "stride", strides, 1, 8,
           "use stride <= 8, or a strided conv followed by pooling")
    in_range(vs, "conv.dilation", "dilation", dilations, 1, 32)
    in_range(vs, "conv.padding", "padding", pads, 0, 31)
    n = len(kernel)
    over = [(p, kernel[i % n]) for i, p in enumerate(pads) if p >= kernel[i % n] and p > 0]
    if over:
        vs.append(Violation("conv.padding", "padding %s must be smaller than the kernel %s"
                            % (pads, kernel), "pad explicitly by at most kernel-1"))
    k_out = int(wshape[0] or 0)
    in_range(vs, "conv.output-maps", "output maps", [k_out], 1, MAX_DIM)
    groups = int(c.g.attr(node, "group", 1))
    in_range(vs, "conv.groups", "groups", [groups], 1, MAX_DIM)
    if node.input[1] not in c.g.constant:
        vs.append(Violation("conv.weights-constant", "weights %r are a runtime tensor; DLA "
                            "compiles weights into the loadable" % node.input[1],
                            unconfirmed=True))
    return collect(vs)


def rule_deconv(node: Any, c: RuleContext) -> Verdict:
    wshape = c.g.shape(node.input[1])
    if wshape is None or any(d is None for d in wshape):
        return gpu("deconv.weights", "weight shape unknown", unconfirmed=True)
    if len(wshape) != 4:
        return gpu("deconv.2d", "weights %s; DLA runs 2D deconvolution only" % fmt_shape(wshape))
    vs: List[Violation] = []
    kernel, strides, dilations, pads = _conv_geometry(c, node)
    big = {64, 96, 128}
    kh, kw = kernel
    special = (kh == 1 and kw in big) or (kw == 1 and kh in big)
    if not special:
        in_range(vs, "deconv.kernel", "kernel", kernel, 1, 32)
        in_range(vs, "deconv.stride", "stride", strides, 1, 32)
    if kh == kw and strides[0] == strides[1] and 23 <= strides[0] <= 32:
        vs.append(Violation("deconv.stride", "square kernel with stride %d (23-32 disabled)"
                            % strides[0]))
    if any(pads):
        vs.append(Violation("deconv.padding", "padding %s must be 0" % pads,
                            "crop the output with a Slice instead of padding"))
    groups = int(c.g.attr(node, "group", 1))
    if groups != 1:
        vs.append(Violation("deconv.groups", "groups %d must be 1" % groups))
    if any(d != 1 for d in dilations):
        vs.append(Violation("deconv.dilation", "dilation %s must be 1" % dilations))
    chans = [int(wshape[0] or 0), int(wshape[1] or 0) * groups]
    in_range(vs, "deconv.channels", "in/out channels", chans, 1, MAX_DIM)
    return collect(vs)


def rule_matmul(node: Any, c: RuleContext) -> Verdict:
    return gpu("fc.matmul", "%s becomes a MatrixMultiply/FullyConnected layer; DLA support "
               "for it on TRT %s" % (node.op_type, c.platform.trt),
               "express it as a 1x1 Conv on an [N,C,1,1] tensor, which DLA runs",
               unconfirmed=True)


# ---------------------------------------------------------------- pooling


def _pool_checks(vs: List[Violation], window: Sequence[int], strides: Sequence[int],
                 pads: Sequence[int]) -> None:
    in_range(vs, "pool.window", "window", window, 1, 8,
           "pool in several steps with windows <= 8")
    in_range(vs, "pool.stride", "stride", strides, 1, 16)
    in_range(vs, "pool.padding", "padding", pads, 0, 7)


def rule_pool(node: Any, c: RuleContext) -> Verdict:
    kernel = [int(k) for k in c.g.attr(node, "kernel_shape", [])]
    if len(kernel) != 2:
        return gpu("pool.2d", "%dD pooling; DLA pools 2D only" % len(kernel))
    strides = [int(s) for s in c.g.attr(node, "strides", [1, 1])]
    dil = [int(d) for d in c.g.attr(node, "dilations", [1, 1])]
    pads = _pads(c, node, kernel, strides, dil)
    vs: List[Violation] = []
    _pool_checks(vs, kernel, strides, pads)
    if any(d != 1 for d in dil):
        vs.append(Violation("pool.dilation", "dilation %s; TensorRT pooling has none" % dil))
    inclusive = int(c.g.attr(node, "count_include_pad", 0)) == 1
    if (node.op_type == "AveragePool" and any(pads) and not inclusive
            and not c.platform.avgpool_exclusive_padding):
        vs.append(Violation("pool.exclusive-padding", "average pool excludes padding "
                            "(count_include_pad=0, pads %s); Xavier supports inclusive padding "
                            "only" % pads, "set count_include_pad=1 or pad explicitly"))
    notes = ["INT8: input and output dynamic ranges must be equal"] if c.int8 and not vs else []
    return collect(vs, notes)


def rule_global_pool(node: Any, c: RuleContext) -> Verdict:
    shape = c.g.shape(node.input[0])
    if shape is None or len(shape) != 4 or shape[2] is None or shape[3] is None:
        return gpu("pool.2d", "input %s is not a static 4D tensor" % fmt_shape(shape))
    window = [int(shape[2]), int(shape[3])]
    vs: List[Violation] = []
    _pool_checks(vs, window, [1, 1], [0, 0])
    if vs:
        return collect(vs)
    if node.op_type == "GlobalMaxPool" and c.platform.reduce_max_confirmed:
        return dla("window %s; as Pooling or as Reduce(MAX) it fits DLA" % window)
    return gpu("pool.global", "window %s fits a Pooling layer, but newer ONNX parsers emit %s "
               "as a Reduce layer, which DLA does not run" % (window, node.op_type),
               "replace it with %s(kernel_shape=%s)" % (node.op_type[6:], window),
               unconfirmed=True)


# ---------------------------------------------------------------- activations, elementwise


def rule_activation(node: Any, c: RuleContext) -> Verdict:
    op = node.op_type
    notes: List[str] = []
    if op in ("Sigmoid", "Tanh") and c.int8:
        notes.append("INT8 %s is upcast to FP16 on DLA" % op)
    if op == "LeakyRelu" and c.platform.name == "orin":
        return dla("Leaky ReLU is in the TRT 8.4 guide's DLA list but not in the 10.3 header's "
                   "(RELU, SIGMOID, TANH, CLIP) [UNCONFIRMED]", unconfirmed=True)
    return dla(*notes)


def rule_clip(node: Any, c: RuleContext) -> Verdict:
    lo: Optional[float]
    hi: Optional[float]
    if c.g.opset < 11:
        lo = float(c.g.attr(node, "min", -3.4e38))
        hi = float(c.g.attr(node, "max", 3.4e38))
    else:
        for idx in (1, 2):
            if len(node.input) > idx and node.input[idx] and c.g.value(node.input[idx]) is None:
                return gpu("activation.clip", "clip bound %r is a runtime tensor" % node.input[idx])
        lo_v, hi_v = const_list(c, node, 1), const_list(c, node, 2)
        lo = lo_v[0] if lo_v else None
        hi = hi_v[0] if hi_v else None
    if lo == 0.0 and (hi is None or hi >= 3.4e38):
        return dla("Clip(min=0) is a ReLU")
    if lo != 0.0 or hi is None or not 1.0 <= hi <= 127.0:
        return gpu("activation.clip", "Clip(min=%s, max=%s); DLA runs clipped ReLU with min 0 "
                   "and max in [1,127]" % (lo, hi), "use Relu/Relu6-style bounds")
    return dla()


def rule_prelu(node: Any, c: RuleContext) -> Verdict:
    if node.input[1] not in c.g.constant:
        return gpu("prelu.slope", "slope %r is a runtime tensor; it must be a build-time "
                   "constant" % node.input[1])
    return dla()


def rule_unsupported_activation(node: Any, c: RuleContext) -> Verdict:
    return gpu("activation.type", "%s is not a DLA activation (ReLU, Sigmoid, TanH, Clip, "
               "Leaky ReLU)" % node.op_type, _ACT_FIX.get(node.op_type, ""))


_ACT_FIX = {
    "HardSwish": "Relu6-based approximation or ReLU",
    "HardSigmoid": "Clip-based approximation or Sigmoid",
    "Elu": "LeakyRelu", "Selu": "LeakyRelu", "Gelu": "Relu or Sigmoid-based approximation",
    "Softplus": "Relu",
}

_ELEMENTWISE_OK = {"Add", "Mul", "Max", "Min", "Sub", "Sum"}


def rule_elementwise(node: Any, c: RuleContext) -> Verdict:
    op = node.op_type
    if op in _ELEMENTWISE_OK:
        notes = []
        if op == "Sub" and c.platform.sub_emulated:
            notes.append("SUB is emulated as Scale + Sum on Xavier")
        if c.int8 and len(c.g.activation_inputs(node)) > 1:
            notes.append("INT8: inputs need equal dynamic ranges")
        return dla(*notes)
    later = op in ("Div", "Pow", "Equal", "Greater", "Less")
    detail = ("%s is not a DLA ElementWise op on TRT %s (DLA: SUM, PROD, MAX, MIN, SUB)"
              % (op, c.platform.trt))
    if later and c.platform.name == "orin":
        detail += "; newer docs add Div/Pow/comparisons, the TRT version that added them"
    fix = {"Div": "multiply by the reciprocal when the divisor is a constant",
           "Pow": "Mul for small integer exponents"}.get(op, "")
    return gpu("elementwise.op", detail, fix, unconfirmed=later and c.platform.name == "orin")


def rule_unary(node: Any, c: RuleContext) -> Verdict:
    if node.op_type == "Abs":
        return dla()
    fix = {"Neg": "Mul by -1", "Reciprocal": "fold into a following Mul/Conv if constant"}
    return gpu("unary.op", "Unary %s; DLA runs Unary ABS only (%s)"
               % (node.op_type.upper(), c.platform.source), fix.get(node.op_type, ""))


# ---------------------------------------------------------------- tensor layout


def _axis(c: RuleContext, node: Any, default: int, rank: int) -> int:
    ax = int(c.g.attr(node, "axis", default))
    return ax + rank if ax < 0 else ax


def rule_concat(node: Any, c: RuleContext) -> Verdict:
    ins = [i for i in node.input if i]
    if len(ins) < 2:
        return Verdict(DLA, notes=["single-input Concat is a no-op"], passthrough=True)
    shape = c.g.shape(node.output[0])
    if shape is None:
        return gpu("concat.shape", "output shape unknown")
    rank = len(shape)
    axis = _axis(c, node, 1, rank)
    if rank < 3 or axis != rank - 3:
        return gpu("concat.axis", "axis %d of a rank-%d tensor; DLA concatenates on the channel "
                   "axis (3rd from last) only" % (axis, rank),
                   "concatenate on channels (reshape/transpose around it), or move it to "
                   "post-processing")
    notes = ["INT8: all inputs and the output need equal dynamic ranges"] if c.int8 else []
    return dla(*notes)


def _resize_scales(c: RuleContext, node: Any) -> Optional[List[float]]:
    if node.op_type == "Upsample" and c.g.opset < 9:
        return [float(s) for s in c.g.attr(node, "scales", [])]
    idx = 1 if node.op_type == "Upsample" or c.g.opset < 11 else 2
    scales = const_list(c, node, idx)
    if scales:
        return scales
    return None


def rule_resize(node: Any, c: RuleContext) -> Verdict:
    mode = c.g.attr_str(node, "mode", "nearest").lower()
    if mode not in ("nearest", "linear", "bilinear"):
        return gpu("resize.mode", "mode %r; DLA resizes nearest or linear" % mode)
    scales = _resize_scales(c, node)
    by_sizes = False
    if scales is None:
        ins, outs = c.g.shape(node.input[0]), c.g.shape(node.output[0])
        if not (ins and outs and all(ins) and all(outs)):
            return gpu("resize.scales", "scales are not build-time constants")
        scales = [float(o) / float(i) for i, o in zip(ins, outs)]  # type: ignore[arg-type]
        by_sizes = True
    if len(scales) != 4:
        return gpu("resize.rank", "%d scales; DLA needs exactly 4" % len(scales))
    vs: List[Violation] = []
    if scales[0] != 1.0 or scales[1] != 1.0:
        vs.append(Violation("resize.scale", "scales %s: the first two must be 1" % scales))
    hi = 32 if mode == "nearest" else 4
    for s in scales[2:]:
        if s != int(s) or not 1 <= s <= hi:
            vs.append(Violation("resize.scale", "H/W scale %g must be an integer in [1,%d] for "
                                "%s" % (s, hi, mode),
                                "resize by an integer factor (pad or crop to a multiple)"))
            break
    if vs:
        return collect(vs)
    note = "coordinate/rounding mode combination not checked (header list not in reference)"
    if by_sizes:
        return gpu("resize.sizes", "given by 'sizes' (effective scales %s): the parser then sets "
                   "output dimensions, which DLA does not support" % scales[2:],
                   "export the Resize with 'scales' instead of 'sizes'", unconfirmed=True)
    return dla(note)


def rule_softmax(node: Any, c: RuleContext) -> Verdict:
    if not c.platform.softmax:
        return gpu("softmax.platform", "SoftMax is not supported on Xavier's DLA (TRT 8.5.2 "
                   "header)", "move the softmax into post-processing (it is monotonic, so "
                   "argmax/top-k need no softmax)")
    shape = c.g.shape(node.input[0])
    if shape is None:
        return gpu("softmax.shape", "input shape unknown")
    rank = len(shape)
    axis = _axis(c, node, -1 if c.g.opset >= 13 else 1, rank)
    non_batch = list(range(max(0, rank - 3), rank))
    if axis not in non_batch:
        return gpu("softmax.axis", "axis %d is a batch dim of a rank-%d tensor; DLA needs C or "
                   "a spatial axis" % (axis, rank))
    size = int(shape[axis] or 0)
    others = [int(shape[d] or 0) for d in non_batch if d != axis]
    if all(o == 1 for o in others):
        if size > MAX_DIM:
            return gpu("softmax.size", "axis size %d > %d" % (size, MAX_DIM))
        return dla()
    if size > 1024:
        return gpu("softmax.size", "axis size %d > 1024 with other dims %s (limit approximate)"
                   % (size, others), unconfirmed=True)
    return dla()


def rule_slice(node: Any, c: RuleContext) -> Verdict:
    shape = c.g.shape(node.input[0])
    rank = len(shape) if shape else 0
    if rank != 4:
        return gpu("slice.rank", "input %s is not 4D" % fmt_shape(shape))
    if c.g.opset < 10:
        axes = [int(a) for a in c.g.attr(node, "axes", list(range(rank)))]
        steps = [1]
    else:
        for idx in range(1, len(node.input)):
            if node.input[idx] and node.input[idx] not in c.g.constant:
                return gpu("slice.constant", "start/size/stride %r is a runtime tensor"
                           % node.input[idx])
        axes = [int(a) for a in (const_list(c, node, 3) or range(rank))]
        steps = [int(s) for s in (const_list(c, node, 4) or [1])]
    axes = [a + rank if a < 0 else a for a in axes]
    if any(s != 1 for s in steps):
        return gpu("slice.stride", "stride %s must be 1" % steps)
    if 0 in axes:
        return gpu("slice.first-dim", "slices the first dim", "slice channels or spatial dims")
    return dla()


def rule_split(node: Any, c: RuleContext) -> Verdict:
    shape = c.g.shape(node.input[0])
    rank = len(shape) if shape else 0
    if rank != 4:
        return gpu("slice.rank", "Split input %s is not 4D" % fmt_shape(shape))
    if _axis(c, node, 0, rank) == 0:
        return gpu("slice.first-dim", "Split on the first dim", "split channels instead")
    return dla()


def rule_shuffle(node: Any, c: RuleContext) -> Verdict:
    if node.op_type == "Reshape" and node.input[1] not in c.g.constant:
        return gpu("shuffle.dynamic", "reshape target %r is a runtime tensor" % node.input[1])
    return dla("Shuffle is listed as DLA-supported in current docs; its limits are "
               "[UNCONFIRMED]", unconfirmed=True)


def rule_reduce(node: Any, c: RuleContext) -> Verdict:
    if node.op_type != "ReduceMax":
        return gpu("reduce.op", "%s; DLA reduces with MAX only" % node.op_type)
    if not c.platform.reduce_max_confirmed:
        return gpu("reduce.platform", "ReduceMax on TRT 8.5 DLA", unconfirmed=True)
    shape = c.g.shape(node.input[0])
    rank = len(shape) if shape else 0
    axes = c.g.attr(node, "axes", None)
    if axes is None:
        axes = const_list(c, node, 1)
    axes = [int(a) + rank if int(a) < 0 else int(a) for a in (axes or range(rank))]
    if rank != 4 or 0 in axes:
        return gpu("reduce.axes", "axes %s of a rank-%d tensor; DLA reduces over C, H, W only"
                   % (axes, rank))
    return dla()


def rule_lrn(node: Any, c: RuleContext) -> Verdict:
    size = int(c.g.attr(node, "size", 0))
    if size not in (3, 5, 7, 9):
        return gpu("lrn.window", "window %d; DLA supports 3, 5, 7 or 9" % size)
    return dla("INT8 LRN is upcast to FP16" if c.int8 else "")


def rule_scale(node: Any, c: RuleContext) -> Verdict:
    shape = c.g.shape(node.input[0])
    if shape is None or len(shape) != 4:
        return gpu("scale.rank", "BatchNormalization on %s; DLA Scale is 2D (4D tensors)"
                   % fmt_shape(shape))
    return dla()


def rule_passthrough(node: Any, c: RuleContext) -> Verdict:
    return Verdict(DLA, notes=["no-op, removed by TensorRT"], passthrough=True)


def rule_norm(node: Any, c: RuleContext) -> Verdict:
    fix = {"GroupNormalization": "replace GroupNorm with BatchNorm (fold frozen statistics "
                                 "into the preceding Conv)",
           "InstanceNormalization": "BatchNorm with frozen statistics",
           "LayerNormalization": "BatchNorm with frozen statistics where the model allows"}
    return gpu("norm.unsupported", "%s is not a DLA layer (TRT runs it as a plugin or GPU "
               "layer)" % node.op_type, fix.get(node.op_type, ""))


def rule_gather(node: Any, c: RuleContext) -> Verdict:
    return gpu("gather.unsupported", "%s is not supported on DLA (%s)"
               % (node.op_type, c.platform.source),
               "use a Slice for contiguous indices or move the indexing to post-processing")


def rule_qdq(node: Any, c: RuleContext) -> Verdict:
    return gpu("qdq.explicit", "explicit Q/DQ: DLA supports implicit quantization only on "
               "TRT 8.5/10.x", "build DLA INT8 from the FP32 ONNX plus a calibration cache "
               "(edgert quantize --trt-cache)")


def _foldable_pad(node: Any, c: RuleContext) -> Optional[str]:
    """Why a zero, spatial-only Pad could merge into every Conv it feeds (None if not)."""
    if c.g.attr_str(node, "mode", "constant") != "constant":
        return None
    pads = (const_list(c, node, 1) if c.g.opset >= 11
            else [float(p) for p in c.g.attr(node, "pads", [])])
    fill = const_list(c, node, 2)
    if not pads or len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or (fill and fill[0]):
        return None
    consumers = c.g.consumers.get(node.output[0], [])
    if not consumers or any(n.op_type != "Conv" for n in consumers):
        return None
    extra = [int(pads[i]) for i in (2, 3, 6, 7)]
    for conv in consumers:
        kernel, _, _, conv_pads = _conv_geometry(c, conv)
        merged = [a + b for a, b in zip(conv_pads, extra)]
        if any(p > 31 or p >= kernel[i % 2] for i, p in enumerate(merged)):
            return None
    return "zero padding %s into %s" % (extra, ", ".join(n.name for n in consumers))


def rule_pad(node: Any, c: RuleContext) -> Verdict:
    fold = _foldable_pad(node, c)
    if fold is None:
        return gpu("pad.unsupported", "Pad is not a DLA layer",
                   "fold the padding into the next Conv's pads (<= 31 and < kernel)")
    if c.fold_pads:
        return dla("--fold-pads: assumes TensorRT merges %s [UNCONFIRMED]" % fold,
                   unconfirmed=True)
    return gpu("pad.unsupported", "Pad is not a DLA layer; TensorRT may merge this %s, "
               "which would put it on DLA (--fold-pads predicts that case)" % fold,
               "fold the pads into the Conv in the ONNX file (e.g. onnx-graphsurgeon), which "
               "makes the placement certain", unconfirmed=True)


RULES: Dict[str, Callable[[Any, RuleContext], Verdict]] = {
    "Conv": rule_conv, "ConvTranspose": rule_deconv,
    "Gemm": rule_matmul, "MatMul": rule_matmul,
    "MaxPool": rule_pool, "AveragePool": rule_pool,
    "GlobalAveragePool": rule_global_pool, "GlobalMaxPool": rule_global_pool,
    "Relu": rule_activation, "Sigmoid": rule_activation, "Tanh": rule_activation,
    "LeakyRelu": rule_activation, "Clip": rule_clip, "PRelu": rule_prelu,
    "BatchNormalization": rule_scale, "LRN": rule_lrn,
    "Concat": rule_concat, "Resize": rule_resize, "Upsample": rule_resize,
    "Softmax": rule_softmax, "Slice": rule_slice, "Split": rule_split,
    "Reshape": rule_shuffle, "Transpose": rule_shuffle, "Flatten": rule_shuffle,
    "Squeeze": rule_shuffle, "Unsqueeze": rule_shuffle,
    "Identity": rule_passthrough, "Dropout": rule_passthrough,
    "Gather": rule_gather, "GatherElements": rule_gather, "GatherND": rule_gather,
    "QuantizeLinear": rule_qdq, "DequantizeLinear": rule_qdq, "Pad": rule_pad,
}
for _op in ("HardSwish", "HardSigmoid", "Elu", "Selu", "Gelu", "Softplus", "Softsign",
            "ThresholdedRelu", "Mish", "Celu"):
    RULES[_op] = rule_unsupported_activation
for _op in ("Add", "Mul", "Max", "Min", "Sub", "Sum", "Div", "Pow", "Mod", "Equal", "Greater",
            "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor", "Mean"):
    RULES[_op] = rule_elementwise
for _op in ("Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Floor", "Ceil", "Round", "Sign",
            "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Erf", "Not"):
    RULES[_op] = rule_unary
for _op in ("ReduceMax", "ReduceMin", "ReduceMean", "ReduceSum", "ReduceProd", "ReduceL1",
            "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"):
    RULES[_op] = rule_reduce
for _op in ("InstanceNormalization", "GroupNormalization", "LayerNormalization"):
    RULES[_op] = rule_norm

"""Make the converted NanoDet ONNX accept any batch size, and prove it.

tf2onnx keeps the TF.js graph's fixed batch of 1: the input is ``[1,3,416,416]``
and the head reshapes to the constants ``[1, 80, -1]`` / ``[1, 44, -1]``.  This
script renames the batch dimension to ``N`` on the input and the six outputs
and turns the leading ``1`` of those two shape constants into ``0`` (ONNX
Reshape: "copy this dimension from the input").  It then runs a batch of two
different images and checks each item equals the batch-1 result of the
original model to 1e-4.  Usage (any venv with onnx + onnxruntime + numpy):

    python scripts/nanodet_dynamic_batch.py IN.onnx OUT.onnx
"""
from __future__ import annotations

import sys

import numpy as np


def make_dynamic(src: str, dst: str) -> None:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(src)
    patched = 0
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype.kind == "i" and arr.shape == (3,) and arr[0] == 1 and arr[2] == -1 \
                and arr[1] in (80, 44):
            arr = arr.copy()
            arr[0] = 0
            init.CopyFrom(numpy_helper.from_array(arr, init.name))
            patched += 1
    if patched != 2:
        raise SystemExit("expected 2 head reshape constants, patched %d: not the model this "
                         "script was written for" % patched)
    for value in list(model.graph.input) + list(model.graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_value")
        dim.dim_param = "N"
    del model.graph.value_info[:]  # stale static shapes; ORT infers them again
    onnx.checker.check_model(model)
    onnx.save(model, dst)


def verify(src: str, dst: str) -> None:
    import onnxruntime as ort

    opts = ["CPUExecutionProvider"]
    one = ort.InferenceSession(src, providers=opts)
    many = ort.InferenceSession(dst, providers=opts)
    name = one.get_inputs()[0].name
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 416, 416)).astype(np.float32)
    batched = many.run(None, {name: x})
    for i in range(2):
        single = one.run(None, {name: x[i:i + 1]})
        for a, b in zip(single, batched):
            err = float(np.abs(a[0] - b[i]).max())
            if err > 1e-4:
                raise SystemExit("batch item %d differs from batch-1 run by %g" % (i, err))
    print("dynamic batch verified: %s" % [tuple(o.shape) for o in batched])


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    make_dynamic(sys.argv[1], sys.argv[2])
    verify(sys.argv[1], sys.argv[2])

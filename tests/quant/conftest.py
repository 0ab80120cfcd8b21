"""Real photos and small generated models for the quantization tests.

Photos come from scikit-image's bundled data (public domain, no download);
crops at several offsets give enough distinct frames for calibration and a
disjoint held-out set.  The quantized classifier is built once per session.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgert.batch import Batch
from edgert.config.schema import PipelineConfig
from edgert.stage import Stage, StageConfig, StageContext

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "immunohistochemistry")
OFFSETS = ((0, 0), (40, 60), (90, 20), (15, 110))


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 real 224x224 BGR crops as PNG files."""
    import cv2
    import skimage.data as data

    folder = tmp_path_factory.mktemp("photos")
    for name in PHOTOS:
        img = getattr(data, name)()
        if img.ndim == 2:
            img = np.stack([img] * 3, -1)
        img = cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2BGR)
        for k, (y, x) in enumerate(OFFSETS):
            crop = cv2.resize(img[y:y + 300, x:x + 300], (224, 224))
            cv2.imwrite(str(folder / ("%s_%d.png" % (name, k))), crop)
    return folder


class ResizeStage(Stage):
    """Test-only preprocess: resize to 64x64, RGB, [0,1], NCHW (never used outside tests)."""

    size = 64

    def process(self, batch: Batch) -> Batch:
        import cv2

        imgs = [cv2.resize(f, (self.size, self.size))[:, :, ::-1] for f in batch.frames]
        batch.tensor = (np.stack(imgs).transpose(0, 3, 1, 2) / 255.0).astype(np.float32)
        batch.transforms = np.tile(np.array([[1.0, 1.0, 0.0, 0.0]]), (len(batch), 1))
        return batch


def resize_stage() -> ResizeStage:
    return ResizeStage(StageConfig(name="pre", kind="t-resize"),
                       StageContext(PipelineConfig(sources=[])))


def classifier(seed: int = 0) -> onnx.ModelProto:
    """conv-relu x2 with a residual add, global pool, Gemm to 10 classes (input 1x3x64x64)."""
    rng = np.random.default_rng(seed)

    def w(name: str, shape: tuple, scale: float) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32),
                                       name)

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1],
                         strides=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Add", ["r2", "r1"], ["a"], name="add"),
        helper.make_node("MaxPool", ["a"], ["p"], name="pool", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Concat", ["p", "p"], ["cat"], name="cat", axis=1),
        helper.make_node("GlobalAveragePool", ["cat"], ["gp"], name="gap"),
        helper.make_node("Flatten", ["gp"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], name="fc", transB=1),
    ]
    inits = [w("w1", (16, 3, 3, 3), 0.3), w("b1", (16,), 0.05), w("w2", (16, 16, 3, 3), 0.1),
             w("b2", (16,), 0.05), w("wf", (10, 32), 0.5), w("bf", (10,), 0.1)]
    g = helper.make_graph(nodes, "classifier",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 64, 64])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


@pytest.fixture(scope="session")
def classifier_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "classifier.onnx"
    onnx.save(classifier(), str(path))
    return path


@pytest.fixture(scope="session")
def quantized(classifier_path: Path, photos: Path,
              tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    """The classifier quantized once (entropy, 12 calibration + 6 held-out photos, keep 1)."""
    from edgert.quant.feeds import Preparer
    from edgert.quant.frames import load_frames
    from edgert.quant.quantize import QuantizeOptions, run_quantize

    out = tmp_path_factory.mktemp("quantized")
    opts = QuantizeOptions(model=classifier_path, out=out / "q.onnx", method="entropy",
                           trt_cache=out / "model.cache", report=out / "report.json",
                           keep_fp32=1, sensitivity_frames=2, min_agreement=0.5)
    frames = load_frames(photos, 12, 6)
    report = run_quantize(opts, frames, Preparer([resize_stage()], "x"))
    return {"report": report, "opts": opts, "frames": frames}


def qdq_nodes(model: onnx.ModelProto) -> List[onnx.NodeProto]:
    return [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]

"""Acceptance on the real demo detector (NanoDet-m, 416) with frames of the street video.

One CLI run (session-scoped: calibration is the expensive part) quantizes through the
demo pipeline's OWN letterbox stage and judges with its NanoDet decoder; the bar is
set above what INT8 reaches so the exit code of the gate is exercised too.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from edgert.quant.qdq import check_trt_qdq
from edgert.quant.trt_cache import read_cache

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "models" / "nanodet-coco.onnx"
VIDEO = REPO / "assets" / "street.mp4"
PIPELINE = REPO / "pipelines" / "demo.yaml"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    out = tmp_path_factory.mktemp("demo-int8")
    cmd = [sys.executable, "-m", "edgert", "quantize", str(MODEL), "--calib", str(VIDEO),
           "--pipeline", str(PIPELINE), "--model", "detector", "--method", "minmax",
           "--count", "8", "--held-out", "4", "--out", str(out / "det-int8.onnx"),
           "--trt-cache", str(out / "det.cache"), "--report", str(out / "report.json"),
           "--min-agreement", "0.995"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=str(out))
    return {"proc": proc, "out": out, "report": json.loads((out / "report.json").read_text())}


def test_gate_exit_code_and_report(demo: Dict[str, Any]) -> None:
    proc, report = demo["proc"], demo["report"]
    assert proc.returncode == 1, proc.stderr
    assert "below --min-agreement" in proc.stderr.strip().splitlines()[-1]
    assert report["passed"] is False and 0.0 <= report["agreement"] < 0.995
    assert report["held_out_frames"] == 4 and report["calibration_frames"] == 8
    assert report["method"] == "minmax"
    assert report["gate"]["task"] == "detect" and report["gate"]["fp32_boxes"] > 0
    assert report["decoder"] == "nanodet" and "letterbox" in report["preprocess"]
    assert "PartitionedCall/MaxPool2d" in report["layers_kept_in_higher_precision"]
    assert report["unquantizable_tensors"] == ["PartitionedCall/PadV2:0"]  # -inf padding
    fr = report["frames"]
    assert not set(fr["calibration_ids"]) & set(fr["held_out_ids"])


def test_qdq_model_runs_and_follows_trt_rules(demo: Dict[str, Any]) -> None:
    path = demo["out"] / "det-int8.onnx"
    m = onnx.load(str(path))
    assert check_trt_qdq(m) == []
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    qdq = [n for n in m.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert len(qdq) > 50
    assert all(not np.any(inits[n.input[2]]) and inits[n.input[2]].dtype == np.int8 for n in qdq)
    dq = {n.output[0]: n for n in qdq if n.op_type == "DequantizeLinear"}
    convs = [n for n in m.graph.node if n.op_type == "Conv" and n.input[1] in dq]
    assert len(convs) == demo["report"]["quantized_layers"] > 30
    for c in convs:
        node = dq[c.input[1]]
        assert [a.i for a in node.attribute if a.name == "axis"] == [0]
        assert inits[node.input[1]].shape == (inits[dq[c.input[1]].input[1]].size,)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outs = sess.run(None, {"input_1:0": np.zeros((1, 3, 416, 416), np.float32)})
    assert len(outs) == 6 and all(np.all(np.isfinite(o)) for o in outs)


def test_calibration_cache_matches_the_fp32_model(demo: Dict[str, Any]) -> None:
    header, scales = read_cache(demo["out"] / "det.cache")
    assert header == "TRT-8502-EntropyCalibration2"
    assert len(scales) > 100
    assert all(math.isfinite(v) and v > 0 for v in scales.values())
    m = onnx.load(str(MODEL))
    names = {i.name for i in m.graph.input} | {o for n in m.graph.node for o in n.output}
    assert set(scales) <= names
    assert "input_1:0" in scales and "PartitionedCall/PadV2:0" not in scales


def test_sparsify_demo_detector_with_pipeline_frames(tmp_path: Path) -> None:
    out, rep = tmp_path / "sparse.onnx", tmp_path / "sparse.json"
    proc = subprocess.run([sys.executable, "-m", "edgert", "sparsify", str(MODEL), "--out",
                           str(out), "--report", str(rep), "--pipeline", str(PIPELINE),
                           "--model", "detector", "--count", "2"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(rep.read_text())
    assert report["pruned_layers"] > 20
    skipped = [layer for layer in report["layers"] if not layer["eligible"]]
    assert skipped and all(s["reason"] for s in skipped)
    assert [s["node"] for s in skipped] == ["Conv__145"]  # the RGB input conv: C=3
    assert "3 not a multiple of 4" in skipped[0]["reason"]
    diff = report["output_difference"]
    assert diff["frames"] == 2 and diff["task"] == "detect"
    assert min(v["cosine"] for v in diff["outputs"].values()) < 1.0
    inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(out)).graph.initializer}
    for layer in report["layers"]:
        if layer["eligible"]:
            w = np.moveaxis(inits[layer["weight"]], layer["axis"], -1)
            groups = w.reshape(-1, w.shape[-1] // 4, 4)
            assert np.all((groups == 0).sum(-1) >= 2), layer["node"]


def test_dla_check_on_the_qdq_model_flags_explicit_quantization(demo: Dict[str, Any]) -> None:
    from edgert.analysis.dla_check import check_model

    report = check_model(demo["out"] / "det-int8.onnx", "orin", precision="int8")
    qdq = [n for n in report.nodes if n.op in ("QuantizeLinear", "DequantizeLinear")
           and n.device != "folded"]
    assert qdq and all(n.rule == "qdq.explicit" for n in qdq)
    convs = [n for n in report.nodes if n.op == "Conv"]
    assert convs and all(n.device == "dla" for n in convs)

"""2:4 pruning: the pattern holds along input channels, skips are explained, cost is measured."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from edgert.analysis.sparsity import is_2_4, prune_2_4, sparsify
from tests.analysis import graphs as G
from tests.quant.conftest import classifier


@pytest.mark.parametrize("shape,axis", [((8, 16, 3, 3), 1), ((16, 8), 1), ((8, 16), 0),
                                        ((4, 4, 1, 1), 1), ((3, 12, 5), 1)])
def test_prune_pattern(shape: tuple, axis: int) -> None:
    w = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    p = prune_2_4(w, axis)
    assert p.shape == w.shape and p.dtype == w.dtype and is_2_4(p, axis)
    kept = p != 0
    assert np.array_equal(p[kept], w[kept])  # survivors unchanged
    # the survivors of each group are its two largest magnitudes
    g = np.moveaxis(np.abs(w), axis, -1).reshape(-1, 4)
    gp = np.moveaxis(np.abs(p), axis, -1).reshape(-1, 4)
    assert np.allclose(np.sort(gp, 1)[:, 2:], np.sort(g, 1)[:, 2:])


def _groups_of_4_along_input_channels(w: np.ndarray, axis: int) -> np.ndarray:
    moved = np.moveaxis(w, axis, -1)
    return moved.reshape(-1, moved.shape[-1] // 4, 4)


def _model_with_all_cases() -> onnx.ModelProto:
    rng = np.random.default_rng(1)

    def w(name: str, shape: tuple) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w_rgb"], ["a"], name="conv_rgb", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["a", "w_dense"], ["b"], name="conv_dense", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["b", "w_dw"], ["c"], name="conv_dw", group=8,
                         pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["c", "w_ex"], ["d"], name="conv_excluded"),
        helper.make_node("GlobalAveragePool", ["d"], ["gp"], name="gap"),
        helper.make_node("Flatten", ["gp"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "w_fc"], ["g"], name="fc_t", transB=1),
        helper.make_node("Gemm", ["g", "w_fc2"], ["h"], name="fc_n"),
        helper.make_node("MatMul", ["h", "w_mm"], ["y"], name="mm"),
    ]
    inits = [w("w_rgb", (8, 3, 3, 3)), w("w_dense", (8, 8, 3, 3)), w("w_dw", (8, 1, 3, 3)),
             w("w_ex", (8, 8, 1, 1)), w("w_fc", (12, 8)), w("w_fc2", (12, 16)),
             w("w_mm", (16, 6))]
    return G.model(nodes, (1, 3, 16, 16), inits=inits)


def test_eligibility_table_and_pattern() -> None:
    model = _model_with_all_cases()
    pruned, plans = sparsify(model, exclude=["conv_excluded"])
    by = {p.node: p for p in plans}
    assert not by["conv_rgb"].eligible and "3 not a multiple of 4" in by["conv_rgb"].reason
    assert not by["conv_dw"].eligible and "grouped" in by["conv_dw"].reason
    assert not by["conv_excluded"].eligible and "excluded" in by["conv_excluded"].reason
    assert {n for n, p in by.items() if p.eligible} == {"conv_dense", "fc_t", "fc_n", "mm"}
    inits = {t.name: numpy_helper.to_array(t) for t in pruned.graph.initializer}
    for name, axis in (("w_dense", 1), ("w_fc", 1), ("w_fc2", 0), ("w_mm", 0)):
        groups = _groups_of_4_along_input_channels(inits[name], axis)
        assert np.all((groups == 0).sum(-1) >= 2), name
    orig = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for name in ("w_rgb", "w_dw", "w_ex"):
        assert np.array_equal(inits[name], orig[name])  # skipped layers untouched
    assert by["conv_dense"].zeros_after == 0.5 and by["conv_dense"].zeros_before == 0.0


def test_quantized_weights_are_skipped_with_reason() -> None:
    nodes = [helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["w"], name="dq", axis=0),
             helper.make_node("Conv", ["x", "w"], ["y"], name="qconv")]
    inits = [numpy_helper.from_array(np.ones((8, 8, 1, 1), np.int8), "wq"),
             numpy_helper.from_array(np.full(8, 0.1, np.float32), "s"),
             numpy_helper.from_array(np.zeros(8, np.int8), "z")]
    _, plans = sparsify(G.model(nodes, (1, 8, 4, 4), inits=inits))
    assert not plans[0].eligible and "before quantizing" in plans[0].reason


def test_cli_table_report_and_pattern(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    onnx.save(_model_with_all_cases(), str(model))
    out, rep = tmp_path / "o" / "sparse.onnx", tmp_path / "o" / "r.json"
    proc = subprocess.run([sys.executable, "-m", "edgert", "sparsify", str(model), "--out",
                           str(out), "--report", str(rep)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "conv_rgb" in proc.stdout and "not measured" in proc.stdout
    report = json.loads(rep.read_text())
    assert report["pruned_layers"] == 5 and report["output_difference"] is None
    skipped = [layer for layer in report["layers"] if not layer["eligible"]]
    assert {s["node"] for s in skipped} == {"conv_rgb", "conv_dw"}
    assert all(s["reason"] for s in skipped)
    assert "fine-tuning" in report["note"]
    pruned = onnx.load(str(out))
    w = {t.name: numpy_helper.to_array(t) for t in pruned.graph.initializer}["w_dense"]
    assert np.all((_groups_of_4_along_input_channels(w, 1) == 0).sum(-1) >= 2)


def test_sparsify_library_difference(photos: Path) -> None:
    """The pruned classifier's outputs differ from dense on real photos, and the report says so."""
    from edgert.quant.feeds import Preparer
    from edgert.quant.frames import load_frames
    from edgert.quant.quantize import judge, prepare_frames
    from edgert.quant.sensitivity import run_all, session
    from tests.quant.conftest import resize_stage

    dense = classifier()
    sparse, plans = sparsify(dense)
    assert [p.node for p in plans if p.eligible] == ["conv2", "fc"]
    prep = Preparer([resize_stage()], "x")
    frames = load_frames(photos, 6, 0)
    data = prepare_frames(frames, prep)
    batches = [prep.batch(f, i) for i, f in enumerate(frames.calibration)]
    result = judge(prep, batches, run_all(session(dense), data.calibration),
                   run_all(session(sparse), data.calibration))
    assert result["task"] == "classify"
    assert 0.0 < result["outputs"]["y"]["relative_l2"]
    assert result["outputs"]["y"]["cosine"] < 1.0

"""DLA placement prediction on small generated graphs, per platform, and on the CLI."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional

import onnx
import pytest

from edgert.analysis.dla_check import check_model, render_table
from tests.analysis import graphs as G

Build = Callable[[], onnx.ModelProto]
BOTH = ("xavier", "orin")

# (id, graph, platforms, expected device of node "probe", rule named in the reason or None)
CASES = [
    ("conv-3x3", lambda: G.conv(3, pads=[1, 1, 1, 1]), BOTH, "dla", None),
    ("conv-kernel-33", lambda: G.conv(33, in_shape=(1, 8, 64, 64)), BOTH, "gpu", "conv.kernel"),
    ("conv-stride-9", lambda: G.conv(3, strides=[9, 9]), BOTH, "gpu", "conv.stride"),
    ("conv-dilation-33", lambda: G.conv(3, dilations=[33, 33], in_shape=(1, 8, 80, 80)), BOTH,
     "gpu", "conv.dilation"),
    ("conv-pad-not-below-kernel", lambda: G.conv(1, pads=[1, 1, 1, 1]), BOTH, "gpu",
     "conv.padding"),
    ("conv-pad-32", lambda: G.conv(32, pads=[32, 32, 32, 32]), BOTH, "gpu", "conv.padding"),
    ("conv-same-upper", lambda: G.conv(3, auto_pad="SAME_UPPER"), BOTH, "dla", None),
    ("conv-output-maps", lambda: G.conv(1, cout=8200), BOTH, "gpu", "conv.output-maps"),
    ("deconv-ok", lambda: G.deconv(2, strides=[2, 2]), BOTH, "dla", None),
    ("deconv-padding", lambda: G.deconv(3, pads=[1, 1, 1, 1]), BOTH, "gpu", "deconv.padding"),
    ("maxpool-3", lambda: G.probe("MaxPool", kernel_shape=[3, 3], strides=[2, 2]), BOTH, "dla",
     None),
    ("maxpool-window-9", lambda: G.probe("MaxPool", kernel_shape=[9, 9]), BOTH, "gpu",
     "pool.window"),
    ("maxpool-stride-17", lambda: G.probe("MaxPool", (1, 8, 40, 40), kernel_shape=[2, 2],
                                          strides=[17, 17]), BOTH, "gpu", "pool.stride"),
    ("avgpool-exclusive-pad", lambda: G.probe("AveragePool", kernel_shape=[3, 3],
                                              pads=[1, 1, 1, 1]), ("xavier",), "gpu",
     "pool.exclusive-padding"),
    ("avgpool-exclusive-pad", lambda: G.probe("AveragePool", kernel_shape=[3, 3],
                                              pads=[1, 1, 1, 1]), ("orin",), "dla", None),
    ("avgpool-inclusive-pad", lambda: G.probe("AveragePool", kernel_shape=[3, 3],
                                              pads=[1, 1, 1, 1], count_include_pad=1),
     BOTH, "dla", None),
    ("global-avgpool-16", lambda: G.probe("GlobalAveragePool"), BOTH, "gpu", "pool.window"),
    ("global-avgpool-7", lambda: G.probe("GlobalAveragePool", (1, 8, 7, 7)), BOTH, "gpu",
     "pool.global"),
    ("concat-channels", lambda: G.concat(1), BOTH, "dla", None),
    ("concat-height", lambda: G.concat(2), BOTH, "gpu", "concat.axis"),
    ("concat-width", lambda: G.concat(-1), BOTH, "gpu", "concat.axis"),
    ("softmax", lambda: G.probe("Softmax", axis=1), ("xavier",), "gpu", "softmax.platform"),
    ("softmax", lambda: G.probe("Softmax", axis=1), ("orin",), "dla", None),
    ("softmax-batch-axis", lambda: G.probe("Softmax", (2, 8, 4, 4, 4), axis=1), ("orin",),
     "gpu", "softmax.axis"),
    ("gather", G.gather, BOTH, "gpu", "gather.unsupported"),
    ("abs", lambda: G.probe("Abs"), BOTH, "dla", None),
    ("exp", lambda: G.probe("Exp"), BOTH, "gpu", "unary.op"),
    ("neg", lambda: G.probe("Neg"), BOTH, "gpu", "unary.op"),
    ("sqrt", lambda: G.probe("Sqrt"), BOTH, "gpu", "unary.op"),
    ("resize-x2-nearest", lambda: G.resize_scales([1, 1, 2, 2]), BOTH, "dla", None),
    ("resize-x1.5", lambda: G.resize_scales([1, 1, 1.5, 1.5]), BOTH, "gpu", "resize.scale"),
    ("resize-x0.5", lambda: G.resize_scales([1, 1, 0.5, 0.5]), BOTH, "gpu", "resize.scale"),
    ("resize-linear-x8", lambda: G.resize_scales([1, 1, 8, 8], "linear"), BOTH, "gpu",
     "resize.scale"),
    ("resize-channels", lambda: G.resize_scales([1, 2, 2, 2]), BOTH, "gpu", "resize.scale"),
    ("resize-sizes", lambda: G.resize_sizes([1, 8, 32, 32]), BOTH, "gpu", "resize.sizes"),
    ("relu6", lambda: G.clip(0.0, 6.0), BOTH, "dla", None),
    ("clip-symmetric", lambda: G.clip(-1.0, 1.0), BOTH, "gpu", "activation.clip"),
    ("hardswish", lambda: G.probe("HardSwish", opset=14), BOTH, "gpu", "activation.type"),
    ("leaky", lambda: G.probe("LeakyRelu", alpha=0.1), BOTH, "dla", None),
    ("sigmoid", lambda: G.probe("Sigmoid"), BOTH, "dla", None),
    ("add", lambda: G.binary("Add"), BOTH, "dla", None),
    ("div", lambda: G.binary("Div"), BOTH, "gpu", "elementwise.op"),
    ("pow", lambda: G.binary("Pow"), BOTH, "gpu", "elementwise.op"),
    ("group-norm", G.group_norm, BOTH, "gpu", "norm.unsupported"),
    ("instance-norm", G.instance_norm, BOTH, "gpu", "norm.unsupported"),
    ("batchnorm", lambda: G.probe("BatchNormalization", (1, 8, 16, 16),
                                  ["s", "b", "m", "v"],
                                  [G.init(n, v) for n, v in (("s", [1] * 8), ("b", [0] * 8),
                                                             ("m", [0] * 8), ("v", [1] * 8))]),
     BOTH, "dla", None),
    ("dynamic-hw", lambda: G.conv(3, in_shape=(1, 8, "H", "W")), BOTH, "gpu",
     "general.dynamic-dims"),
    ("dim-over-8192", lambda: G.conv(1, in_shape=(1, 8, 1, 9000)), BOTH, "gpu",
     "general.dim-limit"),
    ("reduce-max-c", lambda: G.reduce_max([1]), ("orin",), "dla", None),
    ("reduce-max-c", lambda: G.reduce_max([1]), ("xavier",), "gpu", "reduce.platform"),
    ("reduce-mean", lambda: G.probe("ReduceMean", axes=[2, 3]), BOTH, "gpu", "reduce.op"),
    ("slice-channels", lambda: G.slice_([1]), BOTH, "dla", None),
    ("slice-first-dim", lambda: G.slice_([0]), BOTH, "gpu", "slice.first-dim"),
    ("slice-stride-2", lambda: G.slice_([2], [2]), BOTH, "gpu", "slice.stride"),
    ("pad", G.pad, BOTH, "gpu", "pad.unsupported"),
    ("quantize-linear", G.qdq, BOTH, "gpu", "qdq.explicit"),
    ("matmul", G.matmul, BOTH, "gpu", "fc.matmul"),
    ("prelu-runtime-slope", G.prelu_runtime_slope, BOTH, "gpu", "prelu.slope"),
    ("lrn-4", lambda: G.probe("LRN", size=4), BOTH, "gpu", "lrn.window"),
    ("lrn-5", lambda: G.probe("LRN", size=5), BOTH, "dla", None),
    ("topk-unsupported", lambda: G.probe("Erf"), BOTH, "gpu", "unary.op"),
    ("cast", lambda: G.probe("Cast", to=7), BOTH, "gpu", "op.unsupported"),
]

UNCONFIRMED = {"global-avgpool-7", "resize-sizes", "matmul"}


def _ids() -> list:
    return ["%s-%s" % (c[0], "+".join(c[2])) for c in CASES]


@pytest.mark.parametrize("case_id,build,platforms,device,rule", CASES, ids=_ids())
def test_probe_placement(case_id: str, build: Build, platforms: tuple, device: str,
                         rule: Optional[str]) -> None:
    for platform in platforms:
        report = check_model(build(), platform=platform)
        node = report.node("probe")
        assert node.device == device, (platform, node)
        if rule is None:
            assert node.rule == ""
            assert node.reason  # DLA nodes say which limits they were checked against
        else:
            assert node.rule == rule, (platform, node)
            assert rule in node.reason
        if case_id in UNCONFIRMED:
            assert node.unconfirmed and "UNCONFIRMED" in node.reason


def test_rejections_name_the_offending_value_and_fix() -> None:
    node = check_model(G.conv(33, in_shape=(1, 8, 64, 64)), "orin").node("probe")
    assert "[33, 33]" in node.reason and "[1,32]" in node.reason and node.fix
    gn = check_model(G.group_norm(), "xavier").node("probe")
    assert "BatchNorm" in gn.fix and "usual fix" in gn.reason
    res = check_model(G.resize_scales([1, 1, 1.5, 1.5]), "orin").node("probe")
    assert "1.5" in res.reason


def test_div_is_unconfirmed_only_where_newer_docs_disagree() -> None:
    assert not check_model(G.binary("Div"), "xavier").node("probe").unconfirmed
    assert check_model(G.binary("Div"), "orin").node("probe").unconfirmed


def test_int8_notes_equal_ranges_for_concat() -> None:
    node = check_model(G.concat(1), "orin", precision="int8").node("probe")
    assert node.device == "dla" and "dynamic ranges" in node.reason


def test_shape_math_is_folded_not_placed() -> None:
    report = check_model(G.shape_gather_reshape(), "orin")
    assert [report.node(n).device for n in ("shape", "gather_n", "target")] == ["folded"] * 3
    assert report.node("probe").device == "dla"
    assert report.transitions == 2  # input -> DLA, DLA -> output


def test_dynamic_batch_is_pinned_by_batch_option() -> None:
    report = check_model(G.conv(3, in_shape=("N", 8, 16, 16), pads=[1, 1, 1, 1]), "orin",
                         batch=4)
    assert report.node("probe").device == "dla"
    assert report.subgraphs[0].batch == 4


def test_batch_over_4096_is_rejected() -> None:
    report = check_model(G.conv(1, in_shape=("N", 8, 2, 2)), "orin", batch=5000)
    assert report.node("probe").rule == "general.batch"


def test_chain_subgraphs_and_transitions() -> None:
    report = check_model(G.chain(["Conv", "Relu", "Exp", "Conv", "Sigmoid"]), "xavier")
    assert [n.device for n in report.nodes] == ["dla", "dla", "gpu", "dla", "dla"]
    assert [s.nodes for s in report.subgraphs] == [["n0", "n1"], ["n3", "n4"]]
    # x -> dla:0, dla:0 -> gpu (Exp), gpu -> dla:1, dla:1 -> output
    assert report.transitions == 4
    assert [(r.src, r.dst) for r in report.reformat_points] == [
        ("gpu", "dla:0"), ("dla:0", "gpu"), ("gpu", "dla:1"), ("dla:1", "gpu")]


def test_subgraph_is_split_where_joining_would_cycle_through_gpu() -> None:
    report = check_model(G.diamond(), "orin")
    sub = {n.name: n.subgraph for n in report.nodes}
    assert sub["conv_a"] == sub["conv_b"] == 0
    assert sub["exp"] is None and sub["add"] == 1


def test_report_json_shape(tmp_path: Path) -> None:
    report = check_model(G.chain(["Conv", "Exp"]), "orin")
    data = json.loads(report.to_json())
    assert {"nodes", "subgraphs", "transitions"} <= set(data)
    assert set(data["nodes"][0]) >= {"name", "op", "device", "reason"}
    assert data["transitions"] == report.transitions == 2
    table = render_table(report)
    assert "n1" in table and "unary.op" in table and "transitions" in table


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgert", "dla-check", *args],
                          capture_output=True, text=True)


def test_cli_writes_json_and_table(tmp_path: Path) -> None:
    path = tmp_path / "g.onnx"
    onnx.save(G.chain(["Conv", "Exp", "Conv"]), str(path))
    out = tmp_path / "r" / "dla.json"
    proc = _cli(str(path), "--platform", "xavier", "--precision", "int8", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "unary.op" in proc.stdout
    data = json.loads(out.read_text())
    assert data["platform"] == "xavier" and data["precision"] == "int8"
    assert [n["device"] for n in data["nodes"]] == ["dla", "gpu", "dla"]
    assert len(data["subgraphs"]) == 2


def test_cli_missing_model_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from edgert.cli.main import main

    assert main(["dla-check", str(tmp_path / "nope.onnx")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "nope.onnx" in err


def test_zero_pad_before_conv_is_unconfirmed_gpu_or_dla_with_fold_pads() -> None:
    node = check_model(G.pad_conv(), "orin").node("probe")
    assert node.device == "gpu" and node.rule == "pad.unsupported" and node.unconfirmed
    assert "--fold-pads" in node.reason
    folded = check_model(G.pad_conv(), "orin", fold_pads=True)
    assert folded.node("probe").device == "dla" and folded.node("probe").unconfirmed
    assert len(folded.subgraphs) == 1
    # padding the kernel cannot absorb (merged pad >= kernel) stays on GPU, definitively
    big = check_model(G.pad_conv((0, 0, 3, 3, 0, 0, 3, 3)), "orin", fold_pads=True)
    assert big.node("probe").device == "gpu" and not big.node("probe").unconfirmed


def test_shapes_behind_folded_shape_math_are_known() -> None:
    report = check_model(G.scatter_reshape(), "orin")
    assert report.node("scatter").device == "folded"
    node = report.node("probe")
    assert node.device == "dla" and "dynamic" not in node.reason


DEMO = Path(__file__).resolve().parents[2] / "models" / "nanodet-coco.onnx"


@pytest.mark.parametrize("platform", BOTH)
def test_demo_detector(platform: str) -> None:
    report = check_model(DEMO, platform)
    by = {n.name: n for n in report.nodes}
    convs = [n for n in report.nodes if n.op == "Conv"]
    assert convs and all(n.device == "dla" for n in convs)
    for name in ("Resize__116", "Resize__128"):  # bilinear x0.5 in the PAN
        assert by[name].device == "gpu" and by[name].rule == "resize.scale"
        assert "0.5" in by[name].reason
    assert by["PartitionedCall/PadV2"].rule == "pad.unsupported"  # -inf pad before max pool
    assert not by["PartitionedCall/PadV2"].unconfirmed
    assert all(n.device != "gpu" or n.rule for n in report.nodes)
    assert report.transitions == len(report.reformat_points) > 0
    what_if = check_model(DEMO, platform, fold_pads=True)
    assert what_if.count("gpu") == 3 and len(what_if.subgraphs) < len(report.subgraphs)

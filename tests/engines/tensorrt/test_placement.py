"""Placement report from inspector JSON: device, precision, DLA subgraphs, fallback, table."""
from __future__ import annotations

import json

import pytest

from edgert.engines.tensorrt.placement import PlacementReport, parse_inspector, precision_of, table

# Shaped like TensorRT's DETAILED inspector output (keys per [POLY]; names per [I3143]).
DETAILED = {"Layers": [
    {"Name": "images to nvm", "LayerType": "Reformat",
     "Outputs": [{"Name": "x", "Format/Datatype": "Half format NCHW"}]},
    {"Name": "{ForeignNode[conv1...relu7]}", "LayerType": "kDLA",
     "Outputs": [{"Format/Datatype": "Int8 NC/32HW32"}], "TacticValue": "0x0"},
    {"Name": "relu7 from nvm", "LayerType": "Reformat",
     "Outputs": [{"Format/Datatype": "Half format NCHW"}]},
    {"Name": "head/softmax + head/reshape", "LayerType": "Softmax",
     "Outputs": [{"Format/Datatype": "Row major linear FP32"}],
     "TacticName": "sm80_xmma_softmax"},
], "Bindings": ["images", "scores"]}


def test_detailed_json() -> None:
    rep = parse_inspector(json.dumps(DETAILED), "dla:0", network_layers=9,
                          fallback_layers=["head/softmax"])
    assert [(x.device, x.precision) for x in rep.layers] == [
        ("reformat", "fp16"), ("dla", "int8"), ("reformat", "fp16"), ("gpu", "fp32")]
    assert rep.dla_subgraphs == 1 and rep.reformats == 2 and rep.gpu_layers == 1
    assert rep.gpu_fallback == 2  # the fused GPU layer holds two network layers
    assert rep.layers[3].tactic == "sm80_xmma_softmax"
    again = PlacementReport.from_dict(json.loads(json.dumps(rep.to_dict())))
    assert again.to_dict() == rep.to_dict()


def test_names_only_json_and_gpu_engines() -> None:
    rep = parse_inspector(json.dumps({"Layers": ["conv1 + relu1", "head"]}), "gpu")
    assert [x.device for x in rep.layers] == ["gpu", "gpu"]
    assert rep.gpu_fallback == 0  # fallback only means something on DLA
    assert "gpu: 2 engine layers" in rep.summary()


@pytest.mark.parametrize("fmt,prec", [
    ("Int8 NC/32HW32", "int8"), ("Half format NCHW", "fp16"),
    ("Channel major FP16 format where channel % 2 == 0", "fp16"),
    ("Row major linear FP32", "fp32"), ("Int32 NCHW", "int32"), ("Bool", "bool"), ("", "?"),
])
def test_precision_of(fmt: str, prec: str) -> None:
    assert precision_of(fmt) == prec


def test_table_with_times() -> None:
    rep = parse_inspector(json.dumps(DETAILED), "dla:0", 9, ["head/softmax"])
    rep.layers[1].time_ms = 3.0
    rep.layers[3].time_ms = 1.0
    text = table(rep)
    assert "{ForeignNode[conv1...relu7]}" in text and "75.0" in text
    assert text.splitlines()[-1] == "total layer time 4.000 ms per inference"

"""``edgert run`` with ``backend: auto`` on a (stand-in) TensorRT GPU: picks TensorRT, builds on
the cache miss with INT8 calibration through the pipeline's letterbox, runs, then reuses."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from edgert.cli.main import main
from tests.engines.models import tiny_model
from tests.engines.tensorrt.conftest import install
from tests.engines.tensorrt.test_calibdata import _clip

PIPELINE = """
version: 1
sources: [{name: s, uri: "file://%(clip)s"}]
models:
  tiny: {onnx: %(onnx)s, backend: auto, device: gpu, precision: int8, batch: 2,
         int8: {calibration: {source: s, count: 4, cache: %(calib)s}}}
stages:
  - {name: pre, kind: letterbox, input: sources, size: [8, 8]}
  - {name: infer, kind: infer, model: tiny, input: pre}
runtime: {executor: sequential}
"""


def test_run_builds_on_a_cache_miss_then_reuses(monkeypatch: Any, tmp_path: Path,
                                                capsys: Any) -> None:
    p = tmp_path / "p.yaml"
    p.write_text(PIPELINE % {"clip": _clip(tmp_path), "onnx": tiny_model(tmp_path / "t.onnx"),
                             "calib": tmp_path / "t.calib"})
    install("10.3.0", monkeypatch, tmp_path / "cache", integrated=True)
    assert main(["run", str(p)]) == 0
    log = capsys.readouterr().err  # the CLI logs to stderr
    assert "backend auto -> tensorrt" in log
    assert "calibration preprocessing: pre" in log
    assert (tmp_path / "t.calib").read_text().startswith("TRT-100300-EntropyCalibration2\n")
    assert len(list((tmp_path / "cache").glob("tiny-gpu-int8-b2-*.engine"))) == 1
    assert main(["run", str(p)]) == 0
    log = capsys.readouterr().err
    assert "cached engine" in log and "building tiny" not in log

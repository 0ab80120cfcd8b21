"""``edgert inspect`` (from the sidecar without TensorRT; live + --profile with the stand-in)
and ``edgert selftest``."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from edgert.cli.main import main
from edgert.config.schema import ModelConfig
from edgert.engines.tensorrt.compat import detect
from edgert.engines.tensorrt.manager import ensure_engine
from tests.engines.models import tiny_model
from tests.engines.tensorrt.conftest import install


def _built(monkeypatch: Any, tmp_path: Path, version: str = "10.3.0") -> Path:
    trt = install(version, monkeypatch, tmp_path / "cache")
    model = ModelConfig(onnx=tiny_model(tmp_path / "tiny.onnx"), batch=2)
    return ensure_engine("tiny", model, "dla:1", detect(trt)).entry.engine


def test_inspect_engine_from_the_sidecar_without_tensorrt(monkeypatch: Any, tmp_path: Path,
                                                          capsys: Any) -> None:
    engine = _built(monkeypatch, tmp_path)
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # as on a laptop
    out_json = tmp_path / "report.json"
    assert main(["inspect", str(engine), "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "from the sidecar" in out and "{ForeignNode[conv1...relu1]}" in out
    data = json.loads(out_json.read_text())
    assert data["engines"][0]["device"] == "dla:1"
    assert data["engines"][0]["placement"]["dla_subgraphs"] == 1


def test_inspect_profile_adds_layer_times(monkeypatch: Any, tmp_path: Path, capsys: Any) -> None:
    engine = _built(monkeypatch, tmp_path)
    assert main(["inspect", str(engine), "--profile", "--runs", "2"]) == 0
    out = capsys.readouterr().out
    assert "from the engine inspector" in out and "total layer time" in out


def test_inspect_profile_needs_tensorrt(monkeypatch: Any, tmp_path: Path, capsys: Any) -> None:
    engine = _built(monkeypatch, tmp_path)
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    assert main(["inspect", str(engine), "--profile"]) == 1
    assert "python3-libnvinfer" in capsys.readouterr().err


def test_inspect_missing_engine(tmp_path: Path, capsys: Any) -> None:
    assert main(["inspect", str(tmp_path / "nope.engine")]) == 2
    assert "engine not found" in capsys.readouterr().err


def test_selftest_without_tensorrt_one_line_and_exit_1() -> None:
    proc = subprocess.run([sys.executable, "-m", "edgert", "selftest"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "python3-libnvinfer" in lines[0]


def test_selftest_report_with_the_stand_in(monkeypatch: Any, tmp_path: Path, capsys: Any) -> None:
    # The stand-in cannot compute a convolution, so the accuracy checks FAIL here by design;
    # what is checked is that every device x precision is built, run and reported.
    install("8.5.2", monkeypatch, tmp_path / "cache", integrated=True)
    from edgert import cuda

    monkeypatch.setattr(cuda, "backend_name", lambda: "fake")
    report = tmp_path / "selftest.json"
    assert main(["selftest", "--json", str(report)]) == 1
    out = capsys.readouterr().out
    data = json.loads(report.read_text())
    assert [(r["device"], r["precision"]) for r in data["results"]] == [
        ("gpu", "fp16"), ("gpu", "int8"), ("dla:0", "fp16"), ("dla:0", "int8"),
        ("dla:1", "fp16"), ("dla:1", "int8")]
    assert all(r["zero_copy"] for r in data["results"])
    assert data["environment"]["tensorrt"] == "8.5.2"
    assert "selftest: 0 passed, 6 failed" in out and "zero-copy" in out

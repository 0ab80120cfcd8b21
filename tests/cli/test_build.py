"""``edgert build``: one line without TensorRT; with the TensorRT stand-in, tables and the cache."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edgert.cli.main import main
from tests.engines.models import tiny_model
from tests.engines.tensorrt.conftest import install

REPO = Path(__file__).resolve().parents[2]


def test_without_tensorrt_one_line_and_exit_1() -> None:
    proc = subprocess.run([sys.executable, "-m", "edgert", "build",
                           str(REPO / "pipelines" / "xavier-dla.yaml")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and proc.stdout == ""
    assert "python3-libnvinfer" in lines[0] and "--system-site-packages" in lines[0]
    assert "pip install tensorrt" in lines[0]


def test_config_errors_come_first_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nsources: [{name: a, uri: 'file://x.mp4'}]\nmodelz: {}\n")
    proc = subprocess.run([sys.executable, "-m", "edgert", "build", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "unknown section 'modelz'" in proc.stderr


PIPELINE = """
version: 1
sources: [{name: cam, uri: "file://%(video)s"}]
models:
  tiny:
    onnx: %(onnx)s
    backend: tensorrt
    instances: [dla:0, gpu]
    precision: fp16
    batch: 2
    build: {cache_dir: %(cache)s}
  cpu-only: {onnx: %(onnx)s, backend: onnxruntime, device: cpu}
stages:
  - {name: pre, kind: letterbox, input: sources, size: [8, 8]}
  - {name: infer, kind: infer, model: tiny, input: pre}
"""


@pytest.fixture
def pipeline(tmp_path: Path) -> Path:
    onnx = tiny_model(tmp_path / "tiny.onnx")
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    p = tmp_path / "p.yaml"
    p.write_text(PIPELINE % {"video": video, "onnx": onnx, "cache": tmp_path / "engines"})
    return p


def test_build_prints_placement_and_uses_the_cache(pipeline: Path, monkeypatch: Any,
                                                   tmp_path: Path, capsys: Any) -> None:
    install("10.3.0", monkeypatch, tmp_path / "unused")
    assert main(["build", str(pipeline)]) == 0
    out = capsys.readouterr().out
    assert "[1/2] tiny on dla:0 (fp16, batch 2)" in out and "[2/2] tiny on gpu" in out
    assert "{ForeignNode[conv1...relu1]}" in out and "head/softmax" in out
    assert "1 DLA subgraph, 1 GPU fallback layer" in out
    assert "2 engines ready" in out and "built in" in out
    assert len(list((tmp_path / "engines").glob("tiny-*.engine"))) == 2
    assert main(["build", str(pipeline), "--model", "tiny"]) == 0
    assert capsys.readouterr().out.count(": cached ->") == 2


def test_build_max_gpu_fallback_fails_in_one_line(pipeline: Path, monkeypatch: Any,
                                                  tmp_path: Path, capsys: Any) -> None:
    install("8.5.2", monkeypatch, tmp_path / "unused")
    assert main(["build", str(pipeline), "--max-gpu-fallback", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("edgert: 1 layers fall back from dla:0 to the GPU")


def test_build_refusals_are_one_line(pipeline: Path, monkeypatch: Any, tmp_path: Path,
                                     capsys: Any) -> None:
    install("11.2.0", monkeypatch, tmp_path / "unused")
    assert main(["build", str(pipeline)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("edgert: TensorRT 11.2.0 has no DLA support (TensorRT 11.0-11.3 dropped "
                       "DLA; use the JetPack's TensorRT 10.x, or 11.4+ with a Q/DQ model on "
                       "AGX Orin)")


def test_unknown_model_name(pipeline: Path, monkeypatch: Any, tmp_path: Path,
                            capsys: Any) -> None:
    install("10.3.0", monkeypatch, tmp_path / "unused")
    assert main(["build", str(pipeline), "--model", "tinny"]) == 2
    assert "did you mean 'tiny'" in capsys.readouterr().err


def test_inspect_pipeline_after_build(pipeline: Path, monkeypatch: Any, tmp_path: Path,
                                      capsys: Any) -> None:
    install("10.3.0", monkeypatch, tmp_path / "unused")
    assert main(["inspect", str(pipeline)]) == 1  # nothing built yet: says so in one line
    assert "no usable engine (not built); run edgert build" in capsys.readouterr().err
    assert main(["build", str(pipeline), "-q"]) == 0
    capsys.readouterr()
    assert main(["inspect", str(pipeline), "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert out.count("from the sidecar") == 2 and "tiny on dla:0" in out

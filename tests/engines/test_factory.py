from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from edgert.config.schema import ModelConfig
from edgert.engines import factory
from edgert.errors import RuntimeFailure
from tests.media import tiny_model


def _fake_trt(monkeypatch: pytest.MonkeyPatch, result: Any) -> None:
    mod = types.ModuleType("edgert.engines.tensorrt")
    mod.is_available = lambda: result  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "edgert.engines.tensorrt", mod)


def _blocked_trt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "edgert.engines.tensorrt", None)  # import raises


@pytest.mark.parametrize("backend, device, trt, expected", [
    ("onnxruntime", "gpu", (True, "x"), "onnxruntime"),
    ("tensorrt", "cpu", None, "tensorrt"),
    ("auto", "cpu", (True, "x"), "onnxruntime"),
    ("auto", "gpu", (True, "TensorRT 10.3"), "tensorrt"),
    ("auto", "gpu", (False, "no GPU"), "onnxruntime"),
    ("auto", "gpu", None, "onnxruntime"),
    ("auto", "dla:0", True, "tensorrt"),
])
def test_resolve_backend(monkeypatch: pytest.MonkeyPatch, backend: str, device: str, trt: Any,
                         expected: str) -> None:
    if trt is None:
        _blocked_trt(monkeypatch)
    else:
        _fake_trt(monkeypatch, trt)
    cfg = ModelConfig(onnx=Path("m.onnx"), backend=backend, device=device)
    assert factory.resolve_backend("m", cfg, device) == expected


def test_dla_without_tensorrt_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_trt(monkeypatch, (False, "tensorrt is not installed"))
    with pytest.raises(RuntimeFailure, match="dla:1 needs TensorRT.*not installed"):
        factory.resolve_backend("det", ModelConfig(onnx=Path("m.onnx"), device="dla:1"), "dla:1")


def test_create_engine_auto_on_this_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    _blocked_trt(monkeypatch)
    tiny_model(tmp_path / "m.onnx")
    caplog.set_level("INFO", logger="edgert")
    eng = factory.create_engine("m", ModelConfig(onnx=Path("m.onnx")), "gpu", tmp_path)
    assert eng.backend == "onnxruntime"
    assert "backend auto -> onnxruntime" in caplog.text

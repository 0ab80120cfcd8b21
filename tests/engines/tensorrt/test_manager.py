"""Cache miss builds, hit reuses, corrupt engines rebuild with a log line; the loader on top."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgert.config.schema import ModelConfig
from edgert.engines.base import BACKENDS
from edgert.engines.tensorrt import available, manager
from edgert.engines.tensorrt.compat import detect
from edgert.errors import MissingDependency, RuntimeFailure


def _model(onnx: Path, **kw: Any) -> ModelConfig:
    return ModelConfig(onnx=onnx, batch=2, **kw)


def test_miss_builds_then_hit_reuses(trt: Any, onnx_path: Path) -> None:
    feats = detect(trt)
    model = _model(onnx_path)
    first = manager.ensure_engine("tiny", model, "gpu", feats)
    assert first.built and first.entry.engine.is_file()
    assert first.entry.engine.name.startswith("tiny-gpu-fp16-b2-")
    meta = first.meta
    assert meta["inputs"]["tensorrt"] == trt.__version__ and meta["platform"]["gpu"]
    assert meta["placement"]["layers"][0]["name"] == "conv1"
    second = manager.ensure_engine("tiny", model, "gpu", feats)
    assert not second.built and second.entry == first.entry
    timing = list(first.entry.engine.parent.glob("timing-*.cache"))
    assert len(timing) == 1 and trt.__version__ in timing[0].name


def test_dla_build_records_placement(trt_factory: Any, onnx_path: Path) -> None:
    feats = detect(trt_factory("8.5.2"))
    rec = manager.ensure_engine("tiny", _model(onnx_path), "dla:0", feats)
    place = rec.placement
    assert place.dla_subgraphs == 1 and place.gpu_fallback == 1
    assert place.fallback_layers == ["head/softmax"]
    assert "1 DLA subgraph, 1 GPU fallback layer" in place.summary()


def test_post_build_fallback_limit(trt_factory: Any, onnx_path: Path) -> None:
    feats = detect(trt_factory("10.3.0"))
    with pytest.raises(RuntimeFailure, match="max_gpu_fallback 0"):
        manager.ensure_engine("tiny", _model(onnx_path), "dla:0", feats, max_gpu_fallback=0)


def test_corrupt_cached_engine_is_rebuilt_with_a_log_line(trt: Any, onnx_path: Path,
                                                          caplog: Any) -> None:
    feats = detect(trt)
    model = _model(onnx_path)
    first = manager.ensure_engine("tiny", model, "gpu", feats)
    first.entry.engine.write_bytes(b"truncated")
    again = manager.ensure_engine("tiny", model, "gpu", feats)
    assert again.built and "is unusable (size" in caplog.text and "rebuilding" in caplog.text


def test_loader_builds_and_runs(trt: Any, onnx_path: Path) -> None:
    eng = BACKENDS.get("tensorrt")("tiny", _model(onnx_path), "gpu", onnx_path.parent)
    out = eng.infer({"images": np.ones((2, 3, 8, 8), np.float32)})
    assert np.allclose(out["scores"], 1.0)
    d = eng.describe()
    assert d["backend"] == "tensorrt" and d["precision"] == "fp16"
    assert "gpu: 3 engine layers" in d["placement"]


def test_loader_rebuilds_when_deserialize_fails(trt: Any, onnx_path: Path, caplog: Any,
                                                monkeypatch: Any) -> None:
    model = _model(onnx_path)
    rec = manager.ensure_engine("tiny", model, "gpu", detect(trt))
    # Same bytes as recorded (verify passes) but TensorRT refuses them, as after a driver change.
    real = trt.Runtime
    calls = {"n": 0}

    def flaky(logger: Any) -> Any:
        rt = real(logger)
        calls["n"] += 1
        if calls["n"] == 1:
            rt.deserialize_cuda_engine = lambda data: None
        return rt

    monkeypatch.setattr(trt, "Runtime", flaky)
    eng = BACKENDS.get("tensorrt")("tiny", model, "gpu", onnx_path.parent)
    assert "failed to deserialize" in caplog.text and "rebuilding" in caplog.text
    assert eng.max_batch == 2 and rec.entry.engine.is_file()


def test_loader_refuses_cpu(trt: Any, onnx_path: Path) -> None:
    with pytest.raises(RuntimeFailure, match="cannot run on the CPU"):
        BACKENDS.get("tensorrt")("tiny", _model(onnx_path), "cpu", onnx_path.parent)


def test_without_tensorrt(monkeypatch: Any, onnx_path: Path) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails
    assert available() is False
    with pytest.raises(MissingDependency, match="python3-libnvinfer.*pip install tensorrt"):
        BACKENDS.get("tensorrt")("tiny", _model(onnx_path), "gpu", onnx_path.parent)


def test_is_available_says_why(trt: Any, monkeypatch: Any) -> None:
    from edgert import cuda
    from edgert.engines.tensorrt import is_available

    ok, why = is_available()
    assert ok and why == "TensorRT %s on Fake Orin (test stand-in)" % trt.__version__
    monkeypatch.setattr(cuda, "available", lambda: False)
    assert is_available() == (False, "no usable CUDA GPU (or no cuda-python/PyCUDA)")


@pytest.mark.parametrize("cc,warned", [((7, 2), True), ((8, 7), False), ((10, 0), False)])
def test_sparsity_warns_on_volta(trt_factory: Any, onnx_path: Path, caplog: Any,
                                 cc: Any, warned: bool) -> None:
    feats = detect(trt_factory("8.5.2", cc=cc))
    manager.ensure_engine("tiny", _model(onnx_path, sparsity=True), "gpu", feats)
    assert ("no sparse tensor cores" in caplog.text) is warned

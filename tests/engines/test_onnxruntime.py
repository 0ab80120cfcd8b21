from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgert.config.schema import ModelConfig
from edgert.engines.base import BACKENDS
from edgert.engines.onnxruntime import OrtEngine, providers_for
from edgert.errors import RuntimeFailure
from tests.media import tiny_model


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("models")
    tiny_model(d / "dyn.onnx", batch="N")
    tiny_model(d / "b1.onnx", batch=1)
    return d


@pytest.mark.parametrize("name, static", [("dyn.onnx", 0), ("b1.onnx", 1)])
@pytest.mark.parametrize("n", [1, 3])
def test_run_in_place_any_batch(models: Path, name: str, static: int, n: int) -> None:
    eng = OrtEngine("m", models / name, "cpu")
    assert eng.static_batch == static
    assert [s.name for s in eng.inputs] == ["x"] and eng.inputs[0].dtype == np.float32
    io = eng.new_io(4)
    x_buf, y_buf = io.inputs["x"], io.outputs["y"]
    x = np.random.default_rng(n).normal(size=(n, 3, 8, 8)).astype(np.float32)
    io.inputs["x"][:n] = x
    eng.run(io, n)
    assert io.inputs["x"] is x_buf and io.outputs["y"] is y_buf  # nothing reallocated
    assert np.allclose(io.outputs["y"][:n], 2 * x + 1, atol=1e-6)
    assert np.allclose(io.outputs["s"][:n, 0], x.sum(axis=(1, 2, 3)), atol=1e-3)
    assert io.bytes_copied == 0  # CPU provider reads/writes the bound numpy memory
    eng.run(io, n)  # bindings are reused
    assert np.allclose(io.outputs["y"][:n], 2 * x + 1, atol=1e-6)


def test_infer_convenience(models: Path) -> None:
    eng = OrtEngine("m", models / "dyn.onnx", "cpu")
    x = np.ones((2, 3, 8, 8), np.float32)
    out = eng.infer({"x": x})
    assert out["y"].shape == (2, 3, 8, 8) and float(out["y"][0, 0, 0, 0]) == 3.0
    assert eng.describe()["providers"][-1] == "CPUExecutionProvider"


@pytest.mark.parametrize("content", [b"", b"not a protobuf" * 50, b"\x08\x07\x12\x04junk"])
def test_corrupt_onnx_is_one_line_naming_the_file(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    with pytest.raises(RuntimeFailure) as err:
        OrtEngine("detector", bad, "cpu")
    msg = str(err.value)
    assert str(bad) in msg and "detector" in msg and "\n" not in msg


def test_missing_onnx(tmp_path: Path) -> None:
    with pytest.raises(RuntimeFailure, match="ONNX file not found"):
        OrtEngine("d", tmp_path / "nope.onnx", "cpu")


def test_loader_resolves_relative_path_and_refuses_dla(models: Path) -> None:
    load = BACKENDS.get("onnxruntime")
    eng = load("m", ModelConfig(onnx=Path("dyn.onnx"), device="cpu"), "cpu", models)
    assert eng.backend == "onnxruntime"
    with pytest.raises(RuntimeFailure, match="dla:0 needs the tensorrt backend"):
        load("m", ModelConfig(onnx=Path("dyn.onnx")), "dla:0", models)


def test_gpu_device_without_gpu_providers_falls_back_to_cpu() -> None:
    class FakeOrt:
        @staticmethod
        def get_available_providers() -> list:
            return ["CPUExecutionProvider"]

    assert providers_for(FakeOrt, "gpu", "fp16", Path("/tmp")) == ["CPUExecutionProvider"]
    assert providers_for(FakeOrt, "cpu", "fp16", Path("/tmp")) == ["CPUExecutionProvider"]


def test_gpu_providers_ordered_when_present(tmp_path: Path) -> None:
    class FakeOrt:
        @staticmethod
        def get_available_providers() -> list:
            return ["CUDAExecutionProvider", "TensorrtExecutionProvider", "CPUExecutionProvider"]

    got = providers_for(FakeOrt, "gpu", "fp16", tmp_path / "cache")
    assert got[0][0] == "TensorrtExecutionProvider" and got[0][1]["trt_fp16_enable"] is True
    assert got[1:] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert (tmp_path / "cache").is_dir()

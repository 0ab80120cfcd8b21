"""Runtime: name-based I/O, zero copy on integrated GPUs, counted copies on discrete, graphs."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgert.engines.tensorrt.builder import BuildRequest, build, make_logger
from edgert.engines.tensorrt.compat import detect
from edgert.engines.tensorrt.runtime import DeserializeError, TrtEngine
from tests.engines import fake_cuda


def _engine(trt: Any, onnx: Path, device: str = "gpu", batch: int = 4,
            graphs: bool = False) -> TrtEngine:
    req = BuildRequest(name="tiny", onnx=onnx, device=device, precision="fp16", batch=batch)
    plan = build(req, detect(trt), None).plan
    return TrtEngine(plan, device, make_logger([]), {"precision": "fp16"}, cuda_graphs=graphs)


def _feed(io: Any, n: int) -> np.ndarray:
    x = np.arange(n * 3 * 8 * 8, dtype=np.float32).reshape(n, 3, 8, 8)
    io.inputs["images"][:n] = x
    return x.reshape(n, -1).mean(axis=1)


def test_specs_and_max_batch_from_the_profile(trt: Any, onnx_path: Path) -> None:
    eng = _engine(trt, onnx_path)
    assert [(s.name, s.shape) for s in eng.inputs] == [("images", (-1, 3, 8, 8))]
    assert [(s.name, s.shape) for s in eng.outputs] == [("scores", (-1, 4, 8, 8))]
    assert eng.max_batch == 4
    with pytest.raises(Exception, match="exceeds the engine's maximum 4"):
        eng.new_io(5)


def test_discrete_gpu_copies_are_counted(trt: Any, onnx_path: Path) -> None:
    eng = _engine(trt, onnx_path)
    io = eng.new_io(4)
    want = _feed(io, 3)
    eng.run(io, 3)
    assert np.allclose(io.outputs["scores"][:3].reshape(3, -1), want[:, None])
    assert io.bytes_copied == 3 * (3 + 4) * 8 * 8 * 4  # inputs and outputs of 3 rows
    assert eng.context.shapes["images"] == [3, 3, 8, 8]  # set_input_shape per batch
    assert io.extra["device_inputs"]["images"] == io.handle.device["images"].ptr
    eng.close()


def test_integrated_gpu_is_zero_copy(trt_factory: Any, onnx_path: Path) -> None:
    trt = trt_factory("10.3.0", integrated=True)
    eng = _engine(trt, onnx_path)
    io = eng.new_io(2)
    want = _feed(io, 2)
    eng.run(io, 2)
    assert io.bytes_copied == 0
    assert np.allclose(io.outputs["scores"].reshape(2, -1), want[:, None])
    assert eng.describe()["zero_copy"] is True
    assert io.handle.device == {}  # mapped host memory only


def test_inputs_written_on_the_device_are_not_copied_again(trt: Any, onnx_path: Path) -> None:
    eng = _engine(trt, onnx_path)
    io = eng.new_io(1)
    x = np.full((1, 3, 8, 8), 7.0, np.float32)
    fake_cuda.memcpy_htod_async(io.extra["device_inputs"]["images"], x)  # a GPU preprocess
    io.extra["device_written"].add("images")
    eng.run(io, 1)
    assert np.allclose(io.outputs["scores"], 7.0)
    assert io.bytes_copied == 4 * 8 * 8 * 4  # only the output came back
    assert io.extra["device_written"] == set()  # consumed by this run


def test_cuda_graph_captured_once_per_batch_size_then_replayed(trt: Any, onnx_path: Path) -> None:
    eng = _engine(trt, onnx_path, graphs=True)
    io = eng.new_io(4)
    for n in (2, 2, 2, 4):
        want = _feed(io, n)
        eng.run(io, n)
        assert np.allclose(io.outputs["scores"][:n].reshape(n, -1), want[:, None])
    assert fake_cuda.STATE["captures"] == 2  # batch 2 and batch 4
    assert fake_cuda.STATE["launches"] == 2  # the 2nd and 3rd batch-2 runs
    assert eng.describe()["cuda_graphs"] is True


def test_cuda_graph_capture_failure_falls_back(trt_factory: Any, onnx_path: Path,
                                              caplog: Any) -> None:
    trt = trt_factory("8.5.2", graphs=False)
    eng = _engine(trt, onnx_path, graphs=True)
    io = eng.new_io(1)
    for _ in range(3):
        want = _feed(io, 1)
        eng.run(io, 1)
        assert np.allclose(io.outputs["scores"], want[0])
    assert "CUDA graphs unavailable" in caplog.text
    assert caplog.text.count("CUDA graphs unavailable") == 1
    assert eng.describe()["cuda_graphs"] is False


def test_dla_engine_sets_the_core_before_deserializing(trt_factory: Any, onnx_path: Path) -> None:
    trt = trt_factory("10.3.0")
    eng = _engine(trt, onnx_path, device="dla:1")
    assert eng._runtime.DLA_core == 1


def test_deserialize_failure_is_a_typed_error(trt: Any) -> None:
    with pytest.raises(DeserializeError):
        TrtEngine(b"garbage", "gpu", make_logger([]))


def test_profile_reports_per_layer_times(trt: Any, onnx_path: Path) -> None:
    eng = _engine(trt, onnx_path)
    io = eng.new_io(1)
    _feed(io, 1)
    times = eng.profile(io, 1, runs=3)
    assert times == {"conv1": 0.25, "relu1": 0.25, "head/softmax": 0.25}


def test_static_engine_buffers_hold_its_full_batch(trt: Any, tmp_path: Path) -> None:
    from tests.engines.models import tiny_model

    eng = _engine(trt, tiny_model(tmp_path / "static.onnx", dynamic_batch=False, batch=4))
    io = eng.new_io(2)  # the runtime wants 2, the engine always computes 4 rows
    assert io.inputs["images"].shape[0] == 4 and io.outputs["scores"].shape[0] == 4
    want = _feed(io, 2)
    eng.run(io, 2)
    assert np.allclose(io.outputs["scores"][:2].reshape(2, -1), want[:, None])

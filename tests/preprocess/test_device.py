"""edgert.preprocess.device: choosing gpu/cpu for a stage and the GPU stage path
writing into an engine's input (device pointer on the engine's stream, or host array)."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Dict

import numpy as np
import pytest

from edgert import cuda
from edgert.batch import Batch
from edgert.engines.base import EngineIO
from edgert.errors import RuntimeFailure
from edgert.preprocess import device
from tests.cuda.gpu_marks import skip_without_gpu
from tests.preprocess.test_gpu import MEAN, STD, _assert_within_one_lsb, _cpu_reference, _frames


def _host_io(n: int, shape: tuple, extra: Dict[str, Any]) -> EngineIO:
    return EngineIO(capacity=n, inputs={"images": np.full((n,) + shape, np.nan, np.float32)},
                    outputs={}, extra=extra)


@pytest.mark.parametrize(
    "requested,extra,expected",
    [
        ("cpu", {}, "cpu"),
        ("cpu", {"device_inputs": {"images": 1}}, "cpu"),
        ("auto", {}, "cpu"),
    ],
)
def test_resolve_without_cuda_buffers(requested: str, extra: dict, expected: str) -> None:
    assert device.resolve(requested, _host_io(1, (3, 8, 8), extra)) == expected


def test_gpu_requested_without_gpu_is_one_line_error() -> None:
    if cuda.available():
        assert device.resolve("gpu", _host_io(1, (3, 8, 8), {})) == "gpu"
        return
    with pytest.raises(RuntimeFailure, match="device: gpu needs a CUDA GPU"):
        device.resolve("gpu", _host_io(1, (3, 8, 8), {}))


def _cfg(**kw: Any) -> SimpleNamespace:
    base = dict(device="auto", size=[416, 416], channel_order="rgb", layout="nchw",
                dtype="float32", scale=None, mean=list(MEAN), std=list(STD),
                interpolation="linear", pad_value=114)
    base.update(kw)
    return SimpleNamespace(**base)


def _batch(frames: list, io: Any = None) -> Batch:
    n = len(frames)
    b = Batch.of_frames(frames, [0] * n, list(range(n)), [0.0] * n, [0.0] * n)
    if io is not None:
        b.extras["engine_io"] = io
        b.tensor = io.inputs["images"][:n]
    return b


@pytest.mark.parametrize(
    "cfg",
    [_cfg(device="cpu"), _cfg(dtype="uint8", mean=None, std=None), _cfg(interpolation="area"),
     _cfg(device="auto")],
)
def test_stage_device_keeps_cpu_path(cfg: SimpleNamespace) -> None:
    frames = [np.zeros((20, 30, 3), np.uint8)]
    dev = device.StageDevice(cfg, letterbox=True, stage_name="pre")
    assert dev.process(_batch(frames, _host_io(1, (3, 416, 416), {}))) is False
    assert dev.chosen == "cpu"


@pytest.mark.parametrize(
    "cfg,match",
    [(_cfg(device="gpu", dtype="uint8"), "dtype float32/float16, not uint8"),
     (_cfg(device="gpu", interpolation="cubic"), "interpolation linear, not cubic")],
)
def test_stage_device_gpu_refuses_what_the_kernel_cannot_do(cfg: SimpleNamespace,
                                                            match: str) -> None:
    dev = device.StageDevice(cfg, letterbox=True, stage_name="pre")
    with pytest.raises(RuntimeFailure, match="stage 'pre': device: gpu supports " + match):
        dev.process(_batch([np.zeros((20, 30, 3), np.uint8)]))


@pytest.mark.gpu
@skip_without_gpu
class TestOnGpu:
    def test_stage_device_gpu_fills_batch_tensor(self) -> None:
        frames = _frames([(1920, 1080), (1283, 721)])
        cfg = _cfg(device="gpu", scale=1 / 255.0, mean=[m / 255 for m in MEAN],
                   std=[s / 255 for s in STD])
        dev = device.StageDevice(cfg, letterbox=True, stage_name="pre")
        io = _host_io(4, (3, 416, 416), {})
        batch = _batch(frames, io)
        assert dev.process(batch) is True and dev.chosen == "gpu"
        assert batch.transforms is not None and batch.transforms.dtype == np.float64
        assert batch.tensor is not None and np.may_share_memory(batch.tensor, io.inputs["images"])
        for i, f in enumerate(frames):
            ref = _cpu_reference(f, "bgr", (416, 416), True, "rgb", "nchw")
            _assert_within_one_lsb(batch.tensor[i].astype(np.float64), ref, "float32")
        no_io = _batch(frames[:1])
        assert dev.process(no_io) is True and no_io.tensor is not None
        dev.close()

    def test_auto_picks_gpu_for_cuda_engine_buffers(self) -> None:
        io = _host_io(1, (3, 8, 8), {"device_inputs": {"images": 1}})
        assert device.resolve("auto", io) == "gpu"

    def test_writes_engine_device_input_on_its_stream(self) -> None:
        frames = _frames([(1920, 1080), (720, 1280)])
        path = device.GpuStagePath((416, 416), 4, np.dtype(np.float16), "nchw", "rgb",
                                   MEAN, STD, True, 114.0)
        stream = cuda.Stream()
        buf = cuda.DeviceBuffer(path.pre.item_bytes * 4)
        io = _host_io(4, (3, 416, 416), {"device_inputs": {"images": buf.ptr}, "stream": stream})
        transforms = path.run(frames, io, slot=2)
        host = np.empty((4, 3, 416, 416), np.float16)
        cuda.memcpy_dtoh_async(host, buf.ptr, stream)
        stream.synchronize()
        for i, f in enumerate(frames):
            ref = _cpu_reference(f, "bgr", (416, 416), True, "rgb", "nchw")
            _assert_within_one_lsb(host[2 + i].astype(np.float64), ref, "float16")
        assert transforms.shape == (2, 4)
        path.close()

    def test_host_engine_input_gets_a_copy(self) -> None:
        frames = _frames([(1283, 721)])
        path = device.GpuStagePath((320, 320), 2, np.dtype(np.float32), "nchw", "rgb",
                                   MEAN, STD, True, 114.0)
        io = _host_io(2, (3, 320, 320), {})
        path.run(frames, io, io.inputs["images"], slot=1)
        assert np.isnan(io.inputs["images"][0]).all()
        ref = _cpu_reference(frames[0], "bgr", (320, 320), True, "rgb", "nchw")
        _assert_within_one_lsb(io.inputs["images"][1].astype(np.float64), ref, "float32")
        path.close()


@pytest.mark.gpu
@skip_without_gpu
@pytest.mark.parametrize("kind", ["letterbox", "resize"])
@pytest.mark.parametrize("dtype,layout", [("float32", "nchw"), ("float16", "nhwc")])
def test_pipeline_stage_gpu_matches_its_cpu_path(kind: str, dtype: str, layout: str) -> None:
    """The real ``letterbox``/``resize`` stages with ``device: gpu`` vs ``device: cpu`` on
    street-video frames (and photos), the 1-LSB criterion applied to the stage outputs."""
    pytest.importorskip("pydantic")
    from edgert.preprocess.letterbox import Letterbox, LetterboxConfig, Resize, ResizeConfig
    from edgert.stage import StageContext

    stage_cls, cfg_cls = (Letterbox, LetterboxConfig) if kind == "letterbox" else \
        (Resize, ResizeConfig)
    frames = _frames([(1920, 1080), (1283, 721), (720, 1280)])
    outs = {}
    for dev in ("cpu", "gpu"):
        cfg = cfg_cls(name="pre", kind=kind, size=[416, 320], dtype=dtype, layout=layout,
                      scale=1 / 255.0, mean=[m / 255 for m in MEAN[::-1]],
                      std=[s / 255 for s in STD[::-1]], device=dev)
        stage = stage_cls(cfg, StageContext(pipeline=None))  # type: ignore[arg-type]
        batch = stage.process(_batch(frames))
        assert batch.tensor is not None and batch.transforms is not None
        outs[dev] = (batch.tensor.astype(np.float64).copy(), batch.transforms.copy())
        stage.stop()
    np.testing.assert_allclose(outs["gpu"][1], outs["cpu"][1], rtol=1e-6)
    lsb = 1.0 / min(STD)
    diff = np.abs(outs["gpu"][0] - outs["cpu"][0])
    # the CPU stage rounds to fp16 twice (multiply, then add): a few fp16 ulps of slack
    tol = lsb + (8e-3 if dtype == "float16" else 1e-5)
    assert diff.max() <= tol, "max diff %.4f > 1 LSB" % diff.max()

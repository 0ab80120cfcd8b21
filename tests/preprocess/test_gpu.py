"""edgert.preprocess.gpu against the CPU path (OpenCV resize + numpy normalize).

Real photos (scikit-image) and, where the repository has it, frames of the
street video, resized to several input sizes (odd widths, portrait, 1080p, 4K)
and mixed in one batch, so every launch also checks the per-frame descriptors.
Pass criterion from the issue: within 1 LSB of uint8 before normalization.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np
import pytest

from edgert import cuda
from edgert.errors import UsageError
from edgert.preprocess import gpu
from tests.cuda.gpu_marks import skip_without_gpu

REPO = Path(__file__).resolve().parents[2]
MEAN = (103.53, 116.28, 123.675)
STD = (57.375, 57.12, 58.395)
INPUT_SIZES = [(1920, 1080), (1283, 721), (720, 1280), (301, 199), (3840, 2160)]


@pytest.mark.parametrize(
    "size,expected",
    [
        ((1920, 1080), (640, 360, 0, 140)),
        ((1080, 1920), (360, 640, 140, 0)),
        ((640, 640), (640, 640, 0, 0)),
        ((1283, 721), (640, 360, 0, 140)),
        ((301, 199), (640, 423, 0, 108)),
    ],
)
def test_fit_letterbox(size: Tuple[int, int], expected: Tuple[int, int, int, int]) -> None:
    assert gpu.fit(size[0], size[1], 640, 640, letterbox=True) == expected
    assert gpu.fit(size[0], size[1], 640, 640, letterbox=False) == (640, 640, 0, 0)


def test_transform_maps_corners_into_the_letterbox() -> None:
    rw, rh, px, py = gpu.fit(1920, 1080, 416, 416, True)
    sx, sy, tx, ty = gpu.transform(1920, 1080, rw, rh, px, py)
    assert (0 * sx + tx, 0 * sy + ty) == (px, py)
    assert (1920 * sx + tx, 1080 * sy + ty) == pytest.approx((px + rw, py + rh))


def _photos() -> List[np.ndarray]:
    """Real BGR images: scikit-image photos plus street-video frames when present."""
    cv2 = pytest.importorskip("cv2")
    data = pytest.importorskip("skimage.data")
    imgs = []
    for video in sorted((REPO / "assets").glob("*.mp4"))[:1]:  # street video frames first
        cap = cv2.VideoCapture(str(video))
        for _ in range(40):
            ok, frame = cap.read()
            if ok and len(imgs) < 2 and cap.get(cv2.CAP_PROP_POS_FRAMES) % 20 == 1:
                imgs.append(frame)
        cap.release()
    imgs += [np.ascontiguousarray(data.astronaut()[..., ::-1]),
             np.ascontiguousarray(data.coffee()[..., ::-1]),
             np.ascontiguousarray(data.chelsea()[..., ::-1])]
    return imgs


def _frames(sizes: Sequence[Tuple[int, int]]) -> List[np.ndarray]:
    cv2 = pytest.importorskip("cv2")
    photos = _photos()
    return [cv2.resize(photos[i % len(photos)], s, interpolation=cv2.INTER_AREA)
            for i, s in enumerate(sizes)]


def _to_nv12(bgr: np.ndarray) -> np.ndarray:
    cv2 = pytest.importorskip("cv2")
    h, w = bgr.shape[:2]
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
    chroma = i420[h:].reshape(-1)  # I420: U then V, each (h/2, w/2), row layout ignored
    u = chroma[:h * w // 4].reshape(h // 2, w // 2)
    v = chroma[h * w // 4:].reshape(h // 2, w // 2)
    uv = np.stack([u, v], axis=-1).reshape(h // 2, w)
    return np.ascontiguousarray(np.concatenate([i420[:h], uv]))


def _cpu_reference(frame: np.ndarray, fmt: str, out: Tuple[int, int], letterbox: bool,
                   order: str, layout: str, pad: float = 114.0) -> np.ndarray:
    """OpenCV resize into a padded canvas, then numpy normalize/swap/layout (float64)."""
    cv2 = pytest.importorskip("cv2")
    bgr = cv2.cvtColor(frame, cv2.COLOR_YUV2BGR_NV12) if fmt == "nv12" else frame
    stored = "rgb" if fmt == "rgb" else "bgr"
    h, w = bgr.shape[:2]
    rw, rh, px, py = gpu.fit(w, h, out[0], out[1], letterbox)
    canvas = np.full((out[1], out[0], 3), pad, np.float64)
    canvas[py:py + rh, px:px + rw] = cv2.resize(bgr, (rw, rh), interpolation=cv2.INTER_LINEAR)
    if stored != order:
        canvas = canvas[..., ::-1]
    norm = (canvas - np.array(MEAN)) / np.array(STD)
    return norm.transpose(2, 0, 1) if layout == "nchw" else norm


def _run_gpu(pre: gpu.GpuPreprocessor, frames: List[np.ndarray], slot: int) -> np.ndarray:
    """Run into a poisoned buffer (NaN everywhere) and return all items as float64."""
    n_items = pre.max_batch
    out = cuda.DeviceBuffer(pre.item_bytes * n_items)
    cuda.memset_async(out.ptr, 0xFF, out.nbytes, pre.stream)  # NaN in fp16 and fp32
    pre.run(frames, out.ptr, slot=slot)
    host = np.empty(out.nbytes, np.uint8)
    cuda.memcpy_dtoh_async(host, out.ptr, pre.stream)
    pre.stream.synchronize()
    cuda.check_last_error()
    out.free()
    shape = (3, pre.out_h, pre.out_w) if pre.layout == "nchw" else (pre.out_h, pre.out_w, 3)
    return host.view(pre.dtype).reshape((n_items,) + shape).astype(np.float64)


def _assert_within_one_lsb(got: np.ndarray, ref: np.ndarray, dtype: str) -> None:
    assert np.isfinite(got).all(), "unwritten output elements (NaN poison left)"
    lsb = 1.0 / min(STD)
    half_eps = 2.0 ** -11 * 3.0 if dtype == "float16" else 1e-6  # |values| < 3
    diff = np.abs(got - ref)
    assert diff.max() <= lsb + half_eps, "max diff %.4f > 1 LSB (%.4f)" % (diff.max(), lsb)
    assert (diff > 0.5 * lsb).mean() < 0.01  # nearly all pixels are exact


@pytest.mark.gpu
@skip_without_gpu
class TestOnGpu:
    @pytest.mark.parametrize("fmt", ["bgr", "rgb", "nv12"])
    @pytest.mark.parametrize("layout", ["nchw", "nhwc"])
    @pytest.mark.parametrize("dtype", ["float32", "float16"])
    def test_matches_cpu_within_one_lsb(self, fmt: str, layout: str, dtype: str) -> None:
        sizes = [(1920, 1080), (1282, 720), (720, 1280), (300, 198)]  # NV12 needs even sizes
        if fmt != "nv12":
            sizes = INPUT_SIZES[:4]
        frames = _frames(sizes)
        if fmt == "nv12":
            frames = [_to_nv12(f) for f in frames]
        elif fmt == "rgb":
            frames = [np.ascontiguousarray(f[..., ::-1]) for f in frames]
        out = (416, 416) if layout == "nchw" else (640, 384)
        pre = gpu.GpuPreprocessor(out, max_batch=len(frames) + 1, input_format=fmt,
                                  channel_order="rgb", layout=layout, dtype=dtype,
                                  mean=MEAN, std=STD)
        got = _run_gpu(pre, frames, slot=1)
        assert np.isnan(got[0]).all(), "slot 0 must stay untouched"
        for i, frame in enumerate(frames):
            ref = _cpu_reference(frame, fmt, out, True, "rgb", layout)
            _assert_within_one_lsb(got[i + 1], ref, dtype)
        pre.close()

    @pytest.mark.parametrize("size", [(3840, 2160), (1283, 721), (199, 301)])
    @pytest.mark.parametrize("out", [(640, 640), (321, 247)])
    @pytest.mark.parametrize("letterbox", [True, False])
    def test_sizes_stretch_and_odd_outputs(self, size: Tuple[int, int], out: Tuple[int, int],
                                           letterbox: bool) -> None:
        frames = _frames([size])
        pre = gpu.GpuPreprocessor(out, max_batch=1, input_format="bgr", channel_order="bgr",
                                  layout="nchw", dtype="float32", mean=MEAN, std=STD,
                                  letterbox=letterbox, max_frame_size=(640, 480))
        got = _run_gpu(pre, frames, slot=0)  # also grows staging past max_frame_size
        ref = _cpu_reference(frames[0], "bgr", out, letterbox, "bgr", "nchw")
        _assert_within_one_lsb(got[0], ref, "float32")
        pre.close()

    def test_mapped_staging_path_matches(self) -> None:
        """The Jetson path (kernel reads mapped pinned memory, no upload), run on this GPU."""
        frames = _frames([(1920, 1080), (1283, 721)])
        results = []
        for mapped in (False, True):
            pre = gpu.GpuPreprocessor((416, 416), max_batch=2, mean=MEAN, std=STD,
                                      dtype="float16", mapped=mapped)
            assert pre.mapped is mapped
            results.append(_run_gpu(pre, frames, slot=0))
            pre.close()
        np.testing.assert_array_equal(results[0], results[1])
        ref = _cpu_reference(frames[0], "bgr", (416, 416), True, "rgb", "nchw")
        _assert_within_one_lsb(results[1][0], ref, "float16")

    def test_back_to_back_batches_do_not_overwrite_staging(self) -> None:
        """More batches in flight than the ring holds, without syncing in between."""
        frames = _frames([(1920, 1080)] * 6)
        pre = gpu.GpuPreprocessor((320, 320), max_batch=1, mean=MEAN, std=STD)
        outs = [cuda.DeviceBuffer(pre.item_bytes) for _ in frames]
        for f, o in zip(frames, outs):
            pre.run([f], o.ptr)
        pre.stream.synchronize()
        for f, o in zip(frames, outs):
            host = np.empty((3, 320, 320), np.float32)
            cuda.memcpy_dtoh_async(host, o.ptr, pre.stream)
            pre.stream.synchronize()
            ref = _cpu_reference(f, "bgr", (320, 320), True, "rgb", "nchw")
            _assert_within_one_lsb(host.astype(np.float64), ref, "float32")
            o.free()
        pre.close()

    def test_device_frames_and_prepared_graph(self) -> None:
        frames = _frames([(1920, 1080), (1280, 720)])
        pre = gpu.GpuPreprocessor((640, 640), max_batch=2, mean=MEAN, std=STD, dtype="float16")
        dev = [cuda.DeviceBuffer(f.nbytes) for f in frames]
        for f, d in zip(frames, dev):
            cuda.memcpy_htod_async(d.ptr, f, pre.stream)
        dframes = [gpu.DeviceFrame(d.ptr, f.shape[1], f.shape[0], f.shape[1] * 3)
                   for f, d in zip(frames, dev)]
        out = cuda.DeviceBuffer(pre.item_bytes * 2)
        ref = [_cpu_reference(f, "bgr", (640, 640), True, "rgb", "nchw") for f in frames]
        prepared = pre.prepare(dframes, out.ptr)
        runs = [lambda: pre.run_device(dframes, out.ptr), prepared.launch]
        if cuda.supports_graphs():
            cuda.begin_capture(pre.stream)
            prepared.launch()
            graph = cuda.end_capture(pre.stream)
            assert graph is not None
            runs.append(lambda: cuda.launch_graph(graph, pre.stream))
        for run in runs:
            cuda.memset_async(out.ptr, 0xFF, out.nbytes, pre.stream)
            run()
            host = np.empty((2, 3, 640, 640), np.float16)
            cuda.memcpy_dtoh_async(host, out.ptr, pre.stream)
            pre.stream.synchronize()
            for i in range(2):
                _assert_within_one_lsb(host[i].astype(np.float64), ref[i], "float16")
        np.testing.assert_allclose(prepared.transforms[0], [1 / 3, 1 / 3, 0, 140])

    @pytest.mark.parametrize(
        "frames,match",
        [
            ([np.zeros((10, 10), np.uint8)], r"frames\[0\]: expected shape \(H, W, 3\)"),
            ([np.zeros((10, 10, 3), np.float32)], r"frames\[0\]: expected a uint8"),
            ([np.zeros((10, 10, 3), np.uint8)] * 3, r"do not fit max_batch=2"),
        ],
    )
    def test_bad_frames_are_usage_errors(self, frames: List[np.ndarray], match: str) -> None:
        pre = gpu.GpuPreprocessor((64, 64), max_batch=2)
        with pytest.raises(UsageError, match=match):
            pre.run(frames, 0)
        pre.close()
        pre.close()  # idempotent


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"layout": "chw"}, r"layout: 'chw' is not one of nchw, nhwc"),
        ({"input_format": "yuyv"}, r"input_format: 'yuyv'"),
        ({"dtype": "int8"}, r"dtype: 'int8'"),
        ({"std": (1, 0, 1)}, r"std: values must be non-zero"),
    ],
)
def test_bad_options_are_usage_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        gpu.GpuPreprocessor((64, 64), **kwargs)

"""Fused GPU preprocessing: uint8 frames -> normalized model input, one kernel per batch.

On a Jetson the CPU cores cannot resize and normalize several 1080p streams at
30 fps; this does it on the GPU in one pass that reads each source pixel it
needs once and writes the engine's input tensor directly at the batch slot.

Where the input comes from:

* host frames (numpy, from a decoder): packed into pinned staging memory.  On
  an integrated GPU (Jetson, ``cudaDevAttrIntegrated``) the staging is mapped
  and the kernel reads it in place, no copy; on a discrete GPU one async upload
  per batch moves it to device staging on the same stream.
* device frames (NVDEC/VIC surfaces, other kernels): :meth:`run_device`.

Nothing is allocated per frame and the host never waits on the GPU, except
when a staging slot is reused while the GPU is still ``RING`` batches behind
(back-pressure).  ``transforms`` follow :mod:`edgert.batch`:
``x_in = x_src * sx + px``.
"""
from __future__ import annotations

import ctypes
import logging
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from edgert import cuda
from edgert.errors import UsageError
from edgert.preprocess import cuda_kernels as K

log = logging.getLogger("edgert.preprocess.gpu")

RING = 3  # batches in flight before the host waits for the GPU
_FORMATS = ("bgr", "rgb", "nv12")


class DeviceFrame(NamedTuple):
    """A frame already in device memory (packed 3-channel, or NV12 with ``uv_ptr``)."""

    ptr: int
    width: int
    height: int
    pitch: int
    uv_ptr: int = 0
    uv_pitch: int = 0


def fit(width: int, height: int, out_w: int, out_h: int,
        letterbox: bool) -> Tuple[int, int, int, int]:
    """(rw, rh, px, py): resized size and top-left offset inside the output.

    Letterbox keeps the aspect ratio (scale ``min(out_w/w, out_h/h)``, size
    rounded to nearest) and centres the image; stretch fills the output.
    """
    if not letterbox:
        return out_w, out_h, 0, 0
    r = min(out_w / width, out_h / height)
    rw = max(1, min(out_w, int(round(width * r))))
    rh = max(1, min(out_h, int(round(height * r))))
    return rw, rh, (out_w - rw) // 2, (out_h - rh) // 2


def transform(width: int, height: int, rw: int, rh: int, px: int, py: int) -> Tuple[float, ...]:
    """The batch transform (sx, sy, px, py) mapping source pixels into model input."""
    return (rw / width, rh / height, float(px), float(py))


class GpuPreprocessor:
    """Compiled fused kernel plus preallocated staging for one output configuration.

    ``mean``/``std`` are in uint8 units and in *output* channel order (after
    the swap): ``out = (pixel - mean) / std``; ``pad_value`` is the uint8 value
    of letterbox borders before normalization.
    """

    def __init__(self, size: Tuple[int, int], *, max_batch: int = 1,
                 input_format: str = "bgr", channel_order: str = "rgb",
                 layout: str = "nchw", dtype: str = "float32",
                 mean: Sequence[float] = (0.0, 0.0, 0.0),
                 std: Sequence[float] = (255.0, 255.0, 255.0),
                 letterbox: bool = True, pad_value: float = 114.0,
                 max_frame_size: Tuple[int, int] = (1920, 1080),
                 stream: Optional[cuda.Stream] = None, mapped: Optional[bool] = None,
                 cache_dir: Optional[str] = None) -> None:
        _check_choice("input_format", input_format, _FORMATS)
        _check_choice("channel_order", channel_order, ("rgb", "bgr"))
        _check_choice("layout", layout, ("nchw", "nhwc"))
        _check_choice("dtype", dtype, ("float32", "float16"))
        if any(s == 0 for s in std):
            raise UsageError("std: values must be non-zero, got %s" % (list(std),))
        self.out_w, self.out_h = int(size[0]), int(size[1])
        self.max_batch = int(max_batch)
        self.input_format = input_format
        self.letterbox = letterbox
        self.dtype = np.dtype(dtype)
        self.layout = layout
        self.item_bytes = 3 * self.out_w * self.out_h * self.dtype.itemsize
        self._closed = False
        self._own_stream = stream is None
        self.stream = stream if stream is not None else cuda.Stream()
        self.mapped = cuda.is_integrated() if mapped is None else bool(mapped)
        stored = "bgr" if input_format in ("bgr", "nv12") else "rgb"
        opts = ["-DSRC_NV12=%d" % (input_format == "nv12"),
                "-DSWAP_RB=%d" % (stored != channel_order),
                "-DOUT_NCHW=%d" % (layout == "nchw"), "-DOUT_HALF=%d" % (dtype == "float16")]
        self._kernel = cuda.compile_module(K.SOURCE, K.KERNEL_NAME, opts,
                                           cache_dir=cache_dir).function(K.KERNEL_NAME)
        self._params = K.KernelParams()
        self._params.out_w, self._params.out_h = self.out_w, self.out_h
        for c in range(3):
            self._params.mean[c] = float(mean[c])
            self._params.inv_std[c] = 1.0 / float(std[c])
            self._params.pad_value[c] = (float(pad_value) - float(mean[c])) / float(std[c])
        desc_bytes = ctypes.sizeof(K.FrameDesc) * self.max_batch
        self._desc_host = cuda.HostBuffer((RING, desc_bytes), np.uint8)
        self._desc_dev = cuda.DeviceBuffer(desc_bytes)
        self._events = [cuda.Event() for _ in range(RING)]
        self._used = [False] * RING
        self._tick = 0
        self._frame_bytes = _frame_bytes(input_format, *max_frame_size)
        self._staging_host: Optional[cuda.HostBuffer] = None
        self._staging_dev: Optional[cuda.DeviceBuffer] = None

    # -- public API -----------------------------------------------------------
    def run(self, frames: Sequence[np.ndarray], out_ptr: int, slot: int = 0,
            stream: Optional[cuda.Stream] = None) -> np.ndarray:
        """Preprocess host frames into items ``slot..slot+len(frames)-1`` at ``out_ptr``.

        Packed frames are (H, W, 3) uint8; NV12 frames are (H*3/2, W) uint8.
        Returns the (N, 4) float32 transforms.  Asynchronous: the output is
        ready once ``stream`` reaches this point.
        """
        shapes = [self._frame_shape(i, f) for i, f in enumerate(frames)]
        self._check_batch(len(frames), slot)
        ring = self._next_ring()
        stream = stream or self.stream
        total = sum(_frame_bytes(self.input_format, w, h) for w, h in shapes)
        self._ensure_staging(total)
        assert self._staging_host is not None
        host = self._staging_host.array[ring]
        descs: List[DeviceFrame] = []
        offset = 0
        base = self._staging_base(ring)
        for frame, (w, h) in zip(frames, shapes):
            nbytes = _frame_bytes(self.input_format, w, h)
            np.copyto(host[offset:offset + nbytes].reshape(frame.shape), frame)
            descs.append(self._device_frame(base + offset, w, h))
            offset += nbytes
        if not self.mapped and self._staging_dev is not None:
            cuda.memcpy_htod_async(self._staging_dev.ptr, host[:offset], stream)
        return self._launch(descs, out_ptr, slot, stream, ring)

    def run_device(self, frames: Sequence[DeviceFrame], out_ptr: int, slot: int = 0,
                   stream: Optional[cuda.Stream] = None) -> np.ndarray:
        """Like :meth:`run` for frames already in device memory."""
        self._check_batch(len(frames), slot)
        return self._launch(list(frames), out_ptr, slot, stream or self.stream, self._next_ring())

    def prepare(self, frames: Sequence[DeviceFrame], out_ptr: int,
                slot: int = 0) -> "PreparedLaunch":
        """A launch with fixed frames and output (e.g. a pool of decoder surfaces):
        descriptors are uploaded once, so each launch is one kernel call and can
        be captured in a CUDA graph."""
        self._check_batch(len(frames), slot)
        return PreparedLaunch(self, list(frames), out_ptr + slot * self.item_bytes)

    def close(self) -> None:
        """Wait for queued work, then free buffers, events and the stream edgert created."""
        if self._closed:
            return
        self._closed = True
        self.stream.synchronize()
        for buf in (self._desc_host, self._desc_dev, self._staging_host, self._staging_dev):
            if buf is not None:
                buf.free()
        for ev in self._events:
            ev.close()
        if self._own_stream:
            self.stream.close()

    # -- internals --------------------------------------------------------------
    def _frame_shape(self, i: int, frame: np.ndarray) -> Tuple[int, int]:
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
            raise UsageError("frames[%d]: expected a uint8 numpy array, got %s" % (i, _desc(frame)))
        if self.input_format == "nv12":
            if frame.ndim != 2 or frame.shape[0] % 3 or frame.shape[1] % 2:
                raise UsageError("frames[%d]: NV12 needs shape (H*3/2, W) with even H and W, "
                                 "got %s" % (i, frame.shape))
            return frame.shape[1], frame.shape[0] * 2 // 3
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise UsageError("frames[%d]: expected shape (H, W, 3), got %s" % (i, frame.shape))
        return frame.shape[1], frame.shape[0]

    def _check_batch(self, n: int, slot: int) -> None:
        if n < 1 or slot < 0 or slot + n > self.max_batch:
            raise UsageError("batch: %d frames at slot %d do not fit max_batch=%d"
                             % (n, slot, self.max_batch))

    def _next_ring(self) -> int:
        """The next descriptor/staging slot; waits only if the GPU is RING batches behind."""
        ring = self._tick % RING
        self._tick += 1
        if self._used[ring]:
            self._events[ring].synchronize()
        return ring

    def _ensure_staging(self, nbytes: int) -> None:
        """Pinned (mapped on integrated GPUs) staging for RING batches of max frames."""
        need = max(nbytes, self._frame_bytes * self.max_batch)
        if self._staging_host is not None and self._staging_host.shape[1] >= need:
            return
        if self._staging_host is not None:
            log.warning("frames larger than max_frame_size: staging grows to %d bytes", need)
            self.stream.synchronize()
            self._close_staging()
        self._staging_host = cuda.HostBuffer((RING, need), np.uint8, mapped=self.mapped)
        if not self.mapped:
            self._staging_dev = cuda.DeviceBuffer(need)

    def _close_staging(self) -> None:
        for buf in (self._staging_host, self._staging_dev):
            if buf is not None:
                buf.free()
        self._staging_host = self._staging_dev = None

    def _staging_base(self, ring: int) -> int:
        assert self._staging_host is not None
        if self.mapped:
            assert self._staging_host.device_ptr is not None
            return self._staging_host.device_ptr + ring * self._staging_host.shape[1]
        assert self._staging_dev is not None
        return self._staging_dev.ptr

    def _device_frame(self, ptr: int, w: int, h: int) -> DeviceFrame:
        if self.input_format == "nv12":
            return DeviceFrame(ptr, w, h, w, ptr + w * h, w)
        return DeviceFrame(ptr, w, h, 3 * w)

    def fill_descriptors(self, frames: Sequence[DeviceFrame], dest: int) -> np.ndarray:
        """Write FrameDesc structs at host address ``dest``; return the transforms."""
        descs = (K.FrameDesc * len(frames)).from_address(dest)
        out = np.empty((len(frames), 4), np.float32)
        for i, f in enumerate(frames):
            rw, rh, px, py = fit(f.width, f.height, self.out_w, self.out_h, self.letterbox)
            d = descs[i]
            d.src, d.uv, d.w, d.h = f.ptr, f.uv_ptr, f.width, f.height
            d.pitch, d.uv_pitch = f.pitch, f.uv_pitch
            d.scale_x, d.scale_y = f.width / rw, f.height / rh
            d.rx, d.ry, d.rw, d.rh = px, py, rw, rh
            out[i] = transform(f.width, f.height, rw, rh, px, py)
        return out

    def _launch(self, frames: List[DeviceFrame], out_ptr: int, slot: int,
                stream: cuda.Stream, ring: int) -> np.ndarray:
        row = self._desc_host.array[ring]
        transforms = self.fill_descriptors(frames, int(row.ctypes.data))
        nbytes = ctypes.sizeof(K.FrameDesc) * len(frames)
        cuda.memcpy_htod_async(self._desc_dev.ptr, row[:nbytes], stream)
        self.launch_kernel(self._desc_dev.ptr, len(frames), out_ptr + slot * self.item_bytes,
                           stream)
        self._events[ring].record(stream)
        self._used[ring] = True
        return transforms

    def launch_kernel(self, desc_ptr: int, n: int, out_ptr: int, stream: cuda.Stream) -> None:
        """One launch of the fused kernel over ``n`` descriptors at ``desc_ptr``."""
        p = self._params
        p.out, p.frames, p.n = out_ptr, desc_ptr, n
        bx = K.BLOCK[0] * K.PIXELS_PER_THREAD
        grid = ((self.out_w + bx - 1) // bx, (self.out_h + K.BLOCK[1] - 1) // K.BLOCK[1], n)
        self._kernel.launch(grid, K.BLOCK, [p], stream)


class PreparedLaunch:
    """Fixed frames -> fixed output; :meth:`launch` is a single kernel launch."""

    def __init__(self, pre: GpuPreprocessor, frames: List[DeviceFrame], out_ptr: int) -> None:
        self._pre = pre
        self.n = len(frames)
        self.out_ptr = out_ptr
        host = cuda.HostBuffer((ctypes.sizeof(K.FrameDesc) * self.n,), np.uint8)
        self.transforms = pre.fill_descriptors(frames, host.ptr)
        self._desc = cuda.DeviceBuffer(host.nbytes)
        cuda.memcpy_htod_async(self._desc.ptr, host.array, pre.stream)
        pre.stream.synchronize()  # once, at preparation time
        host.free()

    def launch(self, stream: Optional[cuda.Stream] = None) -> None:
        self._pre.launch_kernel(self._desc.ptr, self.n, self.out_ptr, stream or self._pre.stream)

    def close(self) -> None:
        self._desc.free()


def _frame_bytes(fmt: str, w: int, h: int) -> int:
    return w * h * 3 // 2 if fmt == "nv12" else w * h * 3


def _check_choice(key: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise UsageError("%s: %r is not one of %s" % (key, value, ", ".join(allowed)))


def _desc(obj: Union[np.ndarray, object]) -> str:
    if isinstance(obj, np.ndarray):
        return "%s array of shape %s" % (obj.dtype, obj.shape)
    return type(obj).__name__

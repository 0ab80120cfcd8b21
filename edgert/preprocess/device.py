"""Where a preprocess stage runs (``device: auto | gpu | cpu``) and the GPU path it uses.

``auto`` picks the GPU when the engine's buffers live on CUDA: its
:class:`~edgert.engines.base.EngineIO` carries ``extra["device_inputs"]``
(input name -> device address, e.g. TensorRT's bindings or mapped pinned
memory on a Jetson) and ``extra["stream"]`` (the instance's
:class:`edgert.cuda.Stream`).  The fused kernel then writes the input tensor
there on that stream and the engine runs after it with no host wait.  Engines
whose inputs are host arrays (ONNX Runtime on CPU) keep the CPU path under
``auto``; ``device: gpu`` with such an engine still runs the kernel and copies
the result into the host array (useful to check the GPU path anywhere).
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from edgert.errors import RuntimeFailure

log = logging.getLogger("edgert.preprocess.device")

DEVICES = ("auto", "gpu", "cpu")


def engine_device_inputs(io: Any) -> Optional[Tuple[Dict[str, int], Any]]:
    """(input name -> device pointer, stream) when the engine IO lives on CUDA, else None."""
    extra = getattr(io, "extra", None) or {}
    ptrs = extra.get("device_inputs")
    if not ptrs:
        return None
    return dict(ptrs), extra.get("stream")


def resolve(requested: str, io: Any) -> str:
    """``gpu`` or ``cpu`` for this engine IO; ``gpu`` without CUDA is a one-line error."""
    from edgert import cuda

    if requested == "cpu":
        return "cpu"
    on_cuda = engine_device_inputs(io) is not None
    if requested == "auto":
        chosen = "gpu" if on_cuda and cuda.available() and cuda.nvrtc_available() else "cpu"
        log.info("preprocess device: auto -> %s%s", chosen,
                 "" if chosen == "gpu" or not on_cuda else " (NVRTC unavailable)")
        return chosen
    if not cuda.available() or not cuda.nvrtc_available():
        raise RuntimeFailure("preprocess device: gpu needs a CUDA GPU and cuda-python's NVRTC "
                             "(pip install 'edgert[trt]'); use device: cpu or auto")
    return "gpu"


class GpuStagePath:
    """The GPU half of a preprocess stage: one :class:`GpuPreprocessor` per stage,
    writing into the engine's input at the batch slot."""

    def __init__(self, size: Tuple[int, int], max_batch: int, dtype: np.dtype, layout: str,
                 channel_order: str, mean: Sequence[float], std: Sequence[float],
                 letterbox: bool, pad_value: float, input_format: str = "bgr") -> None:
        from edgert.preprocess.gpu import GpuPreprocessor

        self.pre = GpuPreprocessor(
            size, max_batch=max_batch, input_format=input_format, channel_order=channel_order,
            layout=layout, dtype=np.dtype(dtype).name, mean=mean, std=std,
            letterbox=letterbox, pad_value=pad_value)
        self._scratch: Optional[Any] = None

    def run(self, frames: Sequence[np.ndarray], io: Any = None,
            host_out: Optional[np.ndarray] = None, slot: int = 0) -> np.ndarray:
        """Preprocess ``frames``; return the (N, 4) transforms.

        With CUDA engine buffers (``io.extra["device_inputs"]``) the kernel writes the
        engine input on the engine's stream (no host wait); otherwise it writes device
        scratch that is copied into ``host_out`` (items ``slot..``) before returning.
        """
        from edgert import cuda

        target = engine_device_inputs(io)
        if target is not None:
            ptrs, stream = target
            name = _input_name(io, ptrs, host_out)
            transforms = self.pre.run(frames, ptrs[name], slot, stream=stream)
            # Tell the engine this input is already on the device (no host->device copy).
            io.extra.setdefault("device_written", set()).add(name)
            return transforms
        if host_out is None:
            raise RuntimeFailure("GPU preprocess has nowhere to write: no engine input")
        if self._scratch is None:
            self._scratch = cuda.DeviceBuffer(self.pre.item_bytes * self.pre.max_batch)
        transforms = self.pre.run(frames, self._scratch.ptr, 0)
        dst = host_out[slot:slot + len(frames)]
        if not dst.flags.c_contiguous:
            raise RuntimeFailure("preprocess output tensor is not contiguous")
        cuda.memcpy_dtoh_async(dst, self._scratch.ptr, self.pre.stream)
        self.pre.stream.synchronize()  # the host engine reads it next
        return transforms

    def close(self) -> None:
        if self._scratch is not None:
            self._scratch.free()
            self._scratch = None
        self.pre.close()


def _input_name(io: Any, ptrs: Dict[str, int], host_out: Optional[np.ndarray]) -> str:
    """The engine input this stage feeds: the only one, or the one ``host_out`` views."""
    if len(ptrs) == 1:
        return next(iter(ptrs))
    inputs = getattr(io, "inputs", {}) or {}
    for name in ptrs:
        arr = inputs.get(name)
        if host_out is not None and arr is not None and np.may_share_memory(arr, host_out):
            return name
    raise RuntimeFailure("GPU preprocess: the engine has inputs %s; cannot tell which one "
                         "this stage feeds" % sorted(ptrs))


class StageDevice:
    """The ``device:`` choice of one preprocess stage, made on its first batch (when the
    runtime's engine IO is known) and kept; owns the GPU path when it is chosen.

    Reads the stage config's ``device``, ``size``, ``channel_order``, ``layout``,
    ``dtype``, ``scale``, ``mean``, ``std``, ``interpolation`` and ``pad_value``; the
    stage's ``(pixel * scale - mean) / std`` becomes the kernel's
    ``(pixel - mean/scale) / (std/scale)``.
    """

    def __init__(self, config: Any, letterbox: bool, stage_name: str) -> None:
        self.cfg = config
        self.letterbox = letterbox
        self.stage_name = stage_name
        self.chosen: Optional[str] = None
        self.path: Optional[GpuStagePath] = None
        self._scratch: Optional[np.ndarray] = None

    def process(self, batch: Any) -> bool:
        """Preprocess ``batch`` on the GPU and return True, or return False for the CPU path."""
        io = batch.extras.get("engine_io")
        if self.chosen is None:
            self.chosen = self._choose(io)
        if self.chosen != "gpu":
            return False
        n = len(batch.frames)
        if self.path is None or self.path.pre.max_batch < n:
            self._open(max(n, int(getattr(io, "capacity", 0) or 0)))
        assert self.path is not None
        host_out = batch.tensor
        if host_out is None and engine_device_inputs(io) is None:
            host_out = self._host_scratch(n)
        transforms = self.path.run(batch.frames, io, host_out)
        batch.tensor = host_out[:n] if host_out is not None else None
        batch.transforms = transforms.astype(np.float64)
        return True

    def _host_scratch(self, n: int) -> np.ndarray:
        """Output tensor reused across batches when the runtime provides none."""
        if self._scratch is None or self._scratch.shape[0] < n:
            w, h = self.cfg.size
            shape = (3, h, w) if self.cfg.layout == "nchw" else (h, w, 3)
            self._scratch = np.empty((n,) + shape, np.dtype(self.cfg.dtype))
        return self._scratch[:n]

    def _choose(self, io: Any) -> str:
        requested = getattr(self.cfg, "device", "auto")
        unsupported = self._gpu_unsupported()
        if unsupported and requested == "gpu":
            raise RuntimeFailure("stage '%s': device: gpu %s" % (self.stage_name, unsupported))
        if unsupported:
            return "cpu"
        chosen = resolve(requested, io)
        log.info("stage '%s': preprocess on %s", self.stage_name, chosen)
        return chosen

    def _gpu_unsupported(self) -> str:
        if self.cfg.dtype not in ("float32", "float16"):
            return "supports dtype float32/float16, not %s" % self.cfg.dtype
        if self.cfg.interpolation != "linear":
            return "supports interpolation linear, not %s" % self.cfg.interpolation
        if self.cfg.scale is not None and float(self.cfg.scale) <= 0:
            return "needs scale > 0"
        return ""

    def _open(self, max_batch: int) -> None:
        if self.path is not None:
            self.path.close()
        scale = 1.0 if self.cfg.scale is None else float(self.cfg.scale)
        mean = [0.0] * 3 if self.cfg.mean is None else [float(m) for m in self.cfg.mean]
        std = [1.0] * 3 if self.cfg.std is None else [float(s) for s in self.cfg.std]
        self.path = GpuStagePath(
            (int(self.cfg.size[0]), int(self.cfg.size[1])), max_batch,
            np.dtype(self.cfg.dtype), self.cfg.layout, self.cfg.channel_order,
            [m / scale for m in mean], [s / scale for s in std], self.letterbox,
            float(getattr(self.cfg, "pad_value", 0)))

    def close(self) -> None:
        if self.path is not None:
            self.path.close()
            self.path = None

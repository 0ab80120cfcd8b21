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

    def run(self, frames: Sequence[np.ndarray], io: Any, input_name: str,
            slot: int = 0) -> np.ndarray:
        """Preprocess ``frames`` into ``io``'s input ``input_name``; return the transforms."""
        from edgert import cuda

        target = engine_device_inputs(io)
        if target is not None and input_name in target[0]:
            ptrs, stream = target
            return self.pre.run(frames, ptrs[input_name], slot, stream=stream)
        host = io.inputs[input_name]
        if self._scratch is None:
            self._scratch = cuda.DeviceBuffer(self.pre.item_bytes * self.pre.max_batch)
        transforms = self.pre.run(frames, self._scratch.ptr, 0)
        n = len(frames)
        dst = host[slot:slot + n]
        if not dst.flags.c_contiguous:
            raise RuntimeFailure("engine input %r is not contiguous" % input_name)
        cuda.memcpy_dtoh_async(dst, self._scratch.ptr, self.pre.stream)
        self.pre.stream.synchronize()  # the host engine reads it next
        return transforms

    def close(self) -> None:
        if self._scratch is not None:
            self._scratch.free()
            self._scratch = None
        self.pre.close()

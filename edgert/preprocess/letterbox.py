"""``letterbox`` and ``resize``: frames -> model input tensor, in one pass per frame.

Both scale each frame with OpenCV, then write it *straight into the batch's
input tensor*: when the runtime has preallocated ``batch.tensor`` (a view of
the engine's own input memory, e.g. ONNX Runtime IOBinding buffers or mapped
pinned memory on a Jetson) the frame lands there with no extra copy; otherwise
the stage allocates the tensor once per batch size and reuses it.

Normalization is fused into that write, per output channel ``c``::

    value = (pixel * scale - mean[c]) / std[c]

(``scale`` defaults to 1, ``mean`` to 0, ``std`` to 1).  ``mean``/``std`` are
given in the *output* channel order (``channel_order``).

``size`` is ``[width, height]`` of the model input (OpenCV's order; the same
for square inputs such as ``[416, 416]``).  ``transforms[i] = (sx, sy, px, py)``
maps source pixels into model pixels (``x_in = x_src * sx + px``), which is
how decoders put boxes back onto the source frame.
"""
from __future__ import annotations

import logging
from typing import Any, ClassVar, Dict, List, Optional, Tuple, Type

import numpy as np
from pydantic import Field, field_validator

from edgert._lazy import require
from edgert.batch import Batch
from edgert.errors import RuntimeFailure
from edgert.preprocess.device import DEVICES, StageDevice
from edgert.stage import STAGES, Stage, StageConfig, StageContext

log = logging.getLogger("edgert.preprocess.letterbox")

DTYPES = {"float32": np.float32, "float16": np.float16, "uint8": np.uint8}


class ResizeConfig(StageConfig):
    """``{name: pre, kind: resize, input: sources, size: [224, 224], scale: 0.0039}``."""

    size: List[int] = Field(..., min_length=2, max_length=2)
    """Model input ``[width, height]`` in pixels, e.g. ``[416, 416]``."""
    channel_order: str = "rgb"
    """Channel order the model expects: ``rgb`` or ``bgr`` (frames are BGR)."""
    layout: str = "nchw"
    """``nchw`` (planar, most ONNX models) or ``nhwc`` (TensorFlow style)."""
    dtype: str = "float32"
    """Tensor type: ``float32``, ``float16`` or ``uint8`` (uint8 takes no normalization)."""
    scale: Optional[float] = None
    """Multiply pixels first, e.g. ``0.00392156`` (1/255) for 0..1 inputs."""
    mean: Optional[List[float]] = Field(None, min_length=3, max_length=3)
    """Per-channel mean subtracted after ``scale``, e.g. ``[123.675, 116.28, 103.53]``."""
    std: Optional[List[float]] = Field(None, min_length=3, max_length=3)
    """Per-channel divisor applied last, e.g. ``[58.395, 57.12, 57.375]``."""
    interpolation: str = "linear"
    """OpenCV interpolation: ``linear``, ``nearest``, ``area`` or ``cubic``."""
    device: str = "auto"
    """Where to preprocess: ``gpu`` (one fused CUDA kernel, linear float32/float16 only),
    ``cpu``, or ``auto``: the GPU when the engine's buffers are on CUDA (TensorRT), else CPU."""

    @field_validator("size")
    @classmethod
    def _size(cls, v: List[int]) -> List[int]:
        if any(x < 8 or x > 8192 for x in v):
            raise ValueError("size is [width, height], each 8..8192; got %s" % v)
        return v

    @field_validator("channel_order")
    @classmethod
    def _order(cls, v: str) -> str:
        return _one_of(v, ("rgb", "bgr"), "channel_order")

    @field_validator("layout")
    @classmethod
    def _layout(cls, v: str) -> str:
        return _one_of(v, ("nchw", "nhwc"), "layout")

    @field_validator("dtype")
    @classmethod
    def _dtype(cls, v: str) -> str:
        return _one_of(v, tuple(DTYPES), "dtype")

    @field_validator("interpolation")
    @classmethod
    def _interp(cls, v: str) -> str:
        return _one_of(v, ("linear", "nearest", "area", "cubic"), "interpolation")

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        return _one_of(v, DEVICES, "device")

    @field_validator("std")
    @classmethod
    def _std(cls, v: Optional[List[float]]) -> Optional[List[float]]:
        if v is not None and any(x == 0 for x in v):
            raise ValueError("std values must be non-zero")
        return v


class LetterboxConfig(ResizeConfig):
    """``{name: pre, kind: letterbox, input: sources, size: [416, 416]}``."""

    pad_value: int = Field(114, ge=0, le=255)
    """Pixel value of the borders (before normalization)."""


def _one_of(value: str, allowed: Tuple[str, ...], what: str) -> str:
    v = value.lower()
    if v not in allowed:
        raise ValueError("%s '%s' is not one of %s" % (what, value, ", ".join(allowed)))
    return v


class Normalizer:
    """Per-channel affine ``a * pixel + b`` in the output channel order."""

    def __init__(self, cfg: ResizeConfig) -> None:
        scale = 1.0 if cfg.scale is None else float(cfg.scale)
        mean = np.asarray(cfg.mean if cfg.mean is not None else [0.0] * 3, np.float64)
        std = np.asarray(cfg.std if cfg.std is not None else [1.0] * 3, np.float64)
        self.a = (scale / std).astype(np.float32)
        self.b = (-mean / std).astype(np.float32)
        self.identity = bool(np.all(self.a == 1.0) and np.all(self.b == 0.0))
        # output channel c reads BGR frame channel src[c]
        self.src = (2, 1, 0) if cfg.channel_order == "rgb" else (0, 1, 2)


def fit(src_w: int, src_h: int, dst_w: int, dst_h: int, keep_aspect: bool
        ) -> Tuple[int, int, int, int]:
    """Scaled size and offset ``(nw, nh, px, py)`` of a frame inside the model input."""
    if not keep_aspect:
        return dst_w, dst_h, 0, 0
    r = min(dst_w / float(src_w), dst_h / float(src_h))
    nw = max(1, min(dst_w, int(round(src_w * r))))
    nh = max(1, min(dst_h, int(round(src_h * r))))
    return nw, nh, (dst_w - nw) // 2, (dst_h - nh) // 2


def prepare_into(cv2: Any, image: np.ndarray, out: np.ndarray, cfg: ResizeConfig,
                 norm: Normalizer, keep_aspect: bool, interp: int,
                 resized: Optional[Dict[Tuple[int, int], np.ndarray]] = None
                 ) -> Tuple[float, float, int, int]:
    """Write one BGR frame into ``out`` (one item: CHW or HWC); return (sx, sy, px, py).

    ``resized`` keeps one resize buffer per output size, so a stream of frames
    of the same size allocates nothing per frame.
    """
    dst_w, dst_h = cfg.size
    h, w = image.shape[:2]
    nw, nh, px, py = fit(w, h, dst_w, dst_h, keep_aspect)
    if (nw, nh) == (w, h):
        scaled = image
    else:
        buf = None
        if resized is not None:
            buf = resized.get((nh, nw))
            if buf is None or buf.dtype != image.dtype or buf.shape[2:] != image.shape[2:]:
                if len(resized) >= 16:  # many distinct sizes: keep memory bounded
                    resized.clear()
                buf = resized[(nh, nw)] = np.empty((nh, nw) + image.shape[2:], image.dtype)
        scaled = cv2.resize(image, (nw, nh), dst=buf, interpolation=interp)
    chw = cfg.layout == "nchw"
    pad = float(getattr(cfg, "pad_value", 0))
    for c in range(3):
        plane = out[c] if chw else out[..., c]
        region = plane[py:py + nh, px:px + nw]
        src = scaled[..., norm.src[c]]
        if norm.identity:
            region[...] = src
        else:
            np.multiply(src, norm.a[c], out=region, casting="unsafe")
            np.add(region, norm.b[c], out=region, casting="unsafe")
        if keep_aspect and (nw, nh) != (dst_w, dst_h):
            value = pad * norm.a[c] + norm.b[c]
            plane[:py, :] = value
            plane[py + nh:, :] = value
            plane[py:py + nh, :px] = value
            plane[py:py + nh, px + nw:] = value
    return nw / float(w), nh / float(h), px, py


class _Preprocess(Stage):
    """Shared body of ``resize`` and ``letterbox``."""

    keep_aspect = False
    Config: ClassVar[Type[StageConfig]] = ResizeConfig

    def __init__(self, config: StageConfig, context: StageContext) -> None:
        super().__init__(config, context)
        cfg: ResizeConfig = self.config  # type: ignore[assignment]
        if cfg.dtype == "uint8" and (cfg.scale, cfg.mean, cfg.std) != (None, None, None):
            raise RuntimeFailure("stage '%s': dtype uint8 takes no scale/mean/std" % self.name)
        self.norm = Normalizer(cfg)
        self.dtype = np.dtype(DTYPES[cfg.dtype])
        w, h = cfg.size
        self.item_shape = (3, h, w) if cfg.layout == "nchw" else (h, w, 3)
        self._scratch: Optional[np.ndarray] = None
        self._resized: Dict[Tuple[int, int], np.ndarray] = {}
        self._cv2: Any = None
        self._interp = 1
        self._device = StageDevice(cfg, self.keep_aspect, self.name)

    def start(self) -> None:
        self._cv2 = require("cv2", "resizing frames")
        cv2 = self._cv2
        self._interp = {"linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST,
                        "area": cv2.INTER_AREA, "cubic": cv2.INTER_CUBIC}[self.config.interpolation]  # type: ignore[attr-defined]

    def _tensor_for(self, batch: Batch) -> np.ndarray:
        """The preallocated engine input when the runtime provides one, else scratch."""
        n = len(batch)
        t = batch.tensor
        if t is not None:
            if tuple(t.shape[1:]) != self.item_shape or t.dtype != self.dtype or t.shape[0] < n:
                raise RuntimeFailure(
                    "stage '%s' makes %s %s tensors but the model input is %s %s; adjust "
                    "size/layout/dtype" % (self.name, self.item_shape, self.dtype.name,
                                           tuple(t.shape[1:]), t.dtype.name))
            return t[:n]
        if self._scratch is None or self._scratch.shape[0] < n:
            self._scratch = np.empty((n,) + self.item_shape, self.dtype)
        return self._scratch[:n]

    def process(self, batch: Batch) -> Batch:
        if self._cv2 is None:
            self.start()
        tensor = self._tensor_for(batch)
        batch.tensor = tensor
        if self._device.process(batch):  # done on the GPU
            return batch
        transforms = np.empty((len(batch), 4), np.float64)
        for i, frame in enumerate(batch.frames):
            transforms[i] = prepare_into(self._cv2, frame, tensor[i], self.config,  # type: ignore[arg-type]
                                         self.norm, self.keep_aspect, self._interp,
                                         self._resized)
        batch.tensor = tensor
        batch.transforms = transforms
        return batch

    def stop(self) -> None:
        self._device.close()


@STAGES.register("resize")
class Resize(_Preprocess):
    """Stretch every frame to ``size`` (aspect ratio not kept)."""

    keep_aspect = False
    Config = ResizeConfig


@STAGES.register("letterbox")
class Letterbox(_Preprocess):
    """Scale every frame to fit ``size`` keeping its aspect ratio; pad the rest."""

    keep_aspect = True
    Config = LetterboxConfig

"""The ``tensorrt`` backend: what ``backend: tensorrt`` (and ``auto`` on a GPU) loads.

A cache miss builds the engine exactly as ``edgert build`` does (same key,
same calibration through the pipeline's preprocessing).  A cached engine that
fails to deserialize is discarded and rebuilt once, with a log line; edgert
never silently falls back to a different engine.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Tuple

from edgert.config.schema import ModelConfig
from edgert.engines.base import BACKENDS, Engine
from edgert.errors import RuntimeFailure

log = logging.getLogger("edgert.engines.tensorrt")


def available() -> bool:
    """True when TensorRT imports and a CUDA GPU is present (``backend: auto``); never raises."""
    from edgert import cuda
    from edgert._lazy import available as importable

    return importable("tensorrt") and cuda.available()


def is_available() -> Tuple[bool, str]:
    """(usable, why) for ``backend: auto``, so the log says why TensorRT was or was not picked."""
    from edgert import cuda
    from edgert._lazy import available as importable

    if not importable("tensorrt"):
        return False, "tensorrt is not installed"
    if not cuda.available():
        return False, "no usable CUDA GPU (or no cuda-python/PyCUDA)"
    import tensorrt as trt

    return True, "TensorRT %s on %s" % (trt.__version__, cuda.device_name())


def _require_gpu() -> None:
    from edgert import cuda

    if not cuda.available():
        raise RuntimeFailure("TensorRT needs a CUDA GPU and cuda-python or PyCUDA; none is usable "
                             "here (pip install 'edgert[trt]', or use backend: onnxruntime)")


@BACKENDS.register("tensorrt")
def load_tensorrt(name: str, model: ModelConfig, device: str, base_dir: Path) -> Engine:
    """Build or load ``name``'s engine on ``device`` (``gpu`` or ``dla:N``)."""
    from edgert.engines.tensorrt.builder import make_logger
    from edgert.engines.tensorrt.compat import load
    from edgert.engines.tensorrt.manager import ensure_engine
    from edgert.engines.tensorrt.runtime import DeserializeError, TrtEngine

    if device == "cpu":
        raise RuntimeFailure("model '%s': TensorRT cannot run on the CPU; use backend: "
                             "onnxruntime for device: cpu" % name)
    _, feats = load("backend tensorrt")
    _require_gpu()
    record = ensure_engine(name, model, device, feats)
    for attempt in (1, 2):
        plan = record.entry.engine.read_bytes()
        info = {"precision": model.precision, "engine": str(record.entry.engine),
                "tensorrt": feats.version, "placement": record.placement.summary()}
        try:
            return TrtEngine(plan, device, make_logger([]), info, model.build.cuda_graphs)
        except DeserializeError as exc:
            if attempt == 2:
                raise RuntimeFailure("model '%s': the freshly built engine %s does not "
                                     "deserialize either: %s" % (name, record.entry.engine, exc)
                                     ) from exc
            log.warning("model '%s': cached engine %s failed to deserialize (%s); rebuilding",
                        name, record.entry.engine.name, exc)
            record = ensure_engine(name, model, device, feats, force=True)
    raise AssertionError("unreachable")

"""Create the engine for one model on one device, resolving ``backend: auto``.

``auto`` means TensorRT when ``edgert.engines.tensorrt`` imports and reports
itself usable (a Jetson, or a GPU machine with TensorRT installed), else ONNX
Runtime.  The choice and the reason are logged, so a user who expected
TensorRT sees why they got ONNX Runtime.
"""
from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Tuple

from edgert.config.schema import ModelConfig
from edgert.engines.base import BACKENDS, Engine
from edgert.errors import RuntimeFailure

log = logging.getLogger("edgert.engines.factory")


def tensorrt_status() -> Tuple[bool, str]:
    """(usable, reason) for the TensorRT backend; never raises."""
    try:  # import_module honours sys.modules (tests replace the backend there)
        trt_backend = importlib.import_module("edgert.engines.tensorrt")
    except ImportError as exc:
        return False, "TensorRT backend unavailable (%s)" % exc
    check = getattr(trt_backend, "is_available", None) or getattr(trt_backend, "available", None)
    if check is None:
        return False, "TensorRT backend reports no availability check"
    try:
        result = check()
    except Exception as exc:  # noqa: BLE001 - a broken install counts as unavailable
        return False, "TensorRT check failed: %s" % exc
    if isinstance(result, tuple):
        return bool(result[0]), str(result[1]) if len(result) > 1 else ""
    return bool(result), "tensorrt importable" if result else "tensorrt not importable"


def resolve_backend(name: str, model: ModelConfig, device: str) -> str:
    """The concrete backend for ``model`` on ``device`` (``auto`` resolved)."""
    if model.backend != "auto":
        return model.backend
    if device == "cpu":
        log.info("model %s: backend auto -> onnxruntime (device cpu)", name)
        return "onnxruntime"
    ok, why = tensorrt_status()
    if ok:
        log.info("model %s: backend auto -> tensorrt on %s (%s)", name, device, why)
        return "tensorrt"
    if device.startswith("dla"):
        raise RuntimeFailure("model '%s': device %s needs TensorRT, which is not usable here: %s"
                             % (name, device, why))
    log.info("model %s: backend auto -> onnxruntime (%s)", name, why)
    return "onnxruntime"


def create_engine(name: str, model: ModelConfig, device: str, base_dir: Path) -> Engine:
    """A loaded engine for ``model`` on ``device``; user errors are RuntimeFailure."""
    backend = resolve_backend(name, model, device)
    loader = BACKENDS.get(backend)
    return loader(name, model, device, base_dir)

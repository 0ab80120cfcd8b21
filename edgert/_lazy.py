"""Lazy imports of optional dependencies with an install hint.

``import edgert`` and ``edgert --help`` must work with only numpy, pyyaml and
pydantic installed, so heavy modules (onnxruntime, cv2, tensorrt, paho, ...)
are imported at first use through :func:`require`.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Dict

from edgert.errors import MissingDependency

# module name -> the hint printed when it is missing
_HINTS: Dict[str, str] = {
    "onnxruntime": "pip install 'edgert[ort]'",
    "cv2": "pip install 'edgert[ort]' (on a Jetson use JetPack's python3-opencv instead)",
    "onnx": "pip install 'edgert[tools]'",
    "tensorrt": (
        "on a Jetson install JetPack's python3-libnvinfer and create the venv with "
        "--system-site-packages; elsewhere pip install tensorrt"
    ),
    "paho.mqtt.client": "pip install 'edgert[mqtt]'",
    "prometheus_client": "pip install 'edgert[metrics]'",
    "av": "pip install av",
    "jtop": "pip install 'edgert[jetson]'",
    "psutil": "pip install psutil",
    "matplotlib": "pip install 'edgert[bench]'",
}


def require(module: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependency` with an install hint."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        hint = _HINTS.get(module, "pip install %s" % module.split(".")[0])
        what = (" (needed for %s)" % purpose) if purpose else ""
        raise MissingDependency(
            "%s is not installed%s: %s" % (module, what, hint)
        ) from exc


def available(module: str) -> bool:
    """True when ``module`` imports; never raises."""
    try:
        importlib.import_module(module)
    except Exception:  # noqa: BLE001 - a broken install counts as unavailable
        return False
    return True

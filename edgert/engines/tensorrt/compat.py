"""What the installed TensorRT can do, found by feature detection.

edgert supports TensorRT 8.5 (JetPack 5, Xavier and Orin), 10.x (JetPack 6,
Orin) and 11.x (JetPack 7).  Every difference is detected from the API itself
(``hasattr`` on enums and classes, TRT_REFERENCE.md section 10), never from the
JetPack string.  The one exception is DLA on TensorRT 11: the DLA API is
present in 11.0-11.3 but those releases have no DLA support, and only the
version tells (TRT_REFERENCE.md section 2, [WDLA114]).

``refusal_*`` functions return the one-line reason a request cannot be built
on this TensorRT, or None; the builder raises them as user errors.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Tuple

from edgert._lazy import require

Version = Tuple[int, int, int]


def parse_version(text: str) -> Version:
    """``"10.3.0.30"`` -> ``(10, 3, 0)``; missing parts are 0."""
    nums = [int(x) for x in re.findall(r"\d+", text)[:3]]
    while len(nums) < 3:
        nums.append(0)
    return (nums[0], nums[1], nums[2])


@dataclass(frozen=True)
class Features:
    """Capabilities of one TensorRT installation."""

    version: str
    explicit_batch_flag: bool  # 8.x needs EXPLICIT_BATCH (ignored in 10, gone in 11)
    strongly_typed: bool  # NetworkDefinitionCreationFlag.STRONGLY_TYPED (9.1+)
    precision_flags: bool  # BuilderFlag.FP16/INT8 exist (gone in TRT 11)
    implicit_int8: bool  # calibrator classes and config.int8_calibrator (gone in TRT 11)
    sparse_weights: bool  # BuilderFlag.SPARSE_WEIGHTS
    memory_pools: bool  # config.set_memory_pool_limit (8.4+)
    dla_pools: bool  # MemoryPoolType.DLA_* (8.4+)
    named_io: bool  # engine.num_io_tensors + context.execute_async_v3 (8.5+)
    progress_monitor: bool  # trt.IProgressMonitor (10.0+)
    dla_api: bool  # DeviceType.DLA present
    dla_release: bool  # this release can build DLA engines (False on 11.0-11.3)
    dla_explicit_quant: bool  # DLA accepts strongly typed Q/DQ networks (11.4+)

    @property
    def version_tuple(self) -> Version:
        return parse_version(self.version)

    @property
    def calibration_header_version(self) -> int:
        """``NV_TENSORRT_VERSION`` as written in calibration cache headers (section 3)."""
        major, minor, patch = self.version_tuple
        if major >= 10:
            return major * 10000 + minor * 100 + patch
        return major * 1000 + minor * 100 + patch

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def dla_release(version: Version) -> Tuple[bool, bool]:
    """(DLA builds possible, DLA takes explicit Q/DQ) for a TensorRT version.

    Only the version tells here: TRT 11.0-11.3 keep the DLA API but dropped
    DLA; 11.4 brought it back for strongly typed networks only ([WDLA114]).
    Before 11, DLA runs implicit quantization only ([I2222], [MO1661]).
    """
    if version[0] == 11 and version[1] < 4:
        return False, False
    if version[0] >= 11:
        return True, True
    return True, False


def detect(trt: Any) -> Features:
    """Probe a ``tensorrt`` module (the real one, or the test stand-in)."""
    version = str(getattr(trt, "__version__", "0"))
    ncf = trt.NetworkDefinitionCreationFlag
    flags = trt.BuilderFlag
    dla_ok, dla_qdq = dla_release(parse_version(version))
    config_cls = trt.IBuilderConfig
    return Features(
        version=version,
        explicit_batch_flag=hasattr(ncf, "EXPLICIT_BATCH") and parse_version(version)[0] < 10,
        strongly_typed=hasattr(ncf, "STRONGLY_TYPED"),
        precision_flags=hasattr(flags, "FP16") and hasattr(flags, "INT8"),
        implicit_int8=hasattr(trt, "IInt8EntropyCalibrator2")
        and hasattr(config_cls, "int8_calibrator"),
        sparse_weights=hasattr(flags, "SPARSE_WEIGHTS"),
        memory_pools=hasattr(config_cls, "set_memory_pool_limit"),
        dla_pools=hasattr(trt.MemoryPoolType, "DLA_MANAGED_SRAM"),
        named_io=hasattr(trt.ICudaEngine, "num_io_tensors")
        and hasattr(trt.IExecutionContext, "execute_async_v3"),
        progress_monitor=hasattr(trt, "IProgressMonitor")
        and hasattr(config_cls, "progress_monitor"),
        dla_api=hasattr(trt.DeviceType, "DLA"),
        dla_release=dla_ok and hasattr(trt.DeviceType, "DLA"),
        dla_explicit_quant=dla_qdq,
    )


def load(purpose: str = "TensorRT engines") -> Tuple[Any, Features]:
    """Import TensorRT (one-line install hint when missing) and detect its features."""
    trt = require("tensorrt", purpose)
    feats = detect(trt)
    return trt, feats


def refusal_dla(feats: Features, device: str, num_cores: int, has_qdq: bool) -> Optional[str]:
    """Why ``device`` (``dla:N``) cannot be built here, or None."""
    if not device.startswith("dla:"):
        return None
    core = int(device.split(":", 1)[1])
    if not feats.dla_api or not feats.dla_release:
        return ("TensorRT %s has no DLA support (TensorRT 11.0-11.3 dropped DLA; use the "
                "JetPack's TensorRT 10.x, or 11.4+ with a Q/DQ model on AGX Orin)" % feats.version)
    if num_cores == 0:
        return ("%s requested but this device has no DLA cores (Orin Nano and discrete GPUs "
                "have none); use device: gpu" % device)
    if core >= num_cores:
        cores = ", ".join("dla:%d" % i for i in range(num_cores))
        return "%s requested but this device has %d DLA core%s (%s)" % (
            device, num_cores, "" if num_cores == 1 else "s", cores)
    if has_qdq and not feats.dla_explicit_quant:
        return ("the model has Q/DQ nodes but DLA on TensorRT %s runs only implicit quantization: "
                "convert it with NVIDIA's qdq-translator (Q/DQ-free ONNX + calibration cache) "
                "or build on the GPU" % feats.version)
    if not has_qdq and feats.dla_explicit_quant:
        return ("TensorRT %s runs only strongly typed Q/DQ models on DLA: export a Q/DQ "
                "(explicitly quantized) ONNX, or build on the GPU" % feats.version)
    return None


def refusal_precision(feats: Features, precision: str, has_qdq: bool,
                      has_calibration: bool) -> Optional[str]:
    """Why ``precision`` cannot be built here, or None."""
    if precision == "int8" and not has_qdq:
        if not feats.implicit_int8:
            return ("TensorRT %s has no INT8 calibration (implicit quantization was removed in "
                    "TensorRT 11): export a Q/DQ ONNX model" % feats.version)
        if not has_calibration:
            return ("precision int8 needs calibration data or a calibration cache: "
                    "int8: {calibration: {images: DIR or source: NAME, cache: FILE}}")
    return None

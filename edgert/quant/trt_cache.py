"""TensorRT INT8 calibration cache: writer, reader, and DLA range equalization.

DLA on TensorRT 8.5 and 10.x runs INT8 only through *implicit* quantization
(TRT_REFERENCE.md section 3): the FP32 ONNX plus per-tensor dynamic ranges from
a calibrator or from this cache.  The format is plain text:

    TRT-<NV_TENSORRT_VERSION>-EntropyCalibration2
    <tensor name>: <8 hex digits>

where the hex is the big-endian IEEE-754 float32 bit pattern of
``scale = amax / 127``.  ``NV_TENSORRT_VERSION`` is ``major*1000 + minor*100 +
patch`` up to 8.x (8.5.2 -> 8502) and ``major*10000 + minor*100 + patch`` from
10.x (10.3.0 -> 100300).  TensorRT re-calibrates (ignores the cache) when the
header's version or algorithm differs from the build's, so ``--trt-version``
must match the device's TensorRT; ``EntropyCalibration2`` is the calibrator DLA
requires.

Tensor names are the ONNX tensor names of the FP32 model, which TensorRT's ONNX
parser keeps as ITensor names.  Names containing ``": "`` cannot be written
unambiguously and are refused.
"""
from __future__ import annotations

import logging
import math
import struct
from pathlib import Path
from typing import Any, Dict, List, Mapping, Set, Tuple, Union

from edgert.errors import RuntimeFailure, UsageError
from edgert.fsutil import atomic_write_text

log = logging.getLogger("edgert.quant.trt_cache")

DEFAULT_TRT_VERSION = "8.5.2"  # JetPack 5.1.x, the last JetPack with Xavier
DEFAULT_ALGORITHM = "EntropyCalibration2"
MIN_AMAX = 1e-6  # an all-zero tensor still gets a positive, finite scale


def version_code(version: str) -> int:
    """``"8.5.2"`` -> 8502, ``"10.3.0"`` -> 100300 (the NV_TENSORRT_VERSION macro)."""
    parts = version.strip().split(".")
    try:
        nums = [int(p) for p in parts] + [0, 0]
    except ValueError:
        raise UsageError("--trt-version %r: expected MAJOR.MINOR[.PATCH], e.g. 8.5.2"
                         % version) from None
    major, minor, patch = nums[:3]
    if major < 7 or minor > 99 or patch > 99:
        raise UsageError("--trt-version %r: expected a TensorRT version >= 7, e.g. 8.5.2 or 10.3"
                         % version)
    return major * (10000 if major >= 10 else 1000) + minor * 100 + patch


def header(version: str = DEFAULT_TRT_VERSION, algorithm: str = DEFAULT_ALGORITHM) -> str:
    return "TRT-%d-%s" % (version_code(version), algorithm)


def encode_scale(scale: float) -> str:
    return struct.pack("!f", scale).hex()


def decode_scale(hex8: str) -> float:
    return float(struct.unpack("!f", bytes.fromhex(hex8))[0])


def scale_of(amax: float) -> float:
    """``amax / 127`` with a floor, so every cache entry is positive and finite."""
    if not math.isfinite(amax):
        raise RuntimeFailure("calibration produced a non-finite range (%r)" % amax)
    return max(abs(float(amax)), MIN_AMAX) / 127.0


def render(amax: Mapping[str, float], version: str = DEFAULT_TRT_VERSION,
           algorithm: str = DEFAULT_ALGORITHM) -> str:
    lines = [header(version, algorithm)]
    for name, value in amax.items():
        if ": " in name or "\n" in name:
            raise RuntimeFailure("tensor name %r cannot be written to a TensorRT cache" % name)
        lines.append("%s: %s" % (name, encode_scale(scale_of(value))))
    return "\n".join(lines) + "\n"


def write_cache(path: Union[str, Path], amax: Mapping[str, float],
                version: str = DEFAULT_TRT_VERSION, algorithm: str = DEFAULT_ALGORITHM) -> None:
    atomic_write_text(path, render(amax, version, algorithm))
    log.info("wrote TensorRT calibration cache %s (%d tensors, %s)", path, len(amax),
             header(version, algorithm))


def read_cache(path: Union[str, Path]) -> Tuple[str, Dict[str, float]]:
    """``(header, {tensor: scale})``; raises RuntimeFailure on a malformed file."""
    p = Path(path)
    try:
        lines = p.read_text().splitlines()
    except OSError as exc:
        raise RuntimeFailure("%s: cannot read calibration cache (%s)" % (p, exc.strerror)) from None
    if not lines or not lines[0].startswith("TRT-"):
        raise RuntimeFailure("%s: not a TensorRT calibration cache (no TRT-<version> header)" % p)
    scales: Dict[str, float] = {}
    for no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        name, sep, hex8 = line.rpartition(": ")
        if not sep or len(hex8.strip()) != 8:
            raise RuntimeFailure("%s:%d: expected '<tensor>: <8 hex digits>'" % (p, no))
        try:
            scales[name] = decode_scale(hex8.strip())
        except ValueError:
            raise RuntimeFailure("%s:%d: %r is not hex" % (p, no, hex8)) from None
    return lines[0], scales


# ---------------------------------------------------------------- DLA equalization

# DLA needs equal INT8 dynamic ranges across these tensors (TRT_REFERENCE.md section 2):
# concat inputs and output, pooling input and output, elementwise inputs.
_EQUAL_IO = {"Concat", "MaxPool", "AveragePool"}
_EQUAL_IN = {"Add", "Sub", "Mul", "Max", "Min", "Sum"}


def equalize_for_dla(g: Any, amax: Dict[str, float]) -> Tuple[Dict[str, float], List[str]]:
    """Widen ranges so tensors DLA requires to share a range do (largest wins).

    ``g`` is the FP32 model's :class:`~edgert.analysis.onnx_graph.GraphView`.
    Returns the new ranges and the names that were widened.
    """
    parent: Dict[str, str] = {t: t for t in amax}

    def find(t: str) -> str:
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    for n in g.nodes:
        if n.op_type in _EQUAL_IO:
            group = [t for t in list(n.input) + [n.output[0]] if t in amax]
        elif n.op_type in _EQUAL_IN:
            group = [t for t in n.input if t in amax]
        else:
            continue
        for t in group[1:]:
            parent[find(t)] = find(group[0])
    best: Dict[str, float] = {}
    for t, v in amax.items():
        r = find(t)
        best[r] = max(best.get(r, 0.0), abs(v))
    out = {t: best[find(t)] for t in amax}
    widened = [t for t in amax if out[t] > abs(amax[t]) * (1 + 1e-6)]
    return out, widened


def check_names(scales: Mapping[str, float], tensor_names: Set[str]) -> List[str]:
    """Cache entries naming no tensor of the model (TensorRT would ignore them)."""
    return sorted(t for t in scales if t not in tensor_names)

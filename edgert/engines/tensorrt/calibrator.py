"""INT8 calibration fed by the pipeline's own preprocessing.

Mismatched preprocessing between calibration and inference is the classic
cause of ruined INT8 accuracy, so calibration frames go through the *same
stage objects* the pipeline runs (instantiated from its config, see
:mod:`edgert.engines.tensorrt.calibdata`), never through a re-implementation.

The calibrator follows TRT_REFERENCE.md section 3: ``get_batch(names)`` returns
one device pointer per input in ``names`` order, ``[]`` when out of data; the
cache is TensorRT's plain-text format (``TRT-<version>-<Algo>`` then
``tensor: <8 hex digits>`` lines, the big-endian float32 scale).
"""
from __future__ import annotations

import logging
import struct
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from edgert.errors import RuntimeFailure
from edgert.fsutil import atomic_write_bytes

log = logging.getLogger("edgert.engines.tensorrt.calibrator")

ALGORITHMS = {"entropy": "EntropyCalibration2", "minmax": "MinMaxCalibration"}


# ---------------------------------------------------------------- cache format


def cache_header(version_number: int, method: str) -> str:
    """``TRT-8502-EntropyCalibration2`` (``NV_TENSORRT_VERSION`` as in section 3)."""
    return "TRT-%d-%s" % (version_number, ALGORITHMS[method])


def encode_scale(scale: float) -> str:
    return struct.pack("!f", scale).hex()


def decode_scale(hex8: str) -> float:
    value: float = struct.unpack("!f", bytes.fromhex(hex8))[0]
    return value


def format_cache(header: str, scales: Dict[str, float]) -> bytes:
    lines = [header] + ["%s: %s" % (name, encode_scale(s)) for name, s in scales.items()]
    return ("\n".join(lines) + "\n").encode("ascii")


def parse_cache(data: bytes) -> Tuple[str, Dict[str, float]]:
    """(header, tensor -> scale); raises ValueError on anything malformed."""
    text = data.decode("ascii").strip()
    if not text:
        raise ValueError("empty calibration cache")
    lines = text.splitlines()
    header = lines[0].strip()
    if not header.startswith("TRT-") or header.count("-") < 2:
        raise ValueError("header %r is not TRT-<version>-<algorithm>" % header)
    scales: Dict[str, float] = {}
    for i, line in enumerate(lines[1:], start=2):
        name, sep, value = line.rpartition(":")
        value = value.strip()
        if not sep or len(value) != 8:
            raise ValueError("line %d: expected 'tensor: <8 hex digits>', got %r" % (i, line))
        scales[name.strip()] = decode_scale(value)
    return header, scales


def cache_matches(data: bytes, expected_header: str) -> Optional[str]:
    """None when ``data`` is a cache this TensorRT will use as is, else why not."""
    try:
        header, _ = parse_cache(data)
    except (ValueError, UnicodeDecodeError) as exc:
        return "unreadable (%s)" % exc
    if header != expected_header:
        return "made by %s, this build needs %s (TensorRT re-calibrates)" % (
            header, expected_header)
    return None


# ---------------------------------------------------------------- the feed


class CalibrationFeed:
    """The Python half of a calibrator: device buffers, batches, the cache file.

    Kept free of TensorRT so the protocol is testable; :func:`make_calibrator`
    wraps it in the TensorRT base class.
    """

    def __init__(self, inputs: Sequence[Tuple[str, Tuple[int, ...], np.dtype]],
                 batches: Iterator[Dict[str, np.ndarray]], cache: Optional[Path],
                 header: str, total: int = 0,
                 on_batch: Optional[Callable[[int], None]] = None) -> None:
        from edgert import cuda

        self.inputs = list(inputs)
        self.batch_size = int(self.inputs[0][1][0]) if self.inputs else 1
        self.batches = batches
        self.cache = cache
        self.header = header
        self.total = total
        self.on_batch = on_batch
        self.used = 0
        self.calibrator: Any = None  # the TensorRT object wrapping this feed
        self.stream = cuda.Stream()
        self.buffers = {name: cuda.DeviceBuffer(int(np.prod(shape)) * np.dtype(dt).itemsize)
                        for name, shape, dt in self.inputs}
        self._shapes = {name: (shape, np.dtype(dt)) for name, shape, dt in self.inputs}

    def get_batch(self, names: Sequence[str]) -> List[int]:
        """Device pointers in ``names`` order, or ``[]`` when the data is exhausted."""
        from edgert import cuda

        try:
            batch = next(self.batches)
        except StopIteration:
            return []
        for name in names:
            if name not in self.buffers:
                raise RuntimeFailure("calibration: TensorRT asked for input '%s'; the model's "
                                     "inputs are %s" % (name, ", ".join(self.buffers)))
            shape, dtype = self._shapes[name]
            host = np.ascontiguousarray(batch[name], dtype=dtype)
            if host.shape != shape:
                raise RuntimeFailure("calibration batch for '%s' has shape %s, expected %s"
                                     % (name, host.shape, shape))
            cuda.memcpy_htod_async(self.buffers[name].ptr, host, self.stream)
        self.stream.synchronize()  # host arrays may be reused by the next batch
        self.used += 1
        if self.on_batch is not None:
            self.on_batch(self.used)
        return [self.buffers[name].ptr for name in names]

    def read_cache(self) -> Optional[bytes]:
        if self.cache is None or not self.cache.is_file():
            return None
        data = self.cache.read_bytes()
        why = cache_matches(data, self.header)
        if why is not None:
            log.warning("calibration cache %s ignored: %s", self.cache, why)
            return None
        log.info("using calibration cache %s", self.cache)
        return data

    def write_cache(self, data: Any) -> None:
        if self.cache is None:
            return
        atomic_write_bytes(self.cache, bytes(memoryview(data)))
        log.info("wrote calibration cache %s (%d batches)", self.cache, self.used)

    def close(self) -> None:
        for buf in self.buffers.values():
            buf.free()
        self.buffers = {}


def make_calibrator(feed: CalibrationFeed, method: str) -> Any:
    """A TensorRT calibrator object (``IInt8EntropyCalibrator2`` or ``IInt8MinMaxCalibrator``).

    Entropy is the one DLA requires ([H85]); minmax suits heavy-tailed activations.
    """
    import tensorrt as trt

    if method == "minmax":
        class MinMax(trt.IInt8MinMaxCalibrator):
            def __init__(self) -> None:
                super().__init__()

            def get_batch_size(self) -> int:
                return feed.batch_size

            def get_batch(self, names: List[str]) -> List[int]:
                return feed.get_batch(names)

            # TensorRT accepts None for "no cache" (TRT_REFERENCE.md section 3).
            def read_calibration_cache(self) -> Optional[bytes]:
                return feed.read_cache()

            def write_calibration_cache(self, cache: Any) -> None:
                feed.write_cache(cache)

        return MinMax()

    class Entropy(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            super().__init__()

        def get_batch_size(self) -> int:
            return feed.batch_size

        def get_batch(self, names: List[str]) -> List[int]:
            return feed.get_batch(names)

        # TensorRT accepts None for "no cache" (TRT_REFERENCE.md section 3).
        def read_calibration_cache(self) -> Optional[bytes]:
            return feed.read_cache()

        def write_calibration_cache(self, cache: Any) -> None:
            feed.write_cache(cache)

    return Entropy()

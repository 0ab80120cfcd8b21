"""ONNX Runtime backend: the same pipelines on any CPU (and CUDA/TensorRT EPs where present).

Zero copy on CPU: :meth:`OrtEngine.new_io` allocates plain numpy arrays for
every input and output once, and binds them to ONNX Runtime through IOBinding
(one binding per batch size or batch chunk, created on first use and reused),
so preprocess writes straight into the memory ORT reads and decoders read the
memory ORT wrote.  With the CUDA or TensorRT execution provider the same host
arrays are bound, so ORT copies them to and from the GPU on every run; those
bytes are counted in ``EngineIO.bytes_copied`` (on the CPU provider it stays 0).

Models with a fixed batch dimension (e.g. ``[1, 3, 416, 416]``) still accept
batches of any size: ``run`` executes them chunk by chunk over views of the
same buffers.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Tuple

import numpy as np

from edgert._lazy import require
from edgert.engines.base import BACKENDS, Engine, EngineIO, TensorSpec
from edgert.errors import RuntimeFailure

if TYPE_CHECKING:  # pragma: no cover
    from edgert.config.schema import ModelConfig

log = logging.getLogger("edgert.engines.onnxruntime")

_ORT_TYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(int32)": np.int32,
    "tensor(int64)": np.int64, "tensor(bool)": np.bool_,
}


def _spec(arg: Any) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) and d > 0 else -1 for d in (arg.shape or []))
    dtype = _ORT_TYPES.get(arg.type)
    if dtype is None:
        raise RuntimeFailure("tensor '%s' has unsupported type %s" % (arg.name, arg.type))
    return TensorSpec(arg.name, shape, np.dtype(dtype))


def providers_for(ort: Any, device: str, precision: str, cache_dir: Path) -> List[Any]:
    """Execution providers for ``device``: GPU EPs when installed, CPU always last."""
    available = set(ort.get_available_providers())
    chosen: List[Any] = []
    if device != "cpu":
        if "TensorrtExecutionProvider" in available:
            cache_dir.mkdir(parents=True, exist_ok=True)  # TRT EP engine cache
            chosen.append(("TensorrtExecutionProvider", {
                "trt_fp16_enable": precision in ("fp16", "best"),
                "trt_engine_cache_enable": True,
                "trt_engine_cache_path": str(cache_dir),
            }))
        if "CUDAExecutionProvider" in available:
            chosen.append("CUDAExecutionProvider")
        if not chosen:
            log.warning("device %s: this onnxruntime has no CUDA/TensorRT provider (has %s); "
                        "running on CPU", device, ", ".join(sorted(available)))
    chosen.append("CPUExecutionProvider")
    return chosen


class OrtEngine(Engine):
    """One ONNX model in an ONNX Runtime session."""

    backend = "onnxruntime"

    def __init__(self, name: str, path: Path, device: str, precision: str = "fp32") -> None:
        ort = require("onnxruntime", "the onnxruntime backend")
        if not path.is_file():
            raise RuntimeFailure("model '%s': ONNX file not found: %s" % (name, path))
        self.name = name
        self.path = path
        self.device = device
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = providers_for(ort, device, precision, Path.home() / ".cache" / "edgert" / "ort")
        t0 = time.monotonic()
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own types for bad files
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise RuntimeFailure("model '%s': cannot load ONNX file %s: %s"
                                 % (name, path, first[:300])) from None
        self.providers = list(self.session.get_providers())
        self._on_cpu = self.providers[0] == "CPUExecutionProvider"
        self._inputs = [_spec(a) for a in self.session.get_inputs()]
        self._outputs = [_spec(a) for a in self.session.get_outputs()]
        dims = {s.shape[0] if s.shape else -1 for s in self._inputs}
        self.static_batch = next(iter(dims)) if len(dims) == 1 and -1 not in dims else 0
        log.info("model %s: %s on %s in %.2fs (inputs %s, batch %s)", name, path.name,
                 self.providers[0], time.monotonic() - t0,
                 ", ".join("%s%s" % (s.name, list(s.shape)) for s in self._inputs),
                 self.static_batch or "dynamic")

    @property
    def inputs(self) -> List[TensorSpec]:
        return self._inputs

    @property
    def outputs(self) -> List[TensorSpec]:
        return self._outputs

    @property
    def max_batch(self) -> int:
        """Any batch: fixed-batch models are run chunk by chunk (see module doc)."""
        return 1 << 16

    def _alloc(self, spec: TensorSpec, items: int) -> np.ndarray:
        rest = spec.shape[1:]
        if any(d < 0 for d in rest):
            raise RuntimeFailure("model '%s': tensor '%s' has dynamic dimensions %s besides the "
                                 "batch; export it with a fixed shape" % (self.name, spec.name,
                                                                          list(spec.shape)))
        return np.zeros((items,) + tuple(rest), spec.dtype)

    def new_io(self, capacity: int) -> EngineIO:
        chunk = self.static_batch or capacity
        items = -(-capacity // chunk) * chunk  # whole chunks, so the last one can run full
        inputs = {s.name: self._alloc(s, items) for s in self._inputs}
        outputs = {s.name: self._alloc(s, items) for s in self._outputs}
        return EngineIO(capacity=capacity, inputs=inputs, outputs=outputs, handle={})

    def _binding(self, io: EngineIO, start: int, count: int) -> Any:
        """IOBinding over items ``[start, start+count)`` of the IO's arrays, cached."""
        cache: Dict[Tuple[int, int], Any] = io.handle
        key = (start, count)
        binding = cache.get(key)
        if binding is None:
            binding = self.session.io_binding()
            pairs = ((io.inputs, binding.bind_input), (io.outputs, binding.bind_output))
            for arrays, bind in pairs:
                for name, arr in arrays.items():
                    view = arr[start:start + count]
                    bind(name, "cpu", 0, view.dtype, list(view.shape), view.ctypes.data)
            cache[key] = binding
        return binding

    def run(self, io: EngineIO, n: int) -> None:
        if n < 1 or n > io.capacity:
            raise ValueError("run(n=%d) outside 1..capacity %d" % (n, io.capacity))
        chunk = self.static_batch or n
        for start in range(0, n, chunk):
            self.session.run_with_iobinding(self._binding(io, start, chunk))
            if not self._on_cpu:  # host arrays bound: ORT copies them to the GPU and back
                io.bytes_copied += sum(a[start:start + chunk].nbytes for a in io.inputs.values())
                io.bytes_copied += sum(a[start:start + chunk].nbytes for a in io.outputs.values())

    def describe(self) -> Dict[str, Any]:
        return {"backend": self.backend, "device": self.device, "providers": self.providers,
                "model": str(self.path), "static_batch": self.static_batch}

    def close(self) -> None:
        self.session = None


@BACKENDS.register("onnxruntime")
def load(name: str, model: "ModelConfig", device: str, base_dir: Path) -> Engine:
    """EngineLoader for ``backend: onnxruntime``; DLA devices are refused (GPU/CPU only)."""
    if device.startswith("dla"):
        raise RuntimeFailure("model '%s': device %s needs the tensorrt backend; ONNX Runtime "
                             "runs on gpu or cpu" % (name, device))
    path = model.onnx if model.onnx.is_absolute() else (base_dir / model.onnx)
    return OrtEngine(name, path, device, model.precision)

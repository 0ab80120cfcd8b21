"""The engine interface every inference backend implements.

An engine owns a compiled model on one device (``cpu``, ``gpu``, ``dla:0``).
The runtime asks it for an :class:`EngineIO` once per in-flight batch slot and
reuses it for every batch: preprocess writes straight into ``io.inputs`` (host
views of the engine's own input memory: numpy arrays bound through IOBinding
for ONNX Runtime, mapped pinned memory for TensorRT on a Jetson), ``run`` fills
``io.outputs`` in place.  Nothing is allocated per frame.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Tuple

import numpy as np

from edgert.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from edgert.config.schema import ModelConfig

try:  # Python 3.8 has Protocol in typing already; keep the import explicit
    from typing import Protocol
except ImportError:  # pragma: no cover
    from typing_extensions import Protocol  # type: ignore


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: Tuple[int, ...]  # -1 for a dynamic dimension
    dtype: np.dtype


@dataclass
class EngineIO:
    """Preallocated input/output buffers for batches of up to ``capacity``."""

    capacity: int
    inputs: Dict[str, np.ndarray]  # host-visible, shape (capacity, ...)
    outputs: Dict[str, np.ndarray]
    bytes_copied: int = 0  # host<->device bytes copied so far by this IO
    handle: Any = None  # backend-specific state (binding, stream, device ptrs)
    extra: Dict[str, Any] = field(default_factory=dict)


class Engine(ABC):
    """A loaded model on one device."""

    backend: str = ""
    device: str = "cpu"

    @property
    @abstractmethod
    def inputs(self) -> List[TensorSpec]:
        ...

    @property
    @abstractmethod
    def outputs(self) -> List[TensorSpec]:
        ...

    @property
    def max_batch(self) -> int:
        """Largest batch ``run`` accepts (the fixed batch for static engines)."""
        dim = self.inputs[0].shape[0]
        return dim if dim > 0 else 1 << 16

    @abstractmethod
    def new_io(self, capacity: int) -> EngineIO:
        """Allocate buffers for batches of up to ``capacity`` items."""

    @abstractmethod
    def run(self, io: EngineIO, n: int) -> None:
        """Run on the first ``n`` items of ``io.inputs``; fill ``io.outputs``."""

    def infer(self, feeds: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Convenience path (tools, tests): copies in, runs, returns copies."""
        first = next(iter(feeds.values()))
        n = int(first.shape[0])
        io = self.new_io(n)
        for name, arr in feeds.items():
            io.inputs[name][:n] = arr
        self.run(io, n)
        return {k: v[:n].copy() for k, v in io.outputs.items()}

    def describe(self) -> Dict[str, Any]:
        """Backend, device, precision and placement for logs/metrics/bench."""
        return {"backend": self.backend, "device": self.device}

    def close(self) -> None:
        """Free the engine. Safe to call twice."""


class EngineLoader(Protocol):
    """A backend's entry point: build or load the engine for one device."""

    def __call__(self, name: str, model: "ModelConfig", device: str, base_dir: Path) -> Engine:
        ...


# Backends register under the name users write as ``backend:`` (``onnxruntime``,
# ``tensorrt``); ``auto`` is resolved by the engine factory.
BACKENDS: Registry[EngineLoader] = Registry("engine backend")

"""TEST STAND-IN for ``edgert.cuda`` (host memory pretending to be a GPU).  Tests only.

The real ``edgert.cuda`` runs on the GPU machine (tests/cuda/).  Here, the
TensorRT backend's buffer logic is exercised without a GPU: "device memory" is
numpy memory addressed by integer pointers, so ``fake_tensorrt`` can read
calibration batches and write outputs at the addresses edgert hands it, and
copies are real copies.  :func:`patch` swaps these functions into
``edgert.cuda`` with pytest's ``monkeypatch``.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np

_MEM: Dict[int, np.ndarray] = {}  # base address -> uint8 array
STATE = {"integrated": False, "cc": (8, 7), "name": "Fake Orin (test stand-in)",
         "graphs": True, "captures": 0, "launches": 0, "capturing": False}


def _register(arr: np.ndarray) -> int:
    ptr = int(arr.ctypes.data)
    _MEM[ptr] = arr
    return ptr


def _locate(ptr: int, nbytes: int) -> np.ndarray:
    for base, arr in _MEM.items():
        if base <= ptr and ptr + nbytes <= base + arr.nbytes:
            return arr[ptr - base: ptr - base + nbytes]
    raise ValueError("fake_cuda: address 0x%x (+%d) is not allocated" % (ptr, nbytes))


def read(ptr: int, nbytes: int) -> np.ndarray:
    return _locate(ptr, nbytes).copy()


def write(ptr: int, data: bytes) -> None:
    _locate(ptr, len(data))[:] = np.frombuffer(data, np.uint8)


def reset(integrated: bool = False, cc: Tuple[int, int] = (8, 7), graphs: bool = True) -> None:
    _MEM.clear()
    STATE.update(integrated=integrated, cc=cc, graphs=graphs, captures=0, launches=0,
                 capturing=False)


class Stream:
    def __init__(self) -> None:
        self.handle = 0x5000 + id(self) % 4096
        self.syncs = 0

    def synchronize(self) -> None:
        self.syncs += 1


class DeviceBuffer:
    def __init__(self, nbytes: int) -> None:
        self.nbytes = int(nbytes)
        self._arr = np.zeros(max(self.nbytes, 1), np.uint8)
        self.ptr = _register(self._arr)

    def free(self) -> None:
        _MEM.pop(self.ptr, None)
        self.ptr = 0


class HostBuffer:
    def __init__(self, shape: Union[int, Sequence[int]], dtype: Any = np.uint8,
                 mapped: bool = False) -> None:
        self.shape = (int(shape),) if isinstance(shape, int) else tuple(int(s) for s in shape)
        self.array = np.zeros(self.shape, np.dtype(dtype))
        self.nbytes = self.array.nbytes
        self.ptr = int(self.array.ctypes.data)
        self.device_ptr: Optional[int] = None
        if mapped:  # zero copy: the device sees the very same memory
            self.device_ptr = _register(self.array.reshape(-1).view(np.uint8))

    def free(self) -> None:
        if self.device_ptr is not None:
            _MEM.pop(self.device_ptr, None)
        self.ptr = 0


def memcpy_htod_async(dst_ptr: int, host_array: np.ndarray, stream: Any = None) -> None:
    assert host_array.flags.c_contiguous
    write(dst_ptr, host_array.tobytes())


def memcpy_dtoh_async(host_array: np.ndarray, src_ptr: int, stream: Any = None) -> None:
    assert host_array.flags.c_contiguous
    host_array.reshape(-1).view(np.uint8)[:] = read(src_ptr, host_array.nbytes)


class _Graph:
    """Replays the work captured between begin_capture and end_capture."""

    def __init__(self, work: Any) -> None:
        self.work = list(work)

    def free(self) -> None:
        self.work = []


_CAPTURED: list = []


def capturing() -> bool:
    return bool(STATE["capturing"])


def capture(work: Any) -> None:
    """Called by fake_tensorrt's enqueue during capture instead of running."""
    _CAPTURED.append(work)


def begin_capture(stream: Stream) -> None:
    from edgert.errors import RuntimeFailure

    if not STATE["graphs"]:
        raise RuntimeFailure("graphs unsupported (fake)")
    STATE["capturing"] = True
    _CAPTURED.clear()


def end_capture(stream: Stream) -> Optional[_Graph]:
    STATE["capturing"] = False
    STATE["captures"] += 1
    return _Graph(_CAPTURED) if _CAPTURED else None


def launch_graph(graph: _Graph, stream: Stream) -> None:
    STATE["launches"] += 1
    for work in graph.work:
        work()


def patch(monkeypatch: Any, **state: Any) -> None:
    """Replace edgert.cuda's API with this stand-in for one test."""
    from edgert import cuda

    reset(**state)
    monkeypatch.setattr(cuda, "available", lambda: True)
    monkeypatch.setattr(cuda, "is_integrated", lambda device=0: bool(STATE["integrated"]))
    monkeypatch.setattr(cuda, "device_name", lambda device=0: str(STATE["name"]))
    monkeypatch.setattr(cuda, "compute_capability", lambda device=0: tuple(STATE["cc"]))
    monkeypatch.setattr(cuda, "supports_graphs", lambda: bool(STATE["graphs"]))
    for name in ("Stream", "DeviceBuffer", "HostBuffer", "memcpy_htod_async",
                 "memcpy_dtoh_async", "begin_capture", "end_capture", "launch_graph"):
        monkeypatch.setattr(cuda, name, globals()[name])

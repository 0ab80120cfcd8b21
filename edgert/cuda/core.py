"""CUDA devices, streams, events, memory and graphs behind one small API.

Everything CUDA in edgert (TensorRT runtime, GPU preprocessing, selftest) goes
through here so the rest of the code never sees which Python binding is
installed: cuda-python first (``cuda.bindings``, or the older ``cuda.cudart``
layout), PyCUDA second (what JetPack 5 images usually have).  The binding is
imported on first use, never at ``import edgert``.

Failures of CUDA calls raise :class:`~edgert.errors.RuntimeFailure` naming the
call and the CUDA error; a missing binding raises
:class:`~edgert.errors.MissingDependency` with the install hint.
"""
from __future__ import annotations

import atexit
import ctypes
import logging
import os
import threading
from abc import ABC, abstractmethod
from typing import Any, Optional, Sequence, Tuple, TypeVar, Union

import numpy as np

from edgert.errors import MissingDependency, RuntimeFailure

_R = TypeVar("_R", bound="_Resource")

log = logging.getLogger("edgert.cuda")

_INSTALL_HINT = "pip install 'edgert[trt]' (cuda-python), or use JetPack's PyCUDA"
_backend_lock = threading.Lock()
_backend_obj: Any = None
_backend_error: Optional[str] = None
_device = 0
_exiting = False  # set at interpreter exit: finalizers then leave teardown to the driver


def _mark_exiting() -> None:
    global _exiting
    _exiting = True


def _load_backend() -> Any:
    """Import the first binding that works (``EDGERT_CUDA_BACKEND`` forces one)."""
    forced = os.environ.get("EDGERT_CUDA_BACKEND", "").strip().lower()
    order = [forced] if forced else ["cuda-python", "pycuda"]
    reasons = []
    for name in order:
        try:
            if name == "cuda-python":
                from edgert.cuda._cudapython import CudaPythonBackend

                return CudaPythonBackend()
            if name == "pycuda":
                from edgert.cuda._pycuda import PyCudaBackend

                return PyCudaBackend()
            reasons.append("unknown EDGERT_CUDA_BACKEND %r (cuda-python, pycuda)" % name)
        except ImportError as exc:
            reasons.append("%s: %s" % (name, exc))
        except Exception as exc:  # noqa: BLE001 - a binding that fails to load is unavailable
            reasons.append("%s: %s: %s" % (name, type(exc).__name__, exc))
    raise MissingDependency("CUDA unavailable (%s): %s" % ("; ".join(reasons), _INSTALL_HINT))


def backend() -> Any:
    """The loaded binding backend (imported once, on first use)."""
    global _backend_obj, _backend_error
    if _backend_obj is not None:
        return _backend_obj
    with _backend_lock:
        if _backend_obj is None:
            if _backend_error is not None:
                raise MissingDependency(_backend_error)
            try:
                _backend_obj = _load_backend()
            except MissingDependency as exc:
                _backend_error = str(exc)
                raise
            atexit.register(_mark_exiting)
            log.debug("CUDA backend: %s", _backend_obj.name)
    return _backend_obj


def _ctx() -> Any:
    """The backend with the current device's context current on this thread."""
    b = backend()
    if b.device_count() <= _device:
        raise RuntimeFailure("no CUDA device %d (found %d)" % (_device, b.device_count()))
    b.ensure_context(_device)
    return b


def available() -> bool:
    """True when a binding imports and at least one CUDA device is present; never raises."""
    try:
        return backend().device_count() > 0
    except Exception:  # noqa: BLE001 - any failure means "no usable CUDA"
        return False


def backend_name() -> str:
    """``cuda-python`` or ``pycuda``."""
    return str(backend().name)


def set_device(device: int) -> None:
    """Select the device that later allocations, streams and kernels use."""
    global _device
    _device = int(device)


def device_attribute(attr: str, device: Optional[int] = None) -> int:
    """A ``cudaDevAttr*`` value by name, e.g. ``cudaDevAttrMultiProcessorCount``."""
    b = _ctx()
    return int(b.attribute(attr, _device if device is None else device))


def is_integrated(device: int = 0) -> bool:
    """True on a GPU that shares DRAM with the CPU (Jetson): zero-copy is the fast path."""
    return device_attribute("cudaDevAttrIntegrated", device) == 1


def device_name(device: int = 0) -> str:
    return str(_ctx().device_name(device))


def compute_capability(device: int = 0) -> Tuple[int, int]:
    return (device_attribute("cudaDevAttrComputeCapabilityMajor", device),
            device_attribute("cudaDevAttrComputeCapabilityMinor", device))


def peak_memory_bandwidth(device: int = 0) -> Optional[float]:
    """Theoretical DRAM bandwidth in bytes/s from the memory clock and bus width (DDR: x2).

    None where the driver no longer reports the memory clock.
    """
    try:
        clock_khz = device_attribute("cudaDevAttrMemoryClockRate", device)
        bus_bits = device_attribute("cudaDevAttrGlobalMemoryBusWidth", device)
    except (RuntimeFailure, AttributeError, KeyError):
        return None
    if clock_khz <= 0 or bus_bits <= 0:
        return None
    return 2.0 * clock_khz * 1e3 * bus_bits / 8.0


def _stream_obj(stream: Union["Stream", int, None]) -> Any:
    if stream is None:
        return None
    if isinstance(stream, Stream):
        return stream.obj
    if isinstance(stream, int) and backend().name == "cuda-python":
        return stream
    raise TypeError("stream: expected edgert.cuda.Stream or None, got %r" % (stream,))


class _Resource(ABC):
    """A CUDA object released exactly once: by ``free()``/``close()``, ``with``, or GC."""

    @abstractmethod
    def free(self) -> None:
        """Release the object; safe to call twice."""

    def close(self) -> None:
        self.free()

    def __enter__(self: _R) -> _R:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.free()

    def __del__(self) -> None:
        if _exiting:  # the CUDA runtime may already be unloading; the process frees all
            return
        try:
            self.free()
        except Exception:  # noqa: BLE001 - interpreter shutdown; the context dies anyway
            pass


class Stream(_Resource):
    """A non-blocking CUDA stream; ``handle`` is the raw ``cudaStream_t`` as an int."""

    def __init__(self) -> None:
        b = _ctx()
        self.handle, self.obj = b.stream_create()
        self._alive = True

    def synchronize(self) -> None:
        _ctx().stream_synchronize(self.obj)

    def wait_event(self, event: "Event") -> None:
        """Make later work on this stream wait for ``event`` (no host blocking)."""
        _ctx().stream_wait_event(self.obj, event.obj)

    def free(self) -> None:
        if self._alive:
            self._alive = False
            _ctx().stream_destroy(self.obj)


class Event(_Resource):
    """A CUDA event with timing enabled."""

    def __init__(self) -> None:
        self.obj = _ctx().event_create()
        self._alive = True

    def record(self, stream: Union[Stream, int, None] = None) -> None:
        _ctx().event_record(self.obj, _stream_obj(stream))

    def synchronize(self) -> None:
        _ctx().event_synchronize(self.obj)

    def query(self) -> bool:
        """True when all work before the record has finished (never blocks)."""
        return bool(_ctx().event_query(self.obj))

    def elapsed_ms(self, start_event: "Event") -> float:
        """Milliseconds from ``start_event`` to this event (both recorded and complete)."""
        return float(_ctx().event_elapsed_ms(start_event.obj, self.obj))

    def free(self) -> None:
        if self._alive:
            self._alive = False
            _ctx().event_destroy(self.obj)


class DeviceBuffer(_Resource):
    """``nbytes`` of device memory (cudaMalloc); ``ptr`` is the device address."""

    def __init__(self, nbytes: int) -> None:
        if nbytes < 0:
            raise ValueError("DeviceBuffer: nbytes must be >= 0, got %d" % nbytes)
        self.nbytes = int(nbytes)
        self.ptr, self._keep = _ctx().malloc(max(self.nbytes, 1))

    def free(self) -> None:
        if self.ptr:
            ptr, self.ptr = self.ptr, 0
            _ctx().free(ptr, self._keep)


class HostBuffer(_Resource):
    """Pinned (page-locked) host memory seen as a numpy array.

    ``mapped=True`` also maps it into the device address space: ``device_ptr``
    is then the address kernels and TensorRT read directly (zero copy, the fast
    path on Jetson's integrated GPU; on a discrete GPU every access crosses PCIe).
    """

    def __init__(self, shape: Union[int, Sequence[int]], dtype: Any = np.uint8,
                 mapped: bool = False) -> None:
        self.shape = (int(shape),) if isinstance(shape, int) else tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        self.mapped = bool(mapped)
        self.ptr, self.device_ptr, self._keep = _ctx().host_alloc(max(self.nbytes, 1), self.mapped)
        raw = (ctypes.c_uint8 * max(self.nbytes, 1)).from_address(self.ptr)
        flat = np.frombuffer(raw, dtype=np.uint8, count=self.nbytes)
        self.array: np.ndarray = flat.view(self.dtype).reshape(self.shape)

    def free(self) -> None:
        if self.ptr:
            ptr, self.ptr = self.ptr, 0
            self.device_ptr = None
            self.array = np.empty((0,), self.dtype)
            _ctx().host_free(ptr, self._keep)


def _host_ptr(array: np.ndarray, name: str) -> Tuple[int, int]:
    if not isinstance(array, np.ndarray):
        raise TypeError("%s: expected a numpy array, got %s" % (name, type(array).__name__))
    if not array.flags.c_contiguous:
        raise ValueError("%s: array must be C-contiguous (use np.ascontiguousarray)" % name)
    return int(array.ctypes.data), int(array.nbytes)


def memcpy_htod_async(dst_ptr: int, host_array: np.ndarray,
                      stream: Union[Stream, int, None] = None) -> None:
    """Copy ``host_array`` to device address ``dst_ptr`` on ``stream``.

    Truly asynchronous only from pinned memory (:class:`HostBuffer`); from
    pageable memory CUDA stages the copy and may return after it finished.
    """
    src, n = _host_ptr(host_array, "memcpy_htod_async: host_array")
    _ctx().memcpy_async(int(dst_ptr), src, n, "HostToDevice", _stream_obj(stream))


def memcpy_dtoh_async(host_array: np.ndarray, src_ptr: int,
                      stream: Union[Stream, int, None] = None) -> None:
    """Copy ``host_array.nbytes`` from device address ``src_ptr`` into ``host_array``."""
    dst, n = _host_ptr(host_array, "memcpy_dtoh_async: host_array")
    _ctx().memcpy_async(dst, int(src_ptr), n, "DeviceToHost", _stream_obj(stream))


def memcpy_dtod_async(dst_ptr: int, src_ptr: int, nbytes: int,
                      stream: Union[Stream, int, None] = None) -> None:
    _ctx().memcpy_async(int(dst_ptr), int(src_ptr), int(nbytes), "DeviceToDevice",
                        _stream_obj(stream))


def memset_async(ptr: int, value: int, nbytes: int,
                 stream: Union[Stream, int, None] = None) -> None:
    """Fill ``nbytes`` at ``ptr`` with the byte ``value`` (e.g. to poison outputs in tests)."""
    _ctx().memset_async(int(ptr), int(value) & 0xFF, int(nbytes), _stream_obj(stream))


def check_last_error() -> None:
    """Raise if an earlier asynchronous launch failed."""
    _ctx().peek_last_error()


class GraphExec(_Resource):
    """An instantiated CUDA graph; launch it with :func:`launch_graph`."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def free(self) -> None:
        if self.obj is not None:
            obj, self.obj = self.obj, None
            _ctx().graph_destroy(obj)


def supports_graphs() -> bool:
    """False under PyCUDA, which has no graph API."""
    return bool(backend().supports_graphs)


def begin_capture(stream: Stream) -> None:
    """Start capturing ``stream``'s work into a graph (thread-local capture mode).

    Raises RuntimeFailure where graphs are unsupported (PyCUDA) or capture
    cannot start; callers then enqueue normally.
    """
    _ctx().begin_capture(_stream_obj(stream))


def end_capture(stream: Stream) -> Optional[GraphExec]:
    """Finish capture; the instantiated graph, or None when capture failed (logged)."""
    obj = _ctx().end_capture(_stream_obj(stream))
    return None if obj is None else GraphExec(obj)


def launch_graph(graph_exec: GraphExec, stream: Stream) -> None:
    _ctx().graph_launch(graph_exec.obj, _stream_obj(stream))

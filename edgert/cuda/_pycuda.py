"""The PyCUDA backend: what JetPack 5 images usually ship when cuda-python is absent.

Covers memory (pinned, mapped via ``DEVICEMAP``, device), streams, events and
loading/launching an already-compiled kernel image.  PyCUDA has no CUDA-graph
API and no NVRTC, so graph capture reports itself unsupported and new kernels
need cuda-python's NVRTC (kernels already in the on-disk cache load fine).

Written against PyCUDA's documented API; not run here (no PyCUDA on the device
machine's image), see the CUDA module's notes in the report.
"""
from __future__ import annotations

import atexit
import ctypes
import threading
from typing import Any, List, Optional, Tuple

import numpy as np

from edgert.errors import RuntimeFailure


class PyCudaBackend:
    """PyCUDA wrappers with the same surface as the cuda-python backend."""

    name = "pycuda"
    supports_graphs = False

    def __init__(self) -> None:
        import pycuda.driver as drv

        self.drv = drv
        drv.init()
        self._tls = threading.local()
        self._lock = threading.Lock()
        self._contexts: dict = {}

    def _call(self, call: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self.drv.Error as exc:
            raise RuntimeFailure("%s failed: %s" % (call, exc)) from exc

    def device_count(self) -> int:
        return int(self.drv.Device.count())

    def ensure_context(self, device: int) -> None:
        """Retain the device's primary context (the one TensorRT's runtime uses) and
        make it current on this thread; popped again at interpreter exit.

        PyCUDA cannot set ``MAP_HOST`` on a primary context; mapped allocations
        rely on unified addressing instead (see :meth:`host_alloc`).
        """
        if getattr(self._tls, "device", None) == device:
            return
        with self._lock:
            ctx = self._contexts.get(device)
            if ctx is None:
                dev = self.drv.Device(device)
                ctx = self._call("Device.retain_primary_context", dev.retain_primary_context)
                self._contexts[device] = ctx
        self._call("Context.push", ctx.push)
        self._tls.device = device
        atexit.register(_pop_quietly, self.drv)

    def attribute(self, attr: str, device: int) -> int:
        names = {
            "cudaDevAttrIntegrated": "INTEGRATED",
            "cudaDevAttrComputeCapabilityMajor": "COMPUTE_CAPABILITY_MAJOR",
            "cudaDevAttrComputeCapabilityMinor": "COMPUTE_CAPABILITY_MINOR",
            "cudaDevAttrMemoryClockRate": "MEMORY_CLOCK_RATE",
            "cudaDevAttrGlobalMemoryBusWidth": "GLOBAL_MEMORY_BUS_WIDTH",
            "cudaDevAttrUnifiedAddressing": "UNIFIED_ADDRESSING",
            "cudaDevAttrMultiProcessorCount": "MULTIPROCESSOR_COUNT",
        }
        enum = getattr(self.drv.device_attribute, names[attr])
        return int(self._call("Device.get_attribute", self.drv.Device(device).get_attribute, enum))

    def device_name(self, device: int) -> str:
        return str(self.drv.Device(device).name())

    def malloc(self, nbytes: int) -> Tuple[int, Any]:
        alloc = self._call("mem_alloc(%d)" % nbytes, self.drv.mem_alloc, nbytes)
        return int(alloc), alloc

    def free(self, ptr: int, keepalive: Any) -> None:
        self._call("DeviceAllocation.free", keepalive.free)

    def host_alloc(self, nbytes: int, mapped: bool) -> Tuple[int, Optional[int], Any]:
        flags = self.drv.host_alloc_flags.DEVICEMAP if mapped else 0
        arr = self._call("pagelocked_empty(%d)" % nbytes, self.drv.pagelocked_empty,
                         (max(nbytes, 1),), np.uint8, mem_flags=flags)
        ptr = int(arr.ctypes.data)
        dev_ptr = None
        if mapped:
            try:
                dev_ptr = int(arr.base.get_device_pointer())
            except self.drv.Error:
                # Unified addressing maps pinned memory at its host address.
                if self.attribute("cudaDevAttrUnifiedAddressing", self._tls.device) != 1:
                    raise RuntimeFailure("HostAllocation.get_device_pointer failed and the "
                                         "device has no unified addressing") from None
                dev_ptr = ptr
        return ptr, dev_ptr, arr

    def host_free(self, ptr: int, keepalive: Any) -> None:
        self._call("HostAllocation.free", keepalive.base.free)

    def memcpy_async(self, dst: int, src: int, nbytes: int, kind: str, stream: Any) -> None:
        drv = self.drv
        if kind == "HostToDevice":
            self._call("memcpy_htod_async", drv.memcpy_htod_async,
                       dst, _host_view(src, nbytes), stream)
        elif kind == "DeviceToHost":
            self._call("memcpy_dtoh_async", drv.memcpy_dtoh_async,
                       _host_view(dst, nbytes), src, stream)
        else:
            self._call("memcpy_dtod_async", drv.memcpy_dtod_async, dst, src, nbytes, stream)

    def memset_async(self, ptr: int, value: int, nbytes: int, stream: Any) -> None:
        self._call("memset_d8_async", self.drv.memset_d8_async, ptr, value, nbytes, stream)

    def stream_create(self) -> Tuple[int, Any]:
        s = self._call("Stream()", self.drv.Stream)
        return int(s.handle), s

    def stream_destroy(self, stream: Any) -> None:
        """PyCUDA destroys the stream when the object is collected."""

    def stream_synchronize(self, stream: Any) -> None:
        if stream is None:
            self._call("Context.synchronize", self.drv.Context.synchronize)
        else:
            self._call("Stream.synchronize", stream.synchronize)

    def event_create(self) -> Any:
        return self._call("Event()", self.drv.Event)

    def event_destroy(self, event: Any) -> None:
        """PyCUDA destroys the event when the object is collected."""

    def event_record(self, event: Any, stream: Any) -> None:
        self._call("Event.record", event.record, stream)

    def event_synchronize(self, event: Any) -> None:
        self._call("Event.synchronize", event.synchronize)

    def event_query(self, event: Any) -> bool:
        return bool(self._call("Event.query", event.query))

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        return float(self._call("Event.time_since", end.time_since, start))

    def stream_wait_event(self, stream: Any, event: Any) -> None:
        self._call("Stream.wait_for_event", stream.wait_for_event, event)

    def begin_capture(self, stream: Any) -> None:
        raise RuntimeFailure("CUDA graph capture needs cuda-python: pip install 'edgert[trt]'")

    def end_capture(self, stream: Any) -> Optional[Any]:
        return None

    def graph_launch(self, graph_exec: Any, stream: Any) -> None:
        raise RuntimeFailure("CUDA graphs need cuda-python: pip install 'edgert[trt]'")

    def graph_destroy(self, graph_exec: Any) -> None:
        """Nothing to destroy: PyCUDA never creates graphs."""

    def module_load(self, image: bytes) -> Any:
        return self._call("module_from_buffer", self.drv.module_from_buffer, image)

    def module_unload(self, module: Any) -> None:
        """PyCUDA unloads the module when the object is collected."""

    def module_function(self, module: Any, name: str) -> Any:
        return self._call("cuModuleGetFunction(%s)" % name, module.get_function, name)

    def launch(self, func: Any, grid: Tuple[int, int, int], block: Tuple[int, int, int],
               shared_bytes: int, stream: Any, args: List[Any]) -> None:
        """PyCUDA packs arguments itself: each ctypes value goes by value as raw bytes."""
        values = [np.frombuffer(bytes(a), dtype=np.dtype((np.void, ctypes.sizeof(a))))[0]
                  for a in args]
        self._call("Function call", func, *values, grid=grid[:2] if grid[2] == 1 else grid,
                   block=block, shared=shared_bytes, stream=stream)

    def peek_last_error(self) -> None:
        """PyCUDA raises launch errors from the launch itself or the next call."""


def _host_view(ptr: int, nbytes: int) -> np.ndarray:
    """A uint8 numpy view of host memory at ``ptr`` (PyCUDA copies want buffers)."""
    return np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(ptr))


def _pop_quietly(drv: Any) -> None:
    """Pop the context this thread pushed, so PyCUDA's exit check finds its stack empty."""
    try:
        drv.Context.pop()
    except Exception:  # noqa: BLE001 - nothing to pop, or the driver is already down
        pass

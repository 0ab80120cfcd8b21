"""The cuda-python backend: CUDA runtime for memory/streams/graphs, driver for modules.

Every cuda-python call returns ``(err, *results)``; :meth:`CudaPythonBackend._ok`
turns a non-success code into :class:`~edgert.errors.RuntimeFailure` naming the
call and the CUDA error name, so no error code is ever dropped.

Kernels are loaded with the driver API (``cuModuleLoadData``/``cuLaunchKernel``),
which exists in every CUDA version edgert targets (11.4 on JetPack 5 up to 13);
the driver calls run in the runtime's primary context, made current on each
thread by :meth:`ensure_context`.
"""
from __future__ import annotations

import ctypes
import logging
import threading
from types import ModuleType
from typing import Any, List, Optional, Tuple

from edgert.errors import RuntimeFailure

log = logging.getLogger("edgert.cuda")


def import_cuda_python() -> Tuple[ModuleType, ModuleType]:
    """(runtime, driver) modules from the new layout, else the pre-12.6 one."""
    try:
        from cuda.bindings import driver, runtime  # cuda-python >= 12.6

        return runtime, driver
    except ImportError:
        from cuda import cuda as driver  # <= 12.x layout
        from cuda import cudart as runtime

        return runtime, driver


class CudaPythonBackend:
    """Thin, checked wrappers over the cuda-python calls edgert uses."""

    name = "cuda-python"
    supports_graphs = True

    def __init__(self) -> None:
        self.rt, self.drv = import_cuda_python()
        self._tls = threading.local()
        self._lock = threading.Lock()
        self._initialized_devices: set = set()

    # -- errors -------------------------------------------------------------
    def _ok(self, call: str, result: Any) -> Any:
        """Unpack ``(err, *values)``; raise naming ``call`` and the error on failure."""
        if isinstance(result, tuple):
            err, values = result[0], result[1:]
        else:
            err, values = result, ()
        if int(err) != 0:
            self.rt.cudaGetLastError()  # a failed call also sets the last error: clear it
            raise RuntimeFailure("%s failed: %s" % (call, self.error_name(err)))
        if not values:
            return None
        return values[0] if len(values) == 1 else values

    def error_name(self, err: Any) -> str:
        name = getattr(err, "name", None)
        if name is None:
            return "CUDA error %d" % int(err)
        try:
            desc = self.rt.cudaGetErrorString(err)[1]
            desc = str(desc, "utf-8", "replace") if isinstance(desc, bytes) else str(desc)
        except Exception:  # noqa: BLE001 - the name alone is enough
            desc = ""
        return "%s (%s)" % (name, desc) if desc else str(name)

    # -- devices and context -----------------------------------------------
    def device_count(self) -> int:
        err, n = self.rt.cudaGetDeviceCount()
        return int(n) if int(err) == 0 else 0

    def ensure_context(self, device: int) -> None:
        """Make ``device``'s primary context current on this thread (once per thread).

        The first time a device is touched in the process, ``cudaDeviceMapHost`` is
        set before the context exists so mapped pinned memory works (Jetson zero
        copy); if something else (TensorRT, PyTorch) created the context first the
        flag cannot change, which is harmless on 64-bit platforms where unified
        addressing maps every pinned allocation anyway.
        """
        if getattr(self._tls, "device", None) == device:
            return
        with self._lock:
            if device not in self._initialized_devices:
                self._ok("cudaSetDevice", self.rt.cudaSetDevice(device))
                err = self.rt.cudaSetDeviceFlags(self.rt.cudaDeviceMapHost)[0]
                if int(err) != 0:
                    log.debug("cudaSetDeviceFlags(cudaDeviceMapHost): %s (context already active)",
                              self.error_name(err))
                    self.rt.cudaGetLastError()
                self._ok("cudaFree(0) [context init]", self.rt.cudaFree(0))
                self._initialized_devices.add(device)
        self._ok("cudaSetDevice", self.rt.cudaSetDevice(device))
        self._tls.device = device

    def attribute(self, attr: str, device: int) -> int:
        enum = getattr(self.rt.cudaDeviceAttr, attr)
        return int(self._ok("cudaDeviceGetAttribute(%s)" % attr,
                            self.rt.cudaDeviceGetAttribute(enum, device)))

    def device_name(self, device: int) -> str:
        name = self._ok("cuDeviceGetName", self.drv.cuDeviceGetName(256, device))
        return str(bytes(name).split(b"\0", 1)[0], "utf-8", "replace")

    # -- memory ---------------------------------------------------------------
    def malloc(self, nbytes: int) -> Tuple[int, Any]:
        return int(self._ok("cudaMalloc(%d)" % nbytes, self.rt.cudaMalloc(nbytes))), None

    def free(self, ptr: int, keepalive: Any) -> None:
        self._ok("cudaFree", self.rt.cudaFree(ptr))

    def host_alloc(self, nbytes: int, mapped: bool) -> Tuple[int, Optional[int], Any]:
        flags = self.rt.cudaHostAllocMapped if mapped else self.rt.cudaHostAllocDefault
        ptr = int(self._ok("cudaHostAlloc(%d)" % nbytes, self.rt.cudaHostAlloc(nbytes, flags)))
        dev_ptr = None
        if mapped:
            err, dptr = self.rt.cudaHostGetDevicePointer(ptr, 0)
            if int(err) == 0:
                dev_ptr = int(dptr)
            else:
                # Without cudaDeviceMapHost on the context (created by someone else
                # before edgert), unified addressing still maps pinned memory at the
                # same address (CUDA programming guide, "Unified Virtual Address Space").
                self.rt.cudaGetLastError()
                if self.attribute("cudaDevAttrUnifiedAddressing", self._tls.device) != 1:
                    self.rt.cudaFreeHost(ptr)
                    raise RuntimeFailure("cudaHostGetDevicePointer failed: %s"
                                         % self.error_name(err))
                dev_ptr = ptr
        return ptr, dev_ptr, None

    def host_free(self, ptr: int, keepalive: Any) -> None:
        self._ok("cudaFreeHost", self.rt.cudaFreeHost(ptr))

    def memcpy_async(self, dst: int, src: int, nbytes: int, kind: str, stream: Any) -> None:
        k = getattr(self.rt.cudaMemcpyKind, "cudaMemcpy" + kind)
        self._ok("cudaMemcpyAsync(%s)" % kind,
                 self.rt.cudaMemcpyAsync(dst, src, nbytes, k, stream or 0))

    def memset_async(self, ptr: int, value: int, nbytes: int, stream: Any) -> None:
        self._ok("cudaMemsetAsync", self.rt.cudaMemsetAsync(ptr, value, nbytes, stream or 0))

    # -- streams and events --------------------------------------------------
    def stream_create(self) -> Tuple[int, Any]:
        s = self._ok("cudaStreamCreateWithFlags",
                     self.rt.cudaStreamCreateWithFlags(self.rt.cudaStreamNonBlocking))
        return int(s), int(s)

    def stream_destroy(self, stream: Any) -> None:
        self._ok("cudaStreamDestroy", self.rt.cudaStreamDestroy(stream))

    def stream_synchronize(self, stream: Any) -> None:
        self._ok("cudaStreamSynchronize", self.rt.cudaStreamSynchronize(stream or 0))

    def event_create(self) -> Any:
        return self._ok("cudaEventCreate", self.rt.cudaEventCreate())

    def event_destroy(self, event: Any) -> None:
        self._ok("cudaEventDestroy", self.rt.cudaEventDestroy(event))

    def event_record(self, event: Any, stream: Any) -> None:
        self._ok("cudaEventRecord", self.rt.cudaEventRecord(event, stream or 0))

    def event_synchronize(self, event: Any) -> None:
        self._ok("cudaEventSynchronize", self.rt.cudaEventSynchronize(event))

    def event_query(self, event: Any) -> bool:
        err = self.rt.cudaEventQuery(event)[0]
        if int(err) == int(self.rt.cudaError_t.cudaErrorNotReady):
            return False
        self._ok("cudaEventQuery", (err,))
        return True

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        return float(self._ok("cudaEventElapsedTime", self.rt.cudaEventElapsedTime(start, end)))

    def stream_wait_event(self, stream: Any, event: Any) -> None:
        self._ok("cudaStreamWaitEvent", self.rt.cudaStreamWaitEvent(stream or 0, event, 0))

    # -- graphs ----------------------------------------------------------------
    def begin_capture(self, stream: Any) -> None:
        mode = self.rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        self._ok("cudaStreamBeginCapture", self.rt.cudaStreamBeginCapture(stream, mode))

    def end_capture(self, stream: Any) -> Optional[Any]:
        """The instantiated graph, or None when capture or instantiation failed."""
        err, graph = self.rt.cudaStreamEndCapture(stream)
        if int(err) != 0:
            log.warning("CUDA graph capture failed: cudaStreamEndCapture: %s", self.error_name(err))
            self.rt.cudaGetLastError()
            return None
        try:
            err, exe = self.rt.cudaGraphInstantiateWithFlags(graph, 0)
            if int(err) != 0:
                log.warning("CUDA graph instantiation failed: %s", self.error_name(err))
                self.rt.cudaGetLastError()
                return None
            return exe
        finally:
            self.rt.cudaGraphDestroy(graph)

    def graph_launch(self, graph_exec: Any, stream: Any) -> None:
        self._ok("cudaGraphLaunch", self.rt.cudaGraphLaunch(graph_exec, stream or 0))

    def graph_destroy(self, graph_exec: Any) -> None:
        self._ok("cudaGraphExecDestroy", self.rt.cudaGraphExecDestroy(graph_exec))

    # -- modules and launches ---------------------------------------------------
    def module_load(self, image: bytes) -> Any:
        return self._ok("cuModuleLoadData", self.drv.cuModuleLoadData(image))

    def module_unload(self, module: Any) -> None:
        self._ok("cuModuleUnload", self.drv.cuModuleUnload(module))

    def module_function(self, module: Any, name: str) -> Any:
        return self._ok("cuModuleGetFunction(%s)" % name,
                        self.drv.cuModuleGetFunction(module, name.encode()))

    def launch(self, func: Any, grid: Tuple[int, int, int], block: Tuple[int, int, int],
               shared_bytes: int, stream: Any, args: List[Any]) -> None:
        """Launch with ``args`` as ctypes objects (cuLaunchKernel copies them)."""
        ptrs = (ctypes.c_void_p * max(len(args), 1))(*[ctypes.addressof(a) for a in args])
        self._ok("cuLaunchKernel", self.drv.cuLaunchKernel(
            func, grid[0], grid[1], grid[2], block[0], block[1], block[2],
            shared_bytes, stream or 0, ctypes.addressof(ptrs), 0))

    def peek_last_error(self) -> None:
        """Raise if an earlier asynchronous launch failed (sticky or not)."""
        self._ok("cudaGetLastError", self.rt.cudaGetLastError())

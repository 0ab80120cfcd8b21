"""edgert's one CUDA module: devices, memory, streams, events, graphs, NVRTC kernels.

    from edgert import cuda
    if cuda.available():
        s = cuda.Stream()
        host = cuda.HostBuffer((4, 3, 416, 416), "float16", mapped=cuda.is_integrated())
        dev = cuda.DeviceBuffer(host.nbytes)
        cuda.memcpy_htod_async(dev.ptr, host.array, s)
        s.synchronize()

Bindings (cuda-python, else PyCUDA) are imported on first use, so importing this
package costs nothing and works without CUDA.
"""
from __future__ import annotations

from edgert.cuda.core import (
    DeviceBuffer,
    Event,
    GraphExec,
    HostBuffer,
    Stream,
    available,
    backend_name,
    begin_capture,
    check_last_error,
    compute_capability,
    device_attribute,
    device_name,
    end_capture,
    is_integrated,
    launch_graph,
    memcpy_dtod_async,
    memcpy_dtoh_async,
    memcpy_htod_async,
    memset_async,
    peak_memory_bandwidth,
    set_device,
    supports_graphs,
)
from edgert.cuda.nvrtc import (
    Kernel,
    Module,
    compile_module,
    default_cache_dir,
    nvrtc_available,
    nvrtc_version,
)

__all__ = [
    "DeviceBuffer", "Event", "GraphExec", "HostBuffer", "Kernel", "Module", "Stream",
    "available", "backend_name", "begin_capture", "check_last_error", "compile_module",
    "compute_capability", "default_cache_dir", "device_attribute", "device_name", "end_capture",
    "is_integrated", "launch_graph", "memcpy_dtod_async", "memcpy_dtoh_async",
    "memcpy_htod_async", "memset_async", "nvrtc_available", "nvrtc_version",
    "peak_memory_bandwidth",
    "set_device", "supports_graphs",
]

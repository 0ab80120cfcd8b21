"""edgert.cuda.core on a real GPU: device queries, pinned/mapped/device memory,
async copies on streams, events, graph capture, and error reporting."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from edgert import cuda
from edgert.errors import RuntimeFailure
from tests.cuda.gpu_marks import skip_without_gpu


def test_missing_binding_is_one_line_missing_dependency() -> None:
    code = (
        "from edgert import cuda\n"
        "from edgert.errors import MissingDependency\n"
        "assert cuda.available() is False\n"
        "try:\n"
        "    cuda.Stream()\n"
        "except MissingDependency as e:\n"
        "    print(str(e))\n"
    )
    env = dict(os.environ, EDGERT_CUDA_BACKEND="no-such-binding")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip()
    assert "\n" not in line
    assert line.startswith("CUDA unavailable") and "pip install 'edgert[trt]'" in line


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8)[:, ::2], [1, 2, 3]])
def test_copy_rejects_non_contiguous_or_non_array(bad: object) -> None:
    with pytest.raises((ValueError, TypeError), match="host_array"):
        cuda.memcpy_htod_async(0, bad)  # type: ignore[arg-type]


@pytest.mark.gpu
@skip_without_gpu
class TestOnGpu:
    def test_device_queries(self) -> None:
        assert cuda.device_name()
        major, minor = cuda.compute_capability()
        assert major >= 5 and minor >= 0
        assert isinstance(cuda.is_integrated(), bool)
        peak = cuda.peak_memory_bandwidth()
        assert peak is None or peak > 1e10
        assert cuda.backend_name() in ("cuda-python", "pycuda")

    @pytest.mark.parametrize("mapped", [False, True])
    @pytest.mark.parametrize("dtype", [np.uint8, np.float16, np.float32])
    def test_pinned_roundtrip_on_stream(self, mapped: bool, dtype: type) -> None:
        rng = np.random.default_rng(1)
        src = cuda.HostBuffer((3, 97, 131), dtype, mapped=mapped)
        dst = cuda.HostBuffer((3, 97, 131), dtype)
        src.array[...] = (rng.random(src.shape) * 200).astype(dtype)
        dst.array[...] = 0
        dev = cuda.DeviceBuffer(src.nbytes)
        stream = cuda.Stream()
        cuda.memset_async(dev.ptr, 0xFF, dev.nbytes, stream)
        cuda.memcpy_htod_async(dev.ptr, src.array, stream)
        cuda.memcpy_dtoh_async(dst.array, dev.ptr, stream)
        stream.synchronize()
        np.testing.assert_array_equal(dst.array, src.array)
        assert (src.device_ptr is not None) == mapped
        for b in (src, dst, dev):
            b.free()
            b.free()  # idempotent

    def test_mapped_memory_is_device_readable_without_copy(self) -> None:
        host = cuda.HostBuffer((1 << 16,), np.uint8, mapped=True)
        host.array[:] = np.arange(host.nbytes) % 251
        dev = cuda.DeviceBuffer(host.nbytes)
        out = np.zeros(host.nbytes, np.uint8)
        stream = cuda.Stream()
        assert host.device_ptr is not None
        cuda.memcpy_dtod_async(dev.ptr, host.device_ptr, host.nbytes, stream)
        cuda.memcpy_dtoh_async(out, dev.ptr, stream)
        stream.synchronize()
        np.testing.assert_array_equal(out, host.array)

    def test_events_time_and_order_work(self) -> None:
        n = 64 << 20
        a, b = cuda.DeviceBuffer(n), cuda.DeviceBuffer(n)
        stream = cuda.Stream()
        start, end = cuda.Event(), cuda.Event()
        start.record(stream)
        for _ in range(4):
            cuda.memcpy_dtod_async(b.ptr, a.ptr, n, stream)
        end.record(stream)
        end.synchronize()
        assert end.query()
        assert end.elapsed_ms(start) > 0.0

    def test_stream_waits_for_event_of_other_stream(self) -> None:
        host = cuda.HostBuffer((1 << 20,), np.uint8)
        host.array[:] = 7
        out = cuda.HostBuffer((1 << 20,), np.uint8)
        out.array[:] = 0
        dev = cuda.DeviceBuffer(host.nbytes)
        s1, s2, ev = cuda.Stream(), cuda.Stream(), cuda.Event()
        cuda.memcpy_htod_async(dev.ptr, host.array, s1)
        ev.record(s1)
        s2.wait_event(ev)
        cuda.memcpy_dtoh_async(out.array, dev.ptr, s2)
        s2.synchronize()
        assert int(out.array.min()) == 7

    def test_graph_capture_replays_captured_work(self) -> None:
        if not cuda.supports_graphs():
            with pytest.raises(RuntimeFailure, match="cuda-python"):
                cuda.begin_capture(cuda.Stream())
            return
        n = 1 << 20
        host_in = cuda.HostBuffer((n,), np.uint8)
        host_out = cuda.HostBuffer((n,), np.uint8)
        dev = cuda.DeviceBuffer(n)
        stream = cuda.Stream()
        cuda.begin_capture(stream)
        cuda.memcpy_htod_async(dev.ptr, host_in.array, stream)
        cuda.memcpy_dtoh_async(host_out.array, dev.ptr, stream)
        graph = cuda.end_capture(stream)
        assert graph is not None
        for value in (3, 9):  # the graph reads the pinned buffer's current contents
            host_in.array[:] = value
            cuda.launch_graph(graph, stream)
            stream.synchronize()
            assert int(host_out.array.min()) == value == int(host_out.array.max())
        graph.free()

    def test_failed_capture_returns_none(self) -> None:
        if not cuda.supports_graphs():
            pytest.skip("PyCUDA has no graph API (checked in the test above)")
        stream = cuda.Stream()
        pageable = np.zeros(1 << 16, np.uint8)
        dev = cuda.DeviceBuffer(pageable.nbytes)
        cuda.begin_capture(stream)
        try:
            stream.synchronize()  # illegal while capturing: invalidates the capture
        except RuntimeFailure:
            pass
        assert cuda.end_capture(stream) is None
        cuda.memcpy_htod_async(dev.ptr, pageable, stream)  # the stream is usable again
        stream.synchronize()

    def test_cuda_errors_name_call_and_error(self) -> None:
        pattern = r"(cudaMalloc|mem_alloc).*(cudaErrorMemoryAllocation|out of memory)"
        with pytest.raises(RuntimeFailure, match=pattern):
            cuda.DeviceBuffer(1 << 52)

"""edgert.cuda.nvrtc: compile, disk cache (miss then hit), launches, errors."""
from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest

from edgert import cuda
from edgert.cuda import nvrtc
from edgert.errors import RuntimeFailure
from tests.cuda.gpu_marks import skip_without_gpu

SAXPY = r"""
struct Coef { float a; int n; };
extern "C" __global__ void saxpy(Coef c, const float* x, float* y) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < c.n) y[i] = c.a * x[i] + y[i];
}
"""


class Coef(ctypes.Structure):
    _fields_ = [("a", ctypes.c_float), ("n", ctypes.c_int)]


@pytest.mark.parametrize(
    "change",
    [
        dict(source=SAXPY + "\n"),
        dict(options=["-DX=1"]),
        dict(cc=(8, 7)),
        dict(ver=(12, 9)),
    ],
)
def test_cache_key_changes_with_every_input(change: dict) -> None:
    base = dict(source=SAXPY, options=[], cc=(7, 2), ver=(11, 4))
    changed = dict(base, **change)
    k0 = nvrtc.cache_key(base["source"], base["options"], base["cc"], base["ver"])
    k1 = nvrtc.cache_key(changed["source"], changed["options"], changed["cc"], changed["ver"])
    assert k0 != k1
    assert k0 == nvrtc.cache_key(SAXPY, [], (7, 2), (11, 4))


def test_cache_dir_is_configurable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDGERT_KERNEL_CACHE", str(tmp_path / "k"))
    assert nvrtc.default_cache_dir() == tmp_path / "k"


@pytest.mark.gpu
@skip_without_gpu
class TestOnGpu:
    def _run_saxpy(self, module: cuda.Module, n: int) -> None:
        rng = np.random.default_rng(3)
        x = rng.random(n, dtype=np.float32)
        y = rng.random(n, dtype=np.float32)
        dx, dy = cuda.DeviceBuffer(x.nbytes), cuda.DeviceBuffer(y.nbytes)
        out = np.empty_like(y)
        s = cuda.Stream()
        cuda.memcpy_htod_async(dx.ptr, x, s)
        cuda.memcpy_htod_async(dy.ptr, y, s)
        module.function("saxpy").launch(
            ((n + 255) // 256, 1, 1), (256, 1, 1),
            [Coef(2.5, n), ctypes.c_void_p(dx.ptr), ctypes.c_void_p(dy.ptr)], s)
        cuda.memcpy_dtoh_async(out, dy.ptr, s)
        s.synchronize()
        cuda.check_last_error()
        np.testing.assert_allclose(out, 2.5 * x + y, rtol=1e-6)

    def test_compile_miss_then_disk_hit(self, tmp_path: Path) -> None:
        first = cuda.compile_module(SAXPY, "saxpy_test", ["-DUNUSED=1"], cache_dir=tmp_path)
        assert first.from_cache is False
        files = list(tmp_path.iterdir())
        assert len(files) == 1 and files[0].stat().st_size > 0
        assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
        again = cuda.compile_module(SAXPY, "saxpy_test", ["-DUNUSED=1"], cache_dir=tmp_path)
        assert again is first  # loaded once per process
        reloaded = cuda.compile_module(SAXPY, "saxpy_test", ["-DUNUSED=1"], cache_dir=tmp_path,
                                       reuse_loaded=False)
        assert reloaded.from_cache is True
        self._run_saxpy(reloaded, 100_003)

    def test_kernel_writes_mapped_host_memory_directly(self, tmp_path: Path) -> None:
        module = cuda.compile_module(SAXPY, "saxpy_mapped", cache_dir=tmp_path)
        n = 4097
        x = cuda.HostBuffer((n,), np.float32, mapped=True)
        y = cuda.HostBuffer((n,), np.float32, mapped=True)
        x.array[:] = np.arange(n, dtype=np.float32)
        y.array[:] = 1.0
        s = cuda.Stream()
        module.function("saxpy").launch(
            ((n + 127) // 128, 1, 1), (128, 1, 1),
            [Coef(-1.0, n), ctypes.c_void_p(x.device_ptr), ctypes.c_void_p(y.device_ptr)], s)
        s.synchronize()
        np.testing.assert_array_equal(y.array, 1.0 - np.arange(n, dtype=np.float32))

    def test_compile_error_names_call_and_log(self, tmp_path: Path) -> None:
        bad = 'extern "C" __global__ void k(float* p) { p[0] = undefined_name; }'
        with pytest.raises(RuntimeFailure, match=r"nvrtcCompileProgram\(bad\).*undefined_name"):
            cuda.compile_module(bad, "bad", cache_dir=tmp_path)
        assert not list(tmp_path.glob("*.cubin"))

    def test_unknown_kernel_names_call(self, tmp_path: Path) -> None:
        module = cuda.compile_module(SAXPY, "saxpy_names", cache_dir=tmp_path)
        with pytest.raises(RuntimeFailure, match=r"cuModuleGetFunction\(nope\)"):
            module.function("nope")

    def test_nvrtc_version_is_known(self) -> None:
        major, minor = cuda.nvrtc_version()
        assert major >= 11


def test_nvrtc_available_never_raises() -> None:
    assert isinstance(cuda.nvrtc_available(), bool)

"""Run-time kernel compilation (NVRTC) with an on-disk cache, and kernel launches.

edgert ships CUDA C++ as source strings and compiles them on the target for its
own compute capability, so one wheel serves Xavier (sm_72), Orin (sm_87) and
x86 GPUs.  Compiling takes about a second; the result is cached on disk keyed by
(source hash, options, compute capability, NVRTC version), written atomically,
so later starts only load the image.  The cache folder is
``$EDGERT_KERNEL_CACHE`` or ``~/.cache/edgert/kernels``.

NVRTC comes from cuda-python (``cuda.bindings.nvrtc`` or the older
``cuda.nvrtc``); under PyCUDA alone, only kernels already in the cache load.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from edgert.cuda import core
from edgert.errors import MissingDependency, RuntimeFailure
from edgert.fsutil import atomic_write_bytes

log = logging.getLogger("edgert.cuda.nvrtc")

_NVRTC_HINT = "NVRTC unavailable: pip install 'edgert[trt]' (cuda-python)"
_modules: Dict[Tuple[int, str], "Module"] = {}
_modules_lock = threading.Lock()
KernelArg = Union[ctypes._SimpleCData, ctypes.Structure, ctypes.Array]


def default_cache_dir() -> Path:
    env = os.environ.get("EDGERT_KERNEL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "edgert" / "kernels"


def _nvrtc() -> ModuleType:
    """The NVRTC binding module, with its shared library actually loadable."""
    try:
        try:
            from cuda.bindings import nvrtc
        except ImportError:
            from cuda import nvrtc
        _check(nvrtc, "nvrtcVersion", nvrtc.nvrtcVersion())
    except (ImportError, RuntimeFailure) as exc:
        raise MissingDependency("%s [%s]" % (_NVRTC_HINT, exc)) from exc
    except Exception as exc:  # noqa: BLE001 - cuda-pathfinder raises its own error when libnvrtc is absent
        raise MissingDependency("%s [%s: %s]" % (_NVRTC_HINT, type(exc).__name__, exc)) from exc
    return nvrtc


def nvrtc_available() -> bool:
    """True when run-time compilation works here (cuda-python's NVRTC and libnvrtc load)."""
    try:
        _nvrtc()
    except MissingDependency:
        return False
    return True


def _check(nvrtc: ModuleType, call: str, result: Any) -> Any:
    err, values = (result[0], result[1:]) if isinstance(result, tuple) else (result, ())
    if int(err) != 0:
        raise RuntimeFailure("%s failed: %s" % (call, getattr(err, "name", int(err))))
    return values[0] if len(values) == 1 else values


def nvrtc_version() -> Tuple[int, int]:
    nv = _nvrtc()
    major, minor = _check(nv, "nvrtcVersion", nv.nvrtcVersion())
    return int(major), int(minor)


def _target(nv: ModuleType, cc: Tuple[int, int]) -> Tuple[str, bool]:
    """(``--gpu-architecture`` value, is_cubin): native code when NVRTC knows the
    device, else PTX for the newest architecture it knows (the driver JITs it)."""
    want = cc[0] * 10 + cc[1]
    try:
        archs = [int(a) for a in _check(nv, "nvrtcGetSupportedArchs", nv.nvrtcGetSupportedArchs())]
    except (AttributeError, RuntimeFailure):
        archs = [want]
    if want in archs:
        return "sm_%d" % want, True
    older = [a for a in archs if a <= want]
    if not older:
        raise RuntimeFailure("NVRTC %d.%d cannot target compute capability %d.%d"
                             % (nvrtc_version() + cc))
    return "compute_%d" % max(older), False


def _compile(nv: ModuleType, source: str, name: str, options: Sequence[str],
             arch: str, cubin: bool) -> bytes:
    prog = _check(nv, "nvrtcCreateProgram",
                  nv.nvrtcCreateProgram(source.encode(), (name + ".cu").encode(), 0, [], []))
    try:
        opts = [("--gpu-architecture=" + arch).encode()] + [o.encode() for o in options]
        err = nv.nvrtcCompileProgram(prog, len(opts), opts)[0]
        if int(err) != 0:
            size = _check(nv, "nvrtcGetProgramLogSize", nv.nvrtcGetProgramLogSize(prog))
            buf = b" " * int(size)
            _check(nv, "nvrtcGetProgramLog", nv.nvrtcGetProgramLog(prog, buf))
            text = str(buf, "utf-8", "replace").strip().replace("\n", " | ")
            raise RuntimeFailure("nvrtcCompileProgram(%s) failed: %s: %s"
                                 % (name, getattr(err, "name", int(err)), text[:2000]))
        kind = "CUBIN" if cubin else "PTX"
        size = _check(nv, "nvrtcGet%sSize" % kind, getattr(nv, "nvrtcGet%sSize" % kind)(prog))
        image = b" " * int(size)
        _check(nv, "nvrtcGet" + kind, getattr(nv, "nvrtcGet" + kind)(prog, image))
        return image
    finally:
        nv.nvrtcDestroyProgram(prog)


def cache_key(source: str, options: Sequence[str], cc: Tuple[int, int],
              nvrtc_ver: Tuple[int, int]) -> str:
    """Hash of everything that changes the compiled image."""
    blob = json.dumps([hashlib.sha256(source.encode()).hexdigest(), list(options),
                       list(cc), list(nvrtc_ver)])
    return hashlib.sha256(blob.encode()).hexdigest()


def _image(source: str, name: str, options: Sequence[str], cache_dir: Path,
           cc: Tuple[int, int]) -> Tuple[bytes, bool]:
    """(compiled image, came_from_cache)."""
    nv = _nvrtc()
    key = cache_key(source, options, cc, nvrtc_version())
    arch, cubin = _target(nv, cc)
    suffix = "cubin" if cubin else "ptx"
    path = cache_dir / ("%s-sm%d%d-%s.%s" % (name, cc[0], cc[1], key[:20], suffix))
    if path.is_file():
        data = path.read_bytes()
        if data:
            return data, True
    start = time.perf_counter()
    image = _compile(nv, source, name, options, arch, cubin)
    log.info("compiled kernel %s for %s in %.2f s", name, arch, time.perf_counter() - start)
    try:
        atomic_write_bytes(path, image)
    except OSError as exc:  # a read-only home must not stop the pipeline
        log.warning("kernel cache %s not writable (%s); compiling on every start", cache_dir, exc)
    return image, False


class Kernel:
    """One ``extern "C" __global__`` function of a loaded module."""

    def __init__(self, module: "Module", name: str) -> None:
        self.module = module
        self.name = name
        self._func = core._ctx().module_function(module.handle, name)

    def launch(self, grid: Tuple[int, int, int], block: Tuple[int, int, int],
               args: Sequence[KernelArg], stream: Union[core.Stream, int, None] = None,
               shared_bytes: int = 0) -> None:
        """Launch with ``args`` as ctypes values in the kernel's parameter order
        (``c_void_p`` for pointers, ``c_int``/``c_float``, or a ctypes Structure
        passed by value). Parameters are copied at launch, so the caller may
        reuse the ctypes objects right after."""
        core._ctx().launch(self._func, tuple(grid), tuple(block), int(shared_bytes),
                           core._stream_obj(stream), list(args))


class Module:
    """A compiled and loaded kernel image (one per source/options/device)."""

    def __init__(self, handle: Any, name: str, from_cache: bool, device: int) -> None:
        self.handle = handle
        self.name = name
        self.from_cache = from_cache
        self.device = device
        self._kernels: Dict[str, Kernel] = {}

    def function(self, name: str) -> Kernel:
        if name not in self._kernels:
            self._kernels[name] = Kernel(self, name)
        return self._kernels[name]


def compile_module(source: str, name: str, options: Sequence[str] = (),
                   cache_dir: Optional[Union[str, Path]] = None,
                   reuse_loaded: bool = True) -> Module:
    """Compile ``source`` for the current device (or take it from the cache) and load it.

    ``options`` are NVRTC options such as ``-DFOO=1`` or ``--use_fast_math``;
    ``--gpu-architecture`` is chosen here from the device.  A module already
    loaded in this process is returned as is unless ``reuse_loaded`` is False.
    """
    b = core._ctx()
    device = core._device
    cc = core.compute_capability(device)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    opts: List[str] = list(options)
    mem_key = (device, cache_key(source, opts, cc, (0, 0)) + str(folder))
    with _modules_lock:
        if reuse_loaded and mem_key in _modules:
            return _modules[mem_key]
        image, hit = _image(source, name, opts, folder, cc)
        module = Module(b.module_load(image), name, hit, device)
        _modules[mem_key] = module
        return module

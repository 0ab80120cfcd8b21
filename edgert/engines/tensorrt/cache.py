"""The engine cache: build once per (model, options, TensorRT, GPU, L4T), reuse across boots.

Engines are not portable across TensorRT versions or GPUs ([SM825]), and a
stale engine after a JetPack upgrade is a classic failure.  So the cache key is
a SHA-256 over *everything* that shapes the engine: the ONNX bytes, every build
option, the calibration cache, the TensorRT version, the GPU name and compute
capability, the DLA core and the L4T release.  Files::

    <model>-<device>-<precision>-b<batch>-<key12>.engine    the serialized plan
    <same>.json                                               sidecar: key inputs, provenance,
                                                              build time, sha256, placement

The sidecar is written last and is the commit marker: an engine without a
valid sidecar, or whose bytes no longer match the recorded sha256, is treated
as absent and rebuilt.  Both files are written atomically (temp + fsync +
rename); a per-key lock file (``flock``) makes a second process wait for the
first one's build instead of building the same engine twice.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Dict, Iterator, Mapping, Optional, Union

from edgert.errors import RuntimeFailure
from edgert.fsutil import atomic_write

log = logging.getLogger("edgert.engines.tensorrt.cache")

FORMAT = 1  # bump when edgert changes how it builds engines
CHUNK = 4 << 20


def default_cache_dir() -> Path:
    env = os.environ.get("EDGERT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "edgert" / "engines"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def compute_key(inputs: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``inputs`` (sorted keys, no whitespace)."""
    text = json.dumps(dict(inputs, format=FORMAT), sort_keys=True, separators=(",", ":"),
                      default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def slug(text: str) -> str:
    """File-name-safe form: ``dla:0`` -> ``dla0``, ``NVIDIA Orin`` -> ``NVIDIA-Orin``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text.replace(":", "")).strip("-") or "x"


@dataclass(frozen=True)
class CacheEntry:
    engine: Path
    sidecar: Path
    key: str

    @property
    def lock(self) -> Path:
        return self.engine.with_suffix(".lock")


def entry_for(cache_dir: Path, model: str, device: str, precision: str, batch: int,
              key: str) -> CacheEntry:
    stem = "%s-%s-%s-b%d-%s" % (slug(model), slug(device), precision, batch, key[:12])
    return CacheEntry(engine=cache_dir / (stem + ".engine"),
                      sidecar=cache_dir / (stem + ".json"), key=key)


def read_sidecar(path: Path) -> Optional[Dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def verify(entry: CacheEntry) -> Optional[str]:
    """None when the cached engine is complete and intact, else why it is not."""
    if not entry.engine.is_file():
        return "not built"
    meta = read_sidecar(entry.sidecar)
    if meta is None:
        return "sidecar missing or unreadable (an interrupted build?)"
    if meta.get("key") != entry.key:
        return "sidecar key does not match"
    size = entry.engine.stat().st_size
    if meta.get("size") != size:
        return "size %d differs from the recorded %s" % (size, meta.get("size"))
    if meta.get("sha256") != file_sha256(entry.engine):
        return "sha256 differs from the recorded one (corrupt file)"
    return None


def _write_chunks(f: IO[bytes], data: memoryview) -> None:
    """Write in chunks so a multi-GB plan never needs a second in-memory copy."""
    for start in range(0, len(data), CHUNK):
        f.write(data[start:start + CHUNK])


def store(entry: CacheEntry, plan: Union[bytes, bytearray, memoryview],
          meta: Mapping[str, Any]) -> Dict[str, Any]:
    """Write the engine, then its sidecar (the commit marker); both atomically."""
    view = memoryview(plan).cast("B")
    sidecar = dict(meta, key=entry.key, size=len(view),
                   sha256=hashlib.sha256(view).hexdigest(), written=time.time(),
                   engine=entry.engine.name)
    with contextlib.suppress(OSError):
        entry.sidecar.unlink()  # a crash between the two writes leaves "not committed"
    with atomic_write(entry.engine, "wb") as f:
        _write_chunks(f, view)
    with atomic_write(entry.sidecar, "w") as t:
        json.dump(sidecar, t, indent=2, sort_keys=True, default=str)
        t.write("\n")
    return sidecar


def discard(entry: CacheEntry, why: str) -> None:
    """Remove a bad cached engine (logged) so it is rebuilt, never silently reused."""
    log.warning("cached engine %s is unusable (%s); rebuilding", entry.engine.name, why)
    for path in (entry.sidecar, entry.engine):
        with contextlib.suppress(OSError):
            path.unlink()


def clean_temp_files(cache_dir: Path, max_age_s: float = 3600.0) -> int:
    """Remove temp files that killed writers left behind (older than ``max_age_s``)."""
    removed = 0
    now = time.time()
    for tmp in cache_dir.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            if now - tmp.stat().st_mtime > max_age_s:
                tmp.unlink()
                removed += 1
    return removed


@contextlib.contextmanager
def build_lock(entry: CacheEntry, timeout_s: Optional[float] = None) -> Iterator[None]:
    """Hold the key's lock: one build per engine at a time across processes.

    ``flock`` locks die with their process, so a killed build never leaves
    a stale lock behind.
    """
    import fcntl

    entry.lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(entry.lock), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another process is building %s; waiting for it", entry.engine.name)
            _wait_lock(fd, timeout_s, entry)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _wait_lock(fd: int, timeout_s: Optional[float], entry: CacheEntry) -> None:
    import fcntl

    if timeout_s is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise RuntimeFailure("timed out after %.0fs waiting for the build lock %s"
                                     % (timeout_s, entry.lock)) from None
            time.sleep(0.2)

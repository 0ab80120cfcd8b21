"""Deploy bundles: everything a Jetson needs, prepared on an x86 workstation.

TensorRT engines are device specific, so a bundle carries what engines are
built *from*: the pipeline YAML (rewritten so every input path is relative to
the bundle), the ONNX models with their Q/DQ variants and calibration caches,
labels and other files the pipeline names, the edgert wheel, a manifest with
sha256 hashes (``manifest.json`` and ``SHA256SUMS``), and ``install.sh``,
which makes the venv, installs the wheel, checks the hashes, runs ``edgert
doctor`` and ``edgert build`` and optionally installs the systemd service.

Output paths (sinks) are not inputs: they are left as written, so relative
outputs land beside the bundled pipeline on the device.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import yaml
from pydantic import BaseModel

from edgert.errors import RuntimeFailure, UsageError
from edgert.fsutil import atomic_write
from edgert.progress import Progress

log = logging.getLogger("edgert.service.bundle")

KeyPath = Tuple[Union[str, int], ...]
_LOCAL_SCHEMES = ("file", "images")
# Beside MODEL.onnx: Q/DQ variants, ONNX external data and calibration caches.
_SIBLING_SUFFIXES = (".qdq.onnx", "-qdq.onnx", "_qdq.onnx", ".calib", ".calib.cache")


@dataclass
class BundleFile:
    arcname: str  # path inside the bundle folder
    source: Path
    key: str  # YAML key path that named it (or what it belongs to)


@dataclass
class BundlePlan:
    """What goes in, and how the YAML changes."""

    files: List[BundleFile] = field(default_factory=list)
    rewrites: Dict[KeyPath, str] = field(default_factory=dict)
    _by_source: Dict[Path, str] = field(default_factory=dict)

    def add(self, src: Path, folder: str, key: str) -> str:
        """Add ``src`` (file or folder) under ``folder/``; returns its bundle path."""
        src = src.resolve()
        if src in self._by_source:
            return self._by_source[src]
        name, n = src.name, 1
        taken = {f.arcname for f in self.files}
        while "%s/%s" % (folder, name) in taken:
            n += 1
            name = "%s-%d%s" % (src.stem, n, "".join(src.suffixes))
        arc = "%s/%s" % (folder, name)
        self.files.append(BundleFile(arc, src, key))
        self._by_source[src] = arc
        return arc


def _path_fields(obj: Any, key: KeyPath) -> Iterator[Tuple[KeyPath, Path]]:
    """Every ``Path`` value in a config object, with its YAML key path."""
    if isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            value = getattr(obj, name, None)
            if isinstance(value, Path):
                yield key + (name,), value
            elif value is not None:
                yield from _path_fields(value, key + (name,))
    elif isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            yield from _path_fields(item, key + (i,))
    elif isinstance(obj, dict):
        for k, item in obj.items():
            yield from _path_fields(item, key + (k,))


def _fmt(key: KeyPath) -> str:
    from edgert.config.yamlsrc import format_path

    return format_path(key)


def plan_bundle(cfg: Any) -> BundlePlan:
    """Decide the bundle's inputs from a validated pipeline."""
    from edgert.sources.base import resolve_local, split_uri

    plan = BundlePlan()
    for i, src in enumerate(cfg.sources):
        scheme, rest = split_uri(src.uri)
        local = resolve_local(rest, cfg.base_dir) if scheme in _LOCAL_SCHEMES else None
        if local is not None and local.exists():
            arc = plan.add(local, "media", _fmt(("sources", i, "uri")))
            plan.rewrites[("sources", i, "uri")] = "%s://%s" % (scheme, arc)
    for name, model in cfg.models.items():
        calib_cache = _existing(getattr(getattr(model.int8, "calibration", None), "cache", None))
        for key, path in _path_fields(model, ("models", name)):
            if key[-1] == "images" and (calib_cache or model.precision not in ("int8", "best")):
                continue  # a cache (or no INT8) makes calibration images unnecessary
            if path.exists():
                plan.rewrites[key] = plan.add(path, "models" if key[-1] != "images" else "calib",
                                              _fmt(key))
        onnx = Path(model.onnx)
        for sib in sorted(onnx.parent.glob(onnx.name + ".*")) + _siblings(onnx):
            if sib.is_file() and sib != onnx:
                plan.add(sib, "models", "models.%s (beside %s)" % (name, onnx.name))
    for i, stage in enumerate(cfg.stages):
        for key, path in _path_fields(stage, ("stages", i)):
            if path.exists():
                plan.rewrites[key] = plan.add(path, "files", _fmt(key))
    return plan


def _existing(p: Optional[Path]) -> Optional[Path]:
    return p if p is not None and Path(p).exists() else None


def _siblings(onnx: Path) -> List[Path]:
    stem = onnx.name[:-5] if onnx.name.endswith(".onnx") else onnx.stem
    return [onnx.parent / (stem + s) for s in _SIBLING_SUFFIXES]


def rewrite_yaml(doc: Any, rewrites: Dict[KeyPath, str]) -> Any:
    """Set each rewritten key in the raw document (keys absent from it are left)."""
    for key, value in rewrites.items():
        node = doc
        try:
            for part in key[:-1]:
                node = node[part]
            if isinstance(node, dict) and key[-1] in node:
                node[key[-1]] = value
        except (KeyError, IndexError, TypeError):
            log.debug("key %s not in the YAML; left as default", _fmt(key))
    return doc


# ------------------------------------------------------------ wheel


def project_root() -> Optional[Path]:
    """The source tree edgert runs from (None when it is an installed package)."""
    import edgert

    root = Path(edgert.__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


def build_wheel(dest: Path) -> Path:
    """``pip wheel --no-deps`` of the running edgert's source tree."""
    root = project_root()
    if root is None:
        raise UsageError("edgert is installed, not run from its source tree: pass "
                         "--wheel FILE.whl (build one with 'pip wheel --no-deps SRC')")
    # Build from a copy: setuptools writes build/ and *.egg-info into the tree it builds.
    src = dest / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "NOTICE"):
        if (root / name).is_file():
            shutil.copy2(str(root / name), str(src / name))
    shutil.copytree(str(root / "edgert"), str(src / "edgert"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dest), str(src)]
    from edgert._lazy import available

    if available("setuptools") and available("wheel"):
        # build deps already here: no trip to the registry for an isolated build env
        cmd.insert(4, "--no-build-isolation")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("edgert-*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeFailure("building the edgert wheel failed: %s" % tail[0])
    return wheels[-1]


# ------------------------------------------------------------ writing


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _walk(arc: str, src: Path) -> Iterator[Tuple[str, Path]]:
    if src.is_dir():
        for p in sorted(src.rglob("*")):
            if p.is_file():
                yield "%s/%s" % (arc, p.relative_to(src).as_posix()), p
    else:
        yield arc, src


def make_bundle(pipeline: Union[str, Path], out: Path,
                wheel: Optional[Path] = None) -> Dict[str, Any]:
    """Validate ``pipeline`` and write the bundle tarball atomically; returns the manifest."""
    from edgert import __version__
    from edgert.config.loader import load_pipeline
    from edgert.service.install_script import INSTALL_SH

    cfg = load_pipeline(pipeline)
    src_yaml = Path(str(cfg.path))
    plan = plan_bundle(cfg)
    doc = rewrite_yaml(yaml.safe_load(src_yaml.read_text()), plan.rewrites)
    top = out.name[:-7] if out.name.endswith(".tar.gz") else out.stem
    with tempfile.TemporaryDirectory(prefix="edgert-bundle-") as tmp:
        whl = wheel if wheel is not None else build_wheel(Path(tmp))
        if not whl.is_file():
            raise UsageError("--wheel: %s is not a file" % whl)
        entries = [(a, p) for f in plan.files for a, p in _walk(f.arcname, f.source)]
        entries.append(("wheels/" + whl.name, whl))
        generated = {
            src_yaml.name: _yaml_text(doc, src_yaml).encode(),
            "install.sh": INSTALL_SH.replace("@PIPELINE@", src_yaml.name).encode(),
        }
        manifest = _manifest(cfg, src_yaml, __version__, entries, generated, plan)
        generated["manifest.json"] = (json.dumps(manifest, indent=2) + "\n").encode()
        generated["SHA256SUMS"] = "".join(
            "%s  %s\n" % (f["sha256"], name) for name, f in manifest["files"].items()).encode()
        with Progress("bundling %d files into %s" % (len(entries), out), total=len(entries)) as p:
            # Level 1: ONNX weights barely compress (level 9 saves ~5% at 8x the time).
            with atomic_write(out, "wb") as fobj, \
                    tarfile.open(fileobj=fobj, mode="w:gz", compresslevel=1) as tar:
                for name, data in generated.items():
                    _add_bytes(tar, "%s/%s" % (top, name), data, 0o755 if name.endswith(".sh")
                               else 0o644)
                for arc, path in entries:
                    tar.add(str(path), arcname="%s/%s" % (top, arc), recursive=False)
                    p.advance()
    return manifest


def _yaml_text(doc: Any, src: Path) -> str:
    head = "# Bundled by edgert from %s; input paths are relative to this file.\n" % src
    return head + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None)


def _manifest(cfg: Any, src_yaml: Path, version: str, entries: List[Tuple[str, Path]],
              generated: Dict[str, bytes], plan: BundlePlan) -> Dict[str, Any]:
    keys = {f.arcname: f.key for f in plan.files}
    files: Dict[str, Any] = {}
    for name, data in generated.items():
        files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    for arc, path in entries:
        owner = next((k for a, k in keys.items() if arc == a or arc.startswith(a + "/")), "")
        files[arc] = {"sha256": sha256_file(path), "size": path.stat().st_size,
                      "from": str(path), "key": owner or "edgert wheel"}
    return {"format": 1, "edgert_version": version, "pipeline": src_yaml.name,
            "pipeline_name": cfg.name, "source": str(src_yaml),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": files}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, int(time.time())
    tar.addfile(info, io.BytesIO(data))


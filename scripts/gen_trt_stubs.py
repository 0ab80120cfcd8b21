#!/usr/bin/env python3
"""Regenerate ``stubs/`` (TensorRT type stubs for mypy) from the tensorrt-stubs wheel.

Why: TensorRT cannot be installed where edgert is developed, yet its Python API
is what the TensorRT backend is written against.  The ``tensorrt-stubs``
package (MIT, generated from TRT 10.13) has the API as ``.pyi`` files, but it
ships them without ``py.typed`` inside ``tensorrt/`` and ``tensorrt_bindings/``
(mypy skips them) and with a few syntax errors.  This script installs the wheel
into a temporary folder (``--no-deps``: its ``tensorrt`` dependency is a
download stub), copies both folders into ``stubs/`` and patches the errors, so
upgrading is one command::

    python scripts/gen_trt_stubs.py                 # default version
    python scripts/gen_trt_stubs.py --version 10.13.0.35.1 --out stubs

See TRT_REFERENCE.md section 11.  ``stubs/`` is generated, not committed.
"""
from __future__ import annotations

import argparse
import ast
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_VERSION = "10.13.0.35.1"
PACKAGES = ("tensorrt", "tensorrt_bindings")


def patch(text: str) -> str:
    """Fix the generator's syntax errors (checked with ast afterwards)."""
    # Parameters named after the keyword ``in`` (IPluginV3 on_shape_change, ...).
    text = re.sub(r"([(,]\s*)in(\s*:)", r"\1in_\2", text)
    # A non-default parameter after defaulted ones.
    text = text.replace("power: Weights = None, channel_axis: int)",
                        "power: Weights = None, channel_axis: int = 0)")
    return text


def install(version: str, target: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
           str(target), "tensorrt-stubs==%s" % version]
    subprocess.run(cmd, check=True)


def generate(version: str, out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="trt-stubs-") as tmp:
        install(version, Path(tmp))
        staging = Path(tmp) / "out"
        for pkg in PACKAGES:
            src = Path(tmp) / pkg
            if not src.is_dir():
                raise SystemExit("tensorrt-stubs %s has no %s/ folder" % (version, pkg))
            for pyi in sorted(src.rglob("*.pyi")):
                dst = staging / pkg / pyi.relative_to(src)
                dst.parent.mkdir(parents=True, exist_ok=True)
                text = patch(pyi.read_text(encoding="utf-8"))
                ast.parse(text, filename=str(dst))  # fail here, not inside mypy
                dst.write_text(text, encoding="utf-8")
            (staging / pkg / "py.typed").write_text("", encoding="utf-8")
        (staging / "VERSION").write_text("tensorrt-stubs==%s\n" % version, encoding="utf-8")
        # Swap in the finished folder in one step so a failed run leaves the old stubs.
        if out.exists():
            shutil.rmtree(out)
        shutil.move(str(staging), str(out))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default=DEFAULT_VERSION, help="tensorrt-stubs version")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "stubs",
                        help="output folder (default: <repo>/stubs)")
    args = parser.parse_args()
    generate(args.version, args.out)
    print("wrote %s (tensorrt-stubs==%s)" % (args.out, args.version))
    return 0


if __name__ == "__main__":
    sys.exit(main())

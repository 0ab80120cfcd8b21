"""``import edgert`` and every ``--help`` work with only the core dependencies.

A subprocess installs an import blocker for every optional dependency, then
imports every edgert module and runs ``edgert --help`` and each subcommand's
``--help``.  Anything that imports onnxruntime, cv2, tensorrt, ... at module
level fails here.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCKED = [
    "onnxruntime", "cv2", "tensorrt", "tensorrt_bindings", "cuda", "pycuda", "paho",
    "prometheus_client", "av", "onnx", "jtop", "torch", "cupy", "matplotlib", "psutil",
    "pynvml", "gi", "skimage",
]

SCRIPT = textwrap.dedent(
    """
    import importlib, pkgutil, sys, io, contextlib
    BLOCKED = set(%r)

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError("blocked optional dependency: " + name)
            return None

    sys.meta_path.insert(0, Blocker())
    import edgert
    failures = []
    for info in pkgutil.walk_packages(edgert.__path__, "edgert."):
        if info.name in ("edgert.__main__",):
            continue
        try:
            importlib.import_module(info.name)
        except Exception as exc:
            failures.append("%%s: %%s" %% (info.name, exc))
    from edgert.cli.main import build_parser, main
    parser = build_parser()
    commands = sorted(parser._subparsers._group_actions[0].choices)
    for argv in [["--help"]] + [[c, "--help"] for c in commands]:
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                main(argv)
        except SystemExit as exc:
            if exc.code not in (0, None):
                failures.append("%%s exited %%s" %% (argv, exc.code))
        except Exception as exc:
            failures.append("%%s: %%r" %% (argv, exc))
    print("COMMANDS", " ".join(commands))
    if failures:
        print("\\n".join(failures))
        sys.exit(1)
    """
) % (BLOCKED,)


def test_import_and_help_without_optional_dependencies() -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "COMMANDS validate" in proc.stdout or "validate" in proc.stdout


def test_version_flag() -> None:
    proc = subprocess.run([sys.executable, "-m", "edgert", "--version"], capture_output=True,
                          text=True)
    assert proc.returncode == 0
    assert proc.stdout.startswith("edgert ")


def test_usage_error_is_one_line() -> None:
    proc = subprocess.run([sys.executable, "-m", "edgert", "validate"], capture_output=True,
                          text=True)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1

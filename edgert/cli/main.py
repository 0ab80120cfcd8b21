"""``edgert`` command line: one exit path, one line per user error.

Subcommands are the modules of this package that define ``register``; each
adds its own subparser and sets ``func`` (``args -> exit code``).  Command
modules import heavy dependencies inside ``func`` only, so ``edgert --help``
works with only the core dependencies installed.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
import traceback
from typing import Callable, List, NoReturn, Optional

from edgert import __version__
from edgert.errors import EdgertError

log = logging.getLogger("edgert.cli")


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, "%s: error: %s (see %s --help)\n" % (self.prog, message, self.prog))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="edgert",
        description="Run vision pipelines on NVIDIA Jetson (TensorRT) and anywhere else (ONNX Runtime).",
    )
    parser.add_argument("--version", action="version", version="edgert " + __version__)
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more output; -v also shows tracebacks of errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for mod in _command_modules():
        mod.register(sub)
    return parser


def _command_modules() -> list:
    import edgert.cli as pkg

    mods = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_") or info.name in ("main", "common"):
            continue
        mod = importlib.import_module("edgert.cli." + info.name)
        if hasattr(mod, "register"):
            mods.append(mod)
    mods.sort(key=lambda m: (getattr(m, "ORDER", 50), m.__name__))
    return mods


def _setup_logging(verbose: int, quiet: bool) -> Callable[[], None]:
    """Configure the ``edgert`` logger for the CLI; returns a function that undoes it.

    The library adds no handlers of its own, so only the CLI does this, and it
    restores the previous state on return: ``main()`` called in-process (tests,
    embedding) leaves logging as it found it.
    """
    level = logging.WARNING if quiet else (logging.DEBUG if verbose >= 2 else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("edgert: %(message)s"))
    root = logging.getLogger("edgert")
    saved = (list(root.handlers), root.level, root.propagate)
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False

    def restore() -> None:
        root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]

    return restore


_GLOBAL_FLAGS = ("-v", "-vv", "-vvv", "--verbose", "-q", "--quiet")


def _hoist_global_flags(argv: List[str]) -> List[str]:
    """Accept ``edgert run p.yaml -v`` as well as ``edgert -v run p.yaml``."""
    if "--" in argv:
        cut = argv.index("--")
        head, tail = argv[:cut], argv[cut:]
    else:
        head, tail = argv, []
    flags = [a for a in head if a in _GLOBAL_FLAGS]
    rest = [a for a in head if a not in _GLOBAL_FLAGS]
    return flags + rest + tail


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_hoist_global_flags(list(sys.argv[1:] if argv is None else argv)))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    restore_logging = _setup_logging(args.verbose, args.quiet)
    try:
        code = args.func(args)
        return int(code or 0)
    except EdgertError as err:
        if args.verbose:
            traceback.print_exc()
        msg = str(err)
        sys.stderr.write((msg if getattr(err, "file", None) else "edgert: " + msg) + "\n")
        return err.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("edgert: interrupted\n")
        return 130
    except BrokenPipeError:
        return 1
    finally:
        restore_logging()


def entry() -> NoReturn:
    sys.exit(main())

"""Finding and running the platform's command-line tools.

Every external command edgert runs for the platform layer (nvpmodel,
jetson_clocks, dpkg-query, nvidia-smi, systemctl) goes through :func:`run`, so
there is one place that logs what ran, applies a timeout and never lets a
missing tool become a traceback.  Tools are looked up on ``PATH`` (the tests
put logging stand-in executables first on ``PATH``), with the JetPack locations
as a fallback because ``sudo`` often resets ``PATH``.
"""
from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

log = logging.getLogger("edgert.platform.tools")

_EXTRA_DIRS = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")


def sysroot() -> Path:
    """Root that device-tree, sysfs and /etc reads are relative to.

    ``EDGERT_SYSFS_ROOT`` points it elsewhere: a container with the host's
    /sys and /etc mounted under a folder, or a test's fixture tree.
    """
    return Path(os.environ.get("EDGERT_SYSFS_ROOT") or "/")


def which(name: str) -> Optional[str]:
    """Full path of tool ``name`` or None."""
    found = shutil.which(name)
    if found:
        return found
    for d in _EXTRA_DIRS:
        cand = os.path.join(d, name)
        if os.access(cand, os.X_OK):
            return cand
    return None


@dataclass
class Result:
    argv: List[str]
    returncode: int
    output: str
    """stdout and stderr together, as a person would have seen them."""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def quote(argv: Sequence[str]) -> str:
    """The shell spelling of ``argv`` (what ``--dry-run`` prints)."""
    return " ".join(shlex.quote(a) for a in argv)


def run(argv: Sequence[str], timeout: float = 30.0, stdin_text: str = "") -> Optional[Result]:
    """Run ``argv``; None when the tool is not installed.

    ``stdin_text`` answers prompts (nvpmodel asks before a reboot); without it
    stdin is empty so a prompt can never hang edgert.
    """
    exe = which(argv[0])
    if exe is None:
        return None
    full = [exe] + list(argv[1:])
    log.debug("running %s", quote(full))
    try:
        proc = subprocess.run(full, input=stdin_text, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        out = exc.output if isinstance(exc.output, str) else ""
        return Result(full, 124, out + "\n(timed out after %.0f s)" % timeout)
    except OSError as exc:
        return Result(full, 126, str(exc))
    return Result(full, proc.returncode, proc.stdout or "")

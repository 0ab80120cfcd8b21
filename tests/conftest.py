"""Suite-wide setup.

Subprocesses (``python -m edgert ...``) must import the edgert under test even
when it is not pip-installed (worktrees, ``PYTHONPATH=.``) and from any cwd, so
the repository root is put on PYTHONPATH as an absolute path.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != "."]
if str(REPO) not in _paths:
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO)] + _paths)

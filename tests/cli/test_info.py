"""`edgert info` on this machine (a workstation, not a Jetson)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

from tests.platform.conftest import REPO, TREES


def run(*args: str, env_extra: Optional[dict] = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGERT_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "edgert"] + list(args), cwd=str(REPO), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=120, check=False)


def test_info_json_here():
    out = run("info", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["is_jetson"] is False
    import numpy

    assert data["versions"]["numpy"] == numpy.__version__
    assert set(data["versions"]) >= {"tensorrt", "cuda-python", "pycuda", "onnxruntime", "opencv"}


def test_info_text_on_a_fixture_jetson(tmp_path: Path):
    out = run("info", env_extra={"EDGERT_SYSFS_ROOT": str(TREES / "agx_orin_jp5"),
                                 "PATH": str(tmp_path)})   # no nvpmodel: mode unknown
    assert out.returncode == 0, out.stderr
    assert "NVIDIA Jetson AGX Orin Developer Kit" in out.stdout
    assert "5.1.1" in out.stdout and "T234" in out.stdout

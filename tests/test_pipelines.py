"""Every pipeline file shipped in pipelines/ and configs/ loads and validates."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgert.config.loader import load_pipeline

REPO = Path(__file__).resolve().parents[1]
FILES = sorted(list((REPO / "pipelines").glob("*.yaml"))
               + list((REPO / "configs").glob("**/*.yaml")))


def test_there_are_pipelines() -> None:
    assert (REPO / "pipelines" / "demo.yaml") in FILES


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_validates(path: Path) -> None:
    cfg = load_pipeline(path)
    assert cfg.sources and cfg.path == path.resolve()


def test_validate_cli_on_demo() -> None:
    proc = subprocess.run([sys.executable, "-m", "edgert", "validate",
                           str(REPO / "pipelines" / "demo.yaml")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "valid pipeline 'street-demo'" in proc.stdout

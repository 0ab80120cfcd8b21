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


def _is_build_preset(path: Path) -> bool:
    """configs/ also holds TensorRT build presets (a top-level ``preset:`` key)."""
    import yaml

    doc = yaml.safe_load(path.read_text())
    return isinstance(doc, dict) and "preset" in doc and "sources" not in doc


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_validates(path: Path) -> None:
    if _is_build_preset(path):
        from edgert.config.presets import load_preset

        assert load_preset(path).description
        return
    cfg = load_pipeline(path)
    assert cfg.sources and cfg.path == path.resolve()


def test_validate_cli_on_demo() -> None:
    proc = subprocess.run([sys.executable, "-m", "edgert", "validate",
                           str(REPO / "pipelines" / "demo.yaml")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "valid pipeline 'street-demo'" in proc.stdout

from __future__ import annotations

import subprocess
import sys

import pytest


def _explain(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgert", "explain", *args],
                          capture_output=True, text=True)


def test_lists_every_group() -> None:
    proc = _explain()
    assert proc.returncode == 0
    for group in ("sections:", "sources:", "stages:", "sinks:"):
        assert group in proc.stdout


@pytest.mark.parametrize("name,expected", [
    ("models", "precision (str, default: 'fp16')"),
    ("runtime", "drop_policy"),
    ("power", "restore_on_exit"),
])
def test_shows_keys_with_docs(name: str, expected: str) -> None:
    proc = _explain(name)
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout


def test_unknown_name_suggests() -> None:
    proc = _explain("modles")
    assert proc.returncode == 2
    assert "did you mean 'models'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1

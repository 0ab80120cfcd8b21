"""SIGTERM / SIGINT mid-run: drain, flush, exit 0; a stage failure: one line, exit 1, no hang."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO


def _start(out: Path, *extra: str) -> "subprocess.Popen[str]":
    return subprocess.Popen([sys.executable, "-m", "tests.runtime.serve_doubles", str(out), *extra],
                            cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _wait_for_lines(path: Path, n: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count("\n") >= n:
            return
        time.sleep(0.05)
    raise AssertionError("no output from the pipeline within %.0fs" % timeout_s)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_drains_flushes_and_exits_0(tmp_path: Path, sig: int) -> None:
    out = tmp_path / "out.jsonl"
    proc = _start(out)
    _wait_for_lines(out, 20)
    proc.send_signal(sig)
    _stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]  # every line parses
    summary = rows[-1]
    assert summary["stopped"] is True
    frames = rows[:-1]
    for name, fin, fout, dropped in summary["summary"]:
        mine = [r["frame"] for r in frames if r["source"] == name]
        assert mine == list(range(fout))  # complete and in order, up to the last frame
        assert fin == fout + dropped and dropped == 0  # files drain: nothing lost


def test_stage_exception_exits_1_with_one_line(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc = _start(out, "--fail-at-frame", "30")
    _stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1
    lines = [ln for ln in stderr.splitlines() if "failed" in ln]
    assert lines.count("edgert: stage 'det' failed: ValueError: decoder exploded on frame 30") == 1
    assert "Traceback" not in stderr

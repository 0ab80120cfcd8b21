"""``edgert run`` (threaded) under SIGTERM/SIGINT and a failing stage, in a subprocess.

Real CLI, letterbox, ONNX Runtime (a tiny generated model), jsonl and video
sinks; frames come from the ``test://`` double so the run is fast and endless
until the signal arrives.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest

from tests.conftest import REPO
from tests.media import count_frames, tiny_model

YAML = """
name: endless
sources:
  - {name: a, uri: 'test://a', frames: 1000000, delay_ms: 4}
  - {name: b, uri: 'test://b', frames: 1000000, delay_ms: 6}
  - {name: c, uri: 'test://c', frames: 40}
models:
  m: {onnx: tiny.onnx, backend: onnxruntime, device: cpu, batch: 2}
stages:
  - {name: pre, kind: letterbox, input: sources, size: [8, 8]}
  - {name: infer, kind: infer, model: m, input: pre}
  - {name: det, kind: test-post, input: infer%s}
sinks:
  - {kind: jsonl, input: det, path: out/det.jsonl}
  - {kind: video, input: det, path: "out/{source}.mp4", codec: mp4v}
"""


def _start(tmp: Path, post: str = "") -> "subprocess.Popen[str]":
    (tmp / "p.yaml").write_text(YAML % post)
    tiny_model(tmp / "tiny.onnx")
    cmd = [sys.executable, "-m", "tests.runtime.serve_doubles", "-q", "run", "p.yaml",
           "--executor", "threaded"]
    return subprocess.Popen(cmd, cwd=str(tmp), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env())


def _env() -> dict:
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _wait_for_lines(path: Path, n: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count("\n") >= n:
            return
        time.sleep(0.05)
    raise AssertionError("no output from the pipeline within %.0fs" % timeout_s)


def _records(path: Path) -> List[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]  # every line parses


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_drains_flushes_and_exits_0(tmp_path: Path, sig: int) -> None:
    proc = _start(tmp_path)
    _wait_for_lines(tmp_path / "out" / "det.jsonl", 60)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "stopped by signal" in stdout
    records = _records(tmp_path / "out" / "det.jsonl")
    for name in ("a", "b", "c"):
        frames = [r["frame"] for r in records if r["source"] == name]
        assert frames == list(range(len(frames))) and frames, name  # complete, in order
        assert count_frames(tmp_path / "out" / ("%s.mp4" % name)) == len(frames)  # MP4 opens
        assert ("%s %d/%d" % (name, len(frames), len(frames))) in stdout  # drained: none lost


def test_stage_exception_exits_1_with_one_line_and_valid_outputs(tmp_path: Path) -> None:
    proc = _start(tmp_path, post=", fail_at_frame: 30")
    _stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert stderr.strip().splitlines() == [
        "edgert: stage 'det' failed: ValueError: decoder exploded on frame 30"]
    _records(tmp_path / "out" / "det.jsonl")  # what was written before the failure parses

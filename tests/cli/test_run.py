"""``edgert run`` end to end, as a user runs it: real model, real video, real files."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest

from tests.media import COCO, NANODET, REPO, count_frames, street_frames, write_clip

DEMO = REPO / "pipelines" / "demo.yaml"


def _run(args: List[str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgert", "-q", "run"] + args, cwd=str(cwd),
                          capture_output=True, text=True, timeout=timeout)


def _lines(path: Path) -> List[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_demo_pipeline_detects_people(tmp_path: Path) -> None:
    proc = _run([str(DEMO), "--max-frames", "30"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = proc.stdout.strip().splitlines()
    assert len(summary) == 1 and summary[0].startswith("street-demo: 30 frames")
    assert "street 30/30" in summary[0] and "person " in summary[0]
    video, jsonl = tmp_path / "out" / "street.mp4", tmp_path / "out" / "detections.jsonl"
    assert count_frames(video) == 30
    records = _lines(jsonl)
    assert [r["frame"] for r in records] == list(range(30))
    with_people = sum(any(d["label"] == "person" for d in r["detections"]) for r in records)
    assert with_people >= 0.7 * len(records)
    box = records[0]["detections"][0]["box"]
    assert 0 <= box[0] < box[2] <= 640 and 0 <= box[1] < box[3] <= 360


def _two_stream_yaml(folder: Path, batch: int, loop: bool = False) -> Path:
    frames = street_frames(8, start=100)
    write_clip(folder / "a.mp4", frames)
    write_clip(folder / "b.mp4", frames[:5])
    text = """\
name: two
sources:
  - {name: a, uri: file://a.mp4, loop: %s}
  - {name: b, uri: file://b.mp4, loop: %s}
models:
  det: {onnx: %s, labels: %s, backend: onnxruntime, device: cpu, batch: %d}
stages:
  - {name: pre, kind: letterbox, size: [416, 416], channel_order: bgr,
     mean: [103.53, 116.28, 123.675], std: [57.375, 57.12, 58.395]}
  - {name: infer, kind: infer, model: det, input: pre}
  - {name: det, kind: nanodet, input: infer}
sinks:
  - {kind: video, input: det, path: "v/{source}.mp4"}
  - {kind: jsonl, input: det, path: d.jsonl}
""" % (str(loop).lower(), str(loop).lower(), NANODET, COCO, batch)
    path = folder / "two.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("max_frames, expected", [(3, {"a": 3, "b": 3}), (None, {"a": 8, "b": 5})])
def test_max_frames_exact_per_source_batched_across_streams(tmp_path: Path, max_frames: object,
                                                            expected: dict) -> None:
    yaml_path = _two_stream_yaml(tmp_path, batch=4)
    args = [str(yaml_path)] + (["--max-frames", str(max_frames)] if max_frames else [])
    proc = _run(args, tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = _lines(tmp_path / "d.jsonl")
    got = {s: sum(r["source"] == s for r in records) for s in ("a", "b")}
    assert got == expected
    for s, n in expected.items():
        assert count_frames(tmp_path / "v" / ("%s.mp4" % s)) == n
        assert [r["frame"] for r in records if r["source"] == s] == list(range(n))


def test_sigterm_stops_cleanly_with_complete_outputs(tmp_path: Path) -> None:
    yaml_path = _two_stream_yaml(tmp_path, batch=2, loop=True)
    proc = subprocess.Popen([sys.executable, "-m", "edgert", "-q", "run", str(yaml_path)],
                            cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    out = tmp_path / "d.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and len(out.read_text().splitlines()) >= 6:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "stopped by signal" in stdout
    records = _lines(out)
    for s in ("a", "b"):
        n = sum(r["source"] == s for r in records)
        assert n >= 3 and count_frames(tmp_path / "v" / ("%s.mp4" % s)) == n
    assert not list((tmp_path / "v").glob(".*"))  # temp files renamed into place


@pytest.mark.parametrize("broken, match", [
    ("model", "model 'det': cannot load ONNX file"),
    ("video", "source 'a': cannot decode video"),
])
def test_corrupt_files_fail_in_one_line(tmp_path: Path, broken: str, match: str) -> None:
    yaml_path = _two_stream_yaml(tmp_path, batch=1)
    if broken == "model":
        bad = tmp_path / "bad.onnx"
        bad.write_bytes(b"\x00garbage" * 64)
        yaml_path.write_text(yaml_path.read_text().replace(str(NANODET), str(bad)))
    else:
        (tmp_path / "a.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x07" * 5000)
    proc = _run([str(yaml_path)], tmp_path)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and match in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args, code", [(["--max-frames", "0"], 2), (["--max-frames", "x"], 2)])
def test_bad_arguments(tmp_path: Path, args: List[str], code: int) -> None:
    proc = _run([str(DEMO)] + args, tmp_path)
    assert proc.returncode == code and len(proc.stderr.strip().splitlines()) == 1

"""kill -9 in the middle of ``edgert run``: what was written must stay usable.

A real run (file source paced like a camera, looping) writes segmented video
and jsonl; its Prometheus endpoint is scraped while it runs; then it is
killed with SIGKILL.  Every jsonl line must parse, the closed video segments
must play, and the next run must keep (not truncate) what the killed one left.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import List

import pytest

from tests.media import STREET
from tests.servers import free_port

cv2 = pytest.importorskip("cv2")
parser = pytest.importorskip("prometheus_client.parser")
pytest.importorskip("av")

PIPELINE = """\
version: 1
sources:
  - {name: cam, uri: "file://%s", loop: true, realtime: true, end_s: 3}
sinks:
  - {kind: video, input: sources, path: "out/{source}.mp4", segment_s: 0.5}
  - {kind: jsonl, input: sources, path: out/cam.jsonl, fsync: interval}
runtime: {metrics_port: %d}
"""


def start_run(folder: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edgert", "run", "p.yaml"], cwd=str(folder),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def segments(out: Path) -> List[Path]:
    return sorted(out.glob("cam.[0-9]*.mp4"), key=lambda p: int(p.name.split(".")[1]))


def wait_for(cond, proc: subprocess.Popen, what: str) -> None:
    for _ in range(1200):  # polling only; the run's speed is not asserted
        if cond():
            return
        if proc.poll() is not None:
            raise AssertionError("edgert run exited early: %s" % proc.stderr.read().decode())
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def scrape(port: int) -> dict:
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as resp:
        return {f.name: f for f in parser.text_string_to_metric_families(resp.read().decode())}


def frames_in(port: int) -> float:
    try:
        fams = scrape(port)
    except OSError:
        return 0.0
    fam = fams.get("edgert_frames_in")
    return sum(s.value for s in fam.samples if s.labels.get("source") == "cam") if fam else 0.0


def decode_count(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_kill_9_leaves_whole_lines_and_playable_segments(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "p.yaml").write_text(PIPELINE % (STREET, port))
    out = tmp_path / "out"
    proc = start_run(tmp_path)
    try:
        wait_for(lambda: frames_in(port) > 0, proc, "frames on the metrics endpoint")
        fams = scrape(port)  # scraped during the run, parsed by prometheus-client
        assert fams["edgert_frames_in"].type == "counter"
        wait_for(lambda: len(segments(out)) >= 2, proc, "two closed video segments")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    lines = (out / "cam.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line parses, the last one too
    assert [r["frame"] for r in records] == list(range(len(records)))
    closed = segments(out)
    for seg in closed:
        assert decode_count(seg) == 15, seg  # 0.5 s at 29.97 fps, complete and playable

    # The next run keeps what the killed one left: jsonl rotated away, partial video kept.
    partials = list(out.glob(".cam.*.partial.mp4"))
    proc = start_run(tmp_path)
    try:
        wait_for(lambda: (out / "cam.1.jsonl").exists(), proc, "the old jsonl rotated away")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    kept = [json.loads(line) for line in (out / "cam.1.jsonl").read_text().splitlines()]
    assert kept == records
    assert len(list(out.glob("cam.interrupted-*.mp4"))) == len(partials)
    assert all(os.path.getsize(p) > 0 for p in segments(out))

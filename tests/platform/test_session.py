"""platform_session: power settings + telemetry around a run."""
from __future__ import annotations

import time
from pathlib import Path

from edgert.config.schema import PowerConfig
from edgert.platform.power import PowerController
from edgert.platform.session import platform_session
from edgert.runtime.metrics import Metrics
from tests.platform.conftest import FakeJetson, require_root


def wait_samples(session, n: int = 1) -> None:
    deadline = time.monotonic() + 60
    while session.summary()["samples"] < n and time.monotonic() < deadline:
        time.sleep(0.01)
    assert session.summary()["samples"] >= n


def test_on_a_fake_jetson_mode_and_watts_are_summarized(fake_orin: FakeJetson):
    require_root()
    ctl = PowerController(root=fake_orin.root, state_folder=fake_orin.state_dir, euid=0)
    metrics = Metrics()
    with platform_session(PowerConfig(nvpmodel="MAXN", jetson_clocks=True), metrics,
                          period_s=0.05, controller=ctl) as session:
        assert "power mode set to 0=MAXN" in session.notes
        wait_samples(session)
    summary = session.summary()
    assert summary["power_mode"] == "MAXN"
    assert summary["mean_watts"] > 0
    assert metrics.snapshot().gauge("edgert_platform_gpu_freq_hz") == 1300500000
    assert fake_orin.mode() == "2 MODE_30W"   # restored after the run
    line = session.summary_line(fps=100.0)
    assert line.startswith("platform: power mode MAXN, ") and "fps/W" in line


def test_here_without_power_settings(tmp_path: Path):
    ctl = PowerController(root=Path("/"), state_folder=tmp_path)
    with platform_session(None, Metrics(), period_s=0.05, controller=ctl) as session:
        assert session.notes == []
        wait_samples(session)
    assert session.summary()["power_mode"] is None
    assert session.summary_line(fps=30.0) is None     # nothing platform-specific on a laptop


def test_edgert_run_sets_and_restores_power_on_a_fake_jetson(tmp_path: Path):
    """`edgert run` with `power:` on an AGX Orin fixture tree + logging stand-ins (real run)."""
    import subprocess
    import sys

    import yaml

    from tests.platform.conftest import REPO

    require_root()
    fj = FakeJetson(tmp_path, "agx_orin_jp5")
    doc = yaml.safe_load((REPO / "pipelines/demo.yaml").read_text())
    doc["sources"][0]["uri"] = "file://" + str(REPO / "assets/street.mp4")
    doc["models"]["detector"]["onnx"] = str(REPO / "models/nanodet-coco.onnx")
    doc["models"]["detector"]["labels"] = str(REPO / "models/coco.names")
    doc["sinks"] = [{"kind": "jsonl", "input": "det", "path": str(tmp_path / "det.jsonl")}]
    doc["power"] = {"nvpmodel": "MAXN", "jetson_clocks": True}
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(yaml.safe_dump(doc))
    argv = [sys.executable, "-m", "edgert", "run", str(pipeline), "--max-frames", "1"]
    out = subprocess.run(argv,
                         cwd=str(tmp_path), env=fj.env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    store = str(fj.state_dir / "l4t_dfs.conf")
    calls = fj.calls()
    assert calls[:4] == ["nvpmodel -q", "jetson_clocks --store " + store, "nvpmodel -m 0",
                         "jetson_clocks"]
    assert calls[-2:] == ["nvpmodel -m 2", "jetson_clocks --restore " + store]
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("street-demo: 1 frames")
    assert lines[1].startswith("platform: power mode MAXN, ") and "fps/W" in lines[1]
    assert fj.mode() == "2 MODE_30W"

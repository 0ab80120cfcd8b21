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

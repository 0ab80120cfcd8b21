"""`edgert doctor`: here, and on a fixture Jetson whose venv lacks TensorRT."""
from __future__ import annotations

from tests.cli.test_info import run
from tests.platform.conftest import FakeJetson


def test_doctor_here_passes():
    out = run("doctor")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("[OK] not a Jetson")


def test_doctor_on_a_jetson_names_the_fixes(tmp_path):
    fj = FakeJetson(tmp_path, "agx_orin_jp5")
    (fj.root / "usr/lib/python3.8/dist-packages/tensorrt").mkdir(parents=True)
    (fj.root / "usr/lib/python3/dist-packages/cv2").mkdir(parents=True)
    out = run("doctor", env_extra=fj.env())
    text = out.stdout
    # this interpreter has no TensorRT: the JetPack-only bindings hint (a failure, exit 1)
    assert out.returncode == 1
    assert "TensorRT Python bindings not importable from this interpreter" in text
    assert "--system-site-packages" in text
    # this venv's pip OpenCV (no GStreamer) hides the JetPack one
    assert "pip's OpenCV" in text and "pip uninstall opencv-python" in text
    assert "built without GStreamer" in text
    # the fake nvpmodel starts in MODE_30W
    assert "power mode is MODE_30W, not MAXN" in text


def test_doctor_reports_a_pending_restore(tmp_path):
    from edgert.platform import power_state

    fj = FakeJetson(tmp_path, "agx_orin_jp5")
    state = power_state.PowerState.new(power_state.SESSION, "cli", "AGX Orin")
    state.pid, state.previous_mode = 0, {"id": 2, "name": "MODE_30W"}   # a crashed run
    power_state.save(power_state.state_path(power_state.SESSION, fj.state_dir), state)
    out = run("doctor", env_extra=fj.env())
    assert "power settings changed by edgert are still in effect" in out.stdout
    assert "fix: sudo edgert power restore" in out.stdout


def test_info_reports_the_current_mode_on_a_jetson(tmp_path):
    import json

    fj = FakeJetson(tmp_path, "agx_orin_jp5")
    data = json.loads(run("info", "--json", env_extra=fj.env()).stdout)
    assert data["is_jetson"] and data["power_mode"] == {"id": 2, "name": "MODE_30W"}
    assert data["power_modes"] == ["0=MAXN", "1=MODE_15W", "2=MODE_30W", "3=MODE_50W"]
    assert fj.calls() == ["nvpmodel -q"]

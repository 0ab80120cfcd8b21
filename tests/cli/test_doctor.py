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

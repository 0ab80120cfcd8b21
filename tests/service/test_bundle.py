"""Deploy bundles: contents, rewritten YAML, hashes; and install.sh in a fresh venv."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Dict

import pytest
import yaml

from edgert.cli.main import main
from edgert.config.loader import load_pipeline
from edgert.service.bundle import make_bundle
from tests.conftest import REPO
from tests.service.conftest import write_pipeline

_MODEL = """\
  detector:
    onnx: ../m/det.onnx
    labels: ${LBL:-../m/labels.txt}
    precision: int8
    int8: {calibration: {images: ../calib, cache: ../m/det.calib}}
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One wheel for the module (building it takes a few seconds)."""
    from edgert.service.bundle import build_wheel

    return build_wheel(tmp_path_factory.mktemp("wheel"))


def _project(tmp_path: Path) -> Path:
    (tmp_path / "m").mkdir()
    (tmp_path / "calib").mkdir()
    (tmp_path / "calib" / "a.jpg").write_bytes(b"jpg")
    for name, data in [("det.onnx", b"onnx"), ("det.qdq.onnx", b"qdq"), ("det.calib", b"cal"),
                       ("labels.txt", b"person\n"), ("other.onnx", b"x")]:
        (tmp_path / "m" / name).write_bytes(data)
    (tmp_path / "p").mkdir()
    path = write_pipeline(tmp_path / "p")
    text = path.read_text().replace("  detector: {onnx: det.onnx, backend: auto}\n", _MODEL)
    path.write_text(text + "  - {kind: svc-sink, input: infer, name: second}\n")
    return path


def _extract(bundle: Path, dest: Path) -> Path:
    with tarfile.open(str(bundle)) as tar:
        tar.extractall(str(dest))
    (top,) = list(dest.iterdir())
    return top


def test_bundle_contents(tmp_path: Path, wheel: Path) -> None:
    out = tmp_path / "out" / "street.tar.gz"
    manifest = make_bundle(_project(tmp_path), out, wheel=wheel)
    top = _extract(out, tmp_path / "x")
    assert top.name == "street"
    names = {str(p.relative_to(top)) for p in top.rglob("*") if p.is_file()}
    assert names == {"p.yaml", "install.sh", "manifest.json", "SHA256SUMS", "models/det.onnx",
                     "models/det.qdq.onnx", "models/det.calib", "models/labels.txt",
                     "wheels/" + wheel.name}  # no calib images: the cache makes them unneeded
    doc = yaml.safe_load((top / "p.yaml").read_text())
    det = doc["models"]["detector"]
    assert det["onnx"] == "models/det.onnx" and det["labels"] == "models/labels.txt"
    assert det["int8"]["calibration"] == {"images": "../calib", "cache": "models/det.calib"}
    assert doc["sources"][0]["uri"] == "svcframes://5"  # not a local file: unchanged
    on_disk = json.loads((top / "manifest.json").read_text())
    assert on_disk["files"] == manifest["files"] and on_disk["pipeline"] == "p.yaml"
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((top / name).read_bytes()).hexdigest() == entry["sha256"], name
    assert manifest["files"]["models/det.onnx"]["key"] == "models.detector.onnx"
    assert os.access(str(top / "install.sh"), os.X_OK)
    proc = subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=str(top),
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_calibration_images_bundled_without_a_cache(tmp_path: Path, wheel: Path) -> None:
    path = _project(tmp_path)
    (tmp_path / "m" / "det.calib").unlink()
    (tmp_path / "m" / "det.qdq.onnx").unlink()
    out = tmp_path / "b.tar.gz"
    manifest = make_bundle(path, out, wheel=wheel)
    assert "calib/calib/a.jpg" in manifest["files"]
    top = _extract(out, tmp_path / "x")
    det = yaml.safe_load((top / "p.yaml").read_text())["models"]["detector"]
    assert det["int8"]["calibration"]["images"] == "calib/calib"
    # the bundled pipeline loads from its new place (files resolve inside the bundle)
    cfg = load_pipeline(top / "p.yaml")
    assert cfg.models["detector"].onnx == (top / "models/det.onnx").resolve()


def test_invalid_pipeline_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write_pipeline(tmp_path, extra="sinkz: []\n")
    out = tmp_path / "b.tar.gz"
    assert main(["bundle", str(path), "-o", str(out)]) == 2
    assert "sinkz" in capsys.readouterr().err and not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".b.tar.gz")]


def test_output_name_checked(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["bundle", str(write_pipeline(tmp_path)), "-o", str(tmp_path / "b.zip")]) == 2
    assert "should end in .tar.gz" in capsys.readouterr().err


# ------------------------------------------------------------ install.sh on the real demo

DEMO = REPO / "pipelines" / "demo.yaml"


def _site_packages() -> str:
    import numpy

    return str(Path(numpy.__file__).resolve().parents[1])


def _install(tmp_path: Path, wheel_args: list, env: Dict[str, str]) -> subprocess.CompletedProcess:
    bundle = tmp_path / "demo-bundle.tar.gz"
    subprocess.run([sys.executable, "-m", "edgert", "bundle", str(DEMO), "-o", str(bundle)]
                   + wheel_args, check=True, capture_output=True, timeout=300)
    top = _extract(bundle, tmp_path / "device")
    venv = tmp_path / "newvenv"
    proc = subprocess.run(["bash", str(top / "install.sh"), "--venv", str(venv),
                           "--skip-build", "--no-service"] + (["--no-deps"] if "PYTHONPATH" in env
                                                              else []),
                          capture_output=True, text=True, env=env, cwd=str(tmp_path),
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "valid pipeline" in proc.stdout
    # the edgert that ran is the installed wheel, not this source tree
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import edgert; print(edgert.__file__)"], env=env,
                           capture_output=True, text=True, cwd=str(tmp_path))
    assert str(venv) in where.stdout, where.stdout + where.stderr
    return proc


def _device_env() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHON"] = sys.executable
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def test_install_sh_fast(tmp_path: Path, wheel: Path) -> None:
    """Offline: dependencies come from this interpreter's site-packages via PYTHONPATH."""
    env = _device_env()
    env["PYTHONPATH"] = _site_packages()  # numpy/pyyaml/pydantic, but not edgert itself
    _install(tmp_path, ["--wheel", str(wheel)], env)


@pytest.mark.slow
def test_install_sh_full(tmp_path: Path) -> None:
    """As on a device: wheel built by 'edgert bundle', dependencies from the registry (~1 min)."""
    _install(tmp_path, [], _device_env())

"""Unit generation: content, quoting, validation first, and systemd-analyze verify."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from edgert.cli.main import main
from edgert.config.loader import load_pipeline
from edgert.errors import UsageError
from edgert.service import systemd
from tests.conftest import REPO
from tests.service.conftest import write_pipeline


def _unit(path: Path, **kw: object) -> str:
    opt = systemd.options_for(load_pipeline(path), **kw)  # type: ignore[arg-type]
    return systemd.render_unit(opt)


def _settings(text: str) -> dict:
    out: dict = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out.setdefault(k, []).append(v)
    return out


def test_unit_has_the_production_settings(pipeline: Path) -> None:
    opt = systemd.options_for(load_pipeline(pipeline), user="edge")
    opt.build_engines = True  # backend: auto; see test_build_step_needs_the_build_command
    s = _settings(systemd.render_unit(opt))
    for key, value in [("Type", "notify"), ("NotifyAccess", "main"), ("WatchdogSec", "30"),
                       ("Restart", "on-failure"), ("StartLimitBurst", "5"),
                       ("StartLimitIntervalSec", "600"), ("User", "edge"),
                       ("NoNewPrivileges", "yes"), ("ProtectSystem", "full"),
                       ("PrivateTmp", "yes"), ("WorkingDirectory", str(pipeline.parent)),
                       ("After", "network-online.target"), ("Wants", "network-online.target"),
                       ("StandardOutput", "journal"), ("WantedBy", "multi-user.target")]:
        assert s[key] == [value], key
    assert s["EnvironmentFile"] == ["-/etc/edgert/edgert-svc-test.env"]
    assert "EDGERT_CACHE_DIR=%s" % systemd.ENGINE_CACHE in s["Environment"]
    assert "EDGERT_STATE_DIR=/var/lib/edgert" in s["Environment"]
    assert s["StateDirectory"] == s["CacheDirectory"] == ["edgert"]
    assert s["ExecStart"][0].endswith("-m edgert run %s" % pipeline)
    assert s["ExecStartPre"][0].endswith("-m edgert build %s" % pipeline)
    stop_post = s["ExecStopPost"][0]
    assert stop_post.startswith("-/") and stop_post.endswith("-m edgert power restore")
    for forbidden in ("PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectKernelTunables"):
        assert forbidden not in s, forbidden


@pytest.mark.parametrize("backend,has_build,expected", [
    ("auto", True, True), ("tensorrt", True, True), ("onnxruntime", True, False),
    ("auto", False, False),  # an edgert without 'edgert build': engines built by 'run'
])
def test_build_step_needs_the_build_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            backend: str, has_build: bool,
                                            expected: bool) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: (
        (object() if has_build else None) if name == "edgert.cli.build" else real(name, *a)))
    assert systemd.builds_engines(load_pipeline(write_pipeline(tmp_path, backend=backend))) \
        is expected


def test_onnxruntime_only_needs_no_build(tmp_path: Path) -> None:
    s = _settings(_unit(write_pipeline(tmp_path, backend="onnxruntime"), user="edge"))
    assert "ExecStartPre" not in s


def test_csi_source_waits_for_argus(pipeline: Path) -> None:
    opt = systemd.options_for(load_pipeline(pipeline), user="edge")
    csi = SimpleNamespace(sources=[SimpleNamespace(uri="file://a.mp4"),
                                   SimpleNamespace(uri="csi://0")])
    assert systemd.uses_csi(csi) and not systemd.uses_csi(load_pipeline(pipeline))
    opt.csi = True
    s = _settings(systemd.render_unit(opt))
    assert s["After"] == s["Wants"] == ["network-online.target nvargus-daemon.service"]


def test_groups_only_for_non_root(pipeline: Path) -> None:
    opt = systemd.options_for(load_pipeline(pipeline), user="edge")
    opt.groups = ["video", "render"]
    assert "SupplementaryGroups=video render" in systemd.render_unit(opt)
    opt.user = "root"
    assert "SupplementaryGroups" not in systemd.render_unit(opt)


def test_power_section_needs_root(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, extra="power: {nvpmodel: 0, jetson_clocks: true}\n")
    cfg = load_pipeline(path)
    assert systemd.default_user(cfg) == "root"
    with pytest.raises(UsageError, match="needs root"):
        systemd.options_for(cfg, user="edge")


def test_strict_lists_writable_paths(pipeline: Path) -> None:
    s = _settings(_unit(pipeline, user="edge", protect_system="strict"))
    assert s["ProtectSystem"] == ["strict"]
    assert "-%s" % pipeline.parent in s["ReadWritePaths"]
    assert s["StateDirectory"] == ["edgert"]
    root = _settings(_unit(pipeline, user="root", protect_system="strict"))
    assert "-/root/.cache" in root["ReadWritePaths"]


@pytest.mark.parametrize("arg,expected", [
    ("/opt/edgert/p.yaml", "/opt/edgert/p.yaml"),
    ("/data/my pipelines/p.yaml", '"/data/my pipelines/p.yaml"'),
    ("models.det.batch=50%", "models.det.batch=50%%"),
    ("x=${HOME}", "x=$${HOME}"),
    ('say "hi"', '"say \\"hi\\""'),
])
def test_exec_quote(arg: str, expected: str) -> None:
    assert systemd.exec_quote(arg) == expected


@pytest.mark.parametrize("name", ["bad/name", "x.service", "a b"])
def test_bad_names(name: str) -> None:
    with pytest.raises(UsageError):
        systemd.check_name(name)


def test_default_name() -> None:
    assert systemd.default_name("svc test") == "edgert-svc-test"


def test_install_writes_unit_that_systemd_accepts(pipeline: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    unit_dir = tmp_path / "units"
    assert main(["service", "install", str(pipeline), "--unit-dir", str(unit_dir),
                 "--name", "edgert-t", "--user", "root", "--set", "name=renamed"]) == 0
    unit = unit_dir / "edgert-t.service"
    text = unit.read_text()
    assert "--set name=renamed" in _settings(text)["ExecStart"][0]
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze missing (apt-get install systemd)")
        pytest.skip("systemd-analyze not installed")
    proc = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                          env=dict(os.environ, SYSTEMD_LOG_LEVEL="warning"))
    assert proc.returncode == 0, proc.stderr
    # the unit's ExecStart really runs this edgert (interpreter + PYTHONPATH from the unit)
    s = _settings(text)
    exe = s["ExecStart"][0].split()[0]
    env = dict(os.environ)
    env.update(v.split("=", 1) for v in s.get("Environment", []))
    out = subprocess.run([exe, "-m", "edgert", "--version"], env=env, capture_output=True,
                         text=True, cwd=s["WorkingDirectory"][0])
    assert out.returncode == 0 and out.stdout.startswith("edgert ")


def test_dry_run_prints_and_writes_nothing(pipeline: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    assert main(["service", "install", str(pipeline), "--unit-dir", str(tmp_path / "u"),
                 "--user", "edge", "--dry-run"]) == 0
    assert "Type=notify" in capsys.readouterr().out
    assert not (tmp_path / "u").exists()


def test_invalid_pipeline_writes_no_unit(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write_pipeline(tmp_path, extra="runtime: {queue_depht: 3}\n")
    assert main(["service", "install", str(path), "--unit-dir", str(tmp_path / "u")]) == 2
    err = capsys.readouterr().err
    assert "queue_depht" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "u").exists()


def test_uninstall(pipeline: Path, tmp_path: Path) -> None:
    unit_dir = tmp_path / "units"
    assert main(["service", "install", str(pipeline), "--unit-dir", str(unit_dir),
                 "--user", "edge"]) == 0
    assert main(["service", "uninstall", "edgert-svc-test", "--unit-dir", str(unit_dir)]) == 0
    assert not list(unit_dir.iterdir())
    assert main(["service", "uninstall", "edgert-svc-test", "--unit-dir", str(unit_dir)]) == 2


def test_status_without_systemd_is_one_line(capsys: pytest.CaptureFixture,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(systemd, "_require_systemd", _raise_no_systemd)
    assert main(["service", "status", "edgert-x"]) == 1
    assert main(["service", "logs", "edgert-x"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("not running systemd" in e for e in err)


def _raise_no_systemd(tool: str) -> str:
    from edgert.errors import RuntimeFailure

    raise RuntimeFailure("%s is unavailable: this machine is not running systemd" % tool)


def test_demo_unit_from_the_cli(tmp_path: Path) -> None:
    """The acceptance command, as a user types it, on the real demo pipeline."""
    demo = REPO / "pipelines" / "demo.yaml"
    proc = subprocess.run([sys.executable, "-m", "edgert", "service", "install", str(demo),
                           "--unit-dir", str(tmp_path), "--user", "root"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    unit = tmp_path / "edgert-street-demo.service"
    s = _settings(unit.read_text())
    assert s["ExecStart"][0].endswith("-m edgert run %s" % demo.resolve())
    assert "ExecStartPre" not in s  # backend: onnxruntime has no engines to build
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze missing (apt-get install systemd)")
        pytest.skip("systemd-analyze not installed")
    check = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_install_sh_builds_into_the_units_engine_cache() -> None:
    """Engines built by install.sh must be the ones the service loads (no rebuild at start)."""
    from edgert.service.install_script import INSTALL_SH

    assert "export EDGERT_CACHE_DIR=%s\n" % systemd.ENGINE_CACHE in INSTALL_SH

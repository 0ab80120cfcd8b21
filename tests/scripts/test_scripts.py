"""scripts/*.sh: shellcheck-clean, --help, argument errors, and what they would run (--dry-run).

Docker and a Jetson are not available here, so the scripts' commands are
checked through ``--dry-run`` (which prints each command instead of running it).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import List

import pytest

from tests.conftest import REPO

SCRIPTS = sorted((REPO / "scripts").glob("*.sh"))
OURS = [REPO / "scripts" / "cross-build.sh", REPO / "scripts" / "deploy.sh"]


def _shellcheck() -> str:
    exe = shutil.which("shellcheck")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("shellcheck is not installed (apt-get install -y shellcheck)")
        pytest.skip("shellcheck is not installed (apt-get install -y shellcheck)")
    return exe


def _run(args: List[str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash"] + args, capture_output=True, text=True, timeout=60)


def test_shellcheck_scripts() -> None:
    proc = subprocess.run([_shellcheck()] + [str(s) for s in SCRIPTS], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_shellcheck_bundle_install_sh(tmp_path: Path) -> None:
    from edgert.service.install_script import INSTALL_SH

    script = tmp_path / "install.sh"
    script.write_text(INSTALL_SH.replace("@PIPELINE@", "p.yaml"))
    proc = subprocess.run([_shellcheck(), str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("script", OURS, ids=lambda p: p.name)
def test_strict_mode_and_help(script: Path) -> None:
    assert "set -euo pipefail" in script.read_text()
    assert os.access(str(script), os.X_OK)
    proc = _run([str(script), "--help"])
    assert proc.returncode == 0 and proc.stdout.startswith("Usage: scripts/" + script.name)
    bad = _run([str(script), "--bogus"])
    assert bad.returncode != 0 and "unknown option '--bogus'" in bad.stderr


@pytest.mark.parametrize("jetpack,bases", [
    ("5", ["l4t-jetpack:r35.4.1"]),
    ("6", ["l4t-jetpack:r36.3.0"]),
    ("all", ["l4t-jetpack:r35.4.1", "l4t-jetpack:r36.3.0"]),
])
def test_cross_build_commands(jetpack: str, bases: List[str]) -> None:
    proc = _run([str(REPO / "scripts/cross-build.sh"), "--dry-run", "--jetpack", jetpack,
                 "--tag", "reg.example/edgert", "--push"])
    assert proc.returncode == 0, proc.stderr
    builds = [ln for ln in proc.stdout.splitlines() if "buildx build" in ln]
    assert len(builds) == len(bases)
    for line, base in zip(builds, bases):
        assert "--platform linux/arm64" in line and base in line and "--push" in line
        assert "-t reg.example/edgert:r3" in line and "docker/Dockerfile.l4t" in line
    assert "pip wheel --no-deps" in proc.stdout
    assert "tonistiigi/binfmt --install arm64" in proc.stdout


def test_cross_build_rejects_unknown_jetpack() -> None:
    proc = _run([str(REPO / "scripts/cross-build.sh"), "--dry-run", "--jetpack", "4"])
    assert proc.returncode == 1 and "not 5, 6 or all" in proc.stderr


def _bundle(tmp_path: Path) -> Path:
    (tmp_path / "street-demo").mkdir()
    (tmp_path / "street-demo" / "install.sh").write_text("#!/bin/sh\n")
    out = tmp_path / "street-demo.tar.gz"
    with tarfile.open(str(out), "w:gz") as tar:
        tar.add(str(tmp_path / "street-demo"), arcname="street-demo")
    return out


def test_deploy_commands(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    proc = _run([str(REPO / "scripts/deploy.sh"), "--dry-run", "-o", "Port=2222", "--skip-build",
                 "nvidia@jetson", str(bundle)])
    assert proc.returncode == 0, proc.stderr
    cmds = [ln for ln in proc.stdout.splitlines() if ln.startswith("+ ")]
    assert any(("rsync" in c or "scp" in c) and "nvidia@jetson:edgert-bundles/" in c for c in cmds)
    install = next(c for c in cmds if "install.sh" in c)
    assert "tar\\ xzf\\ street-demo.tar.gz" in install
    assert "sudo\\ ./street-demo/install.sh\\ --skip-build\\ --name\\ edgert-street-demo" in install
    assert any("systemctl enable --now edgert-street-demo.service" in c for c in cmds)
    assert all("-o Port=2222" in c for c in cmds if c.startswith("+ ssh"))


@pytest.mark.parametrize("args,message", [
    (["nvidia@jetson"], "need HOST and BUNDLE.tar.gz"),
    (["nvidia@jetson", "/nonexistent/b.tar.gz"], "no such file"),
])
def test_deploy_argument_errors(args: List[str], message: str) -> None:
    proc = _run([str(REPO / "scripts/deploy.sh")] + args)
    assert proc.returncode == 1 and message in proc.stderr

"""Shared fixtures: fixture trees and the logging stand-ins for nvpmodel/jetson_clocks.

The stand-ins in fakebin/ are real shell scripts run as real processes; they
append each invocation to a log file so tests can check the exact commands
and their order.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Dict, List

import pytest

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"
TREES = FIXTURES / "trees"
FAKEBIN = HERE / "fakebin"
REPO = HERE.parent.parent


class FakeJetson:
    """A copied fixture tree + fake tools + a private state folder."""

    def __init__(self, tmp: Path, tree: str) -> None:
        self.root = tmp / "root"
        shutil.copytree(str(TREES / tree), str(self.root))
        self.state_dir = tmp / "edgert-state"
        self.fake_state = tmp / "fake-state"
        self.fake_state.mkdir()
        self.log = tmp / "tools.log"
        self.log.write_text("")

    def env(self, **extra: str) -> Dict[str, str]:
        env = dict(os.environ)
        env.update({
            "PATH": str(FAKEBIN) + os.pathsep + env.get("PATH", ""),
            "EDGERT_SYSFS_ROOT": str(self.root),
            "EDGERT_STATE_DIR": str(self.state_dir),
            "EDGERT_FAKE_LOG": str(self.log),
            "EDGERT_FAKE_STATE": str(self.fake_state),
            "PYTHONPATH": str(REPO),
        })
        env.update(extra)
        return env

    def calls(self) -> List[str]:
        return [ln.strip() for ln in self.log.read_text().splitlines() if ln.strip()]

    def mode(self) -> str:
        return (self.fake_state / "mode").read_text().strip()


@pytest.fixture
def fake_orin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeJetson:
    """An AGX Orin (JP5) tree whose fake nvpmodel starts in MODE_30W (id 2)."""
    fj = FakeJetson(tmp_path, "agx_orin_jp5")
    for key, value in fj.env().items():
        monkeypatch.setenv(key, value)
    return fj


def require_root() -> None:
    """Power control needs root; as another user these tests cannot run."""
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("power-control tests must run as root under CI")
        pytest.skip("power control needs root (the fake tools are still checked for root)")

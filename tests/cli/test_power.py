"""`edgert power` acceptance: dry-run prints the commands; off a Jetson it refuses in one line."""
from __future__ import annotations

import pytest

from tests.cli.test_info import run
from tests.platform.conftest import FakeJetson, require_root


def test_dry_run_prints_store_set_and_restore_commands():
    out = run("power", "set", "--nvpmodel", "MAXN", "--jetson-clocks", "--dry-run")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("# not a Jetson: showing what would run on a Jetson AGX Orin")
    store = [ln for ln in lines if ln.startswith("jetson_clocks --store ")]
    assert len(store) == 1
    order = [ln.split("#")[0].strip() for ln in lines if not ln.startswith("#")]
    assert order.index("nvpmodel -q") < order.index(store[0]) < order.index("nvpmodel -m 0") \
        < order.index("jetson_clocks")
    assert any(ln.startswith("jetson_clocks --restore ") for ln in lines)


@pytest.mark.parametrize("board, expected", [
    ("agx-xavier", "nvpmodel -m 0   # MAXN"),
    ("orin-nano", None),   # no MAXN on an Orin Nano: usage error listing its modes
])
def test_dry_run_for_another_board(board, expected):
    out = run("power", "set", "--nvpmodel", "MAXN", "--dry-run", "--board", board)
    if expected:
        assert out.returncode == 0 and expected in out.stdout
    else:
        assert out.returncode == 2
        assert out.stderr.strip() == ("edgert: 'MAXN' is not a power mode of this board; modes: "
                                      "0=15W, 1=7W (Jetson Orin Nano 8GB (p3767-0003))")


def test_without_dry_run_refuses_in_one_line():
    out = run("power", "set", "--nvpmodel", "MAXN", "--jetson-clocks")
    assert out.returncode == 1
    assert out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1 and "not a Jetson" in out.stderr


def test_set_and_restore_on_a_fake_jetson(tmp_path):
    require_root()
    fj = FakeJetson(tmp_path, "agx_orin_jp5")
    out = run("power", "set", "--nvpmodel", "maxn", "--jetson-clocks", env_extra=fj.env())
    assert out.returncode == 0, out.stderr
    assert "power mode set to 0=MAXN" in out.stdout
    show = run("power", "show", env_extra=fj.env())
    assert " * 0=MAXN" in show.stdout and "restore pending (manual" in show.stdout
    out = run("power", "restore", env_extra=fj.env())
    assert out.returncode == 0 and "power mode back to 2=MODE_30W" in out.stdout
    assert fj.mode() == "2 MODE_30W"
    assert run("power", "restore", env_extra=fj.env()).stdout.strip() == "nothing to restore"


def test_power_show_here():
    out = run("power", "show")
    assert out.returncode == 0 and out.stdout.startswith("not a Jetson")


def test_dry_run_on_a_jetson_names_the_current_mode_and_changes_nothing(tmp_path):
    fj = FakeJetson(tmp_path, "agx_orin_jp5")
    out = run("power", "set", "--nvpmodel", "MODE_50W", "--jetson-clocks", "--dry-run",
              env_extra=fj.env())
    assert out.returncode == 0, out.stderr
    assert "nvpmodel -m 3   # MODE_50W" in out.stdout
    assert "nvpmodel -m 2   # MODE_30W, the current mode" in out.stdout
    assert fj.calls() == ["nvpmodel -q"]          # only the read-only query ran
    assert not fj.state_dir.exists()

"""Power control against logging stand-ins for nvpmodel/jetson_clocks/nvidia-smi.

The stand-ins (tests/platform/fakebin) are real executables found on PATH, so
these tests run edgert's real subprocess, state-file, signal and crash paths;
only the tools themselves are not NVIDIA's.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edgert.config.schema import PowerConfig
from edgert.errors import ConfigError, RuntimeFailure, UsageError
from edgert.platform import nvpmodel, power_state
from edgert.platform.power import (
    PowerController,
    PowerRequest,
    power_session,
    validate_power_config,
)
from tests.platform.conftest import FIXTURES, REPO, FakeJetson, require_root

MAXN_LOCK = PowerRequest(nvpmodel="MAXN", jetson_clocks=True)


def controller(fj: FakeJetson, euid: int = 0) -> PowerController:
    return PowerController(root=fj.root, state_folder=fj.state_dir, euid=euid)


def store(fj: FakeJetson, kind: str = power_state.SESSION) -> str:
    return str(power_state.clocks_store_path(kind, fj.state_dir))


def restore_calls(fj: FakeJetson) -> list:
    return ["nvpmodel -m 2", "jetson_clocks --restore " + store(fj)]


def test_apply_records_before_changing_and_restore_undoes(fake_orin: FakeJetson):
    require_root()
    ctl = controller(fake_orin)
    notes = ctl.apply(MAXN_LOCK)
    assert fake_orin.calls() == ["nvpmodel -q", "jetson_clocks --store " + store(fake_orin),
                                 "nvpmodel -m 0", "jetson_clocks"]
    assert "power mode set to 0=MAXN" in notes
    state = power_state.load(power_state.state_path(power_state.SESSION, fake_orin.state_dir))
    assert state.pending and state.previous_mode == {"id": 2, "name": "MODE_30W"}
    assert state.clocks_store == store(fake_orin) and state.pid == os.getpid()
    assert fake_orin.mode() == "0 MAXN"

    done = ctl.restore()
    assert fake_orin.calls()[4:] == ["nvpmodel -m 2", "jetson_clocks --restore " + store(fake_orin)]
    assert done == ["power mode back to 2=MODE_30W", "clocks restored from " + store(fake_orin)]
    assert fake_orin.mode() == "2 MODE_30W"
    assert not power_state.state_path(power_state.SESSION, fake_orin.state_dir).exists()


def test_session_restores_on_normal_exit(fake_orin: FakeJetson):
    require_root()
    cfg = PowerConfig(nvpmodel="MODE_50W", jetson_clocks=False)
    with power_session(cfg, controller=controller(fake_orin)):
        assert fake_orin.mode() == "3 MODE_50W"
    assert fake_orin.calls() == ["nvpmodel -q", "nvpmodel -m 3", "nvpmodel -m 2"]


def test_session_restores_when_the_body_raises(fake_orin: FakeJetson):
    require_root()
    with pytest.raises(KeyError):
        with power_session(PowerConfig(nvpmodel=0, jetson_clocks=True),
                           controller=controller(fake_orin)):
            raise KeyError("pipeline failed")
    assert fake_orin.calls()[-2:] == restore_calls(fake_orin)


def test_no_power_section_changes_nothing(fake_orin: FakeJetson):
    with power_session(None, controller=controller(fake_orin)) as notes:
        assert notes == []
    with power_session(PowerConfig(), controller=controller(fake_orin)):
        pass
    assert fake_orin.calls() == []


def test_dry_run_session_runs_nothing(fake_orin: FakeJetson):
    with power_session(PowerConfig(nvpmodel="MAXN", jetson_clocks=True), dry_run=True,
                       controller=controller(fake_orin)) as notes:
        assert "nvpmodel -m 0   # MAXN" in notes and "jetson_clocks" in notes
        assert "nvpmodel -m 2   # MODE_30W, the current mode" in notes
    assert fake_orin.calls() == ["nvpmodel -q"]   # read-only
    assert fake_orin.mode() == "2 MODE_30W"


def test_already_in_the_mode_is_not_switched(fake_orin: FakeJetson):
    require_root()
    notes = controller(fake_orin).apply(PowerRequest(nvpmodel="MODE_30W"))
    assert notes == ["already in power mode 2=MODE_30W"]
    assert fake_orin.calls() == ["nvpmodel -q"]
    controller(fake_orin).restore()
    assert fake_orin.calls() == ["nvpmodel -q"]


def test_mode_needing_a_reboot_is_reported_not_forced(fake_orin: FakeJetson, monkeypatch):
    require_root()
    monkeypatch.setenv("EDGERT_FAKE_REBOOT_MODES", "3")
    notes = controller(fake_orin).apply(PowerRequest(nvpmodel="MODE_50W"))
    assert any("needs a reboot" in n and "sudo nvpmodel -m 3" in n for n in notes)
    assert fake_orin.mode() == "2 MODE_30W"
    controller(fake_orin).restore()
    assert fake_orin.calls() == ["nvpmodel -q", "nvpmodel -m 3"]  # nothing to undo


def test_failure_part_way_undoes_what_was_changed(fake_orin: FakeJetson, monkeypatch):
    require_root()
    monkeypatch.setenv("EDGERT_FAKE_CLOCKS_FAIL", "1")
    with pytest.raises(RuntimeFailure, match="jetson_clocks"):
        controller(fake_orin).apply(MAXN_LOCK)
    assert fake_orin.mode() == "2 MODE_30W"
    assert fake_orin.calls()[-2:] == restore_calls(fake_orin)
    assert controller(fake_orin).pending() == []


def test_without_root_one_line_says_what_to_do(fake_orin: FakeJetson):
    with pytest.raises(RuntimeFailure) as err:
        controller(fake_orin, euid=1000).apply(MAXN_LOCK)
    msg = str(err.value)
    assert "needs root" in msg and "sudo" in msg and "systemd" in msg and "\n" not in msg
    assert fake_orin.calls() == []


def test_unknown_mode_lists_the_board_modes(tmp_path: Path, monkeypatch):
    fj = FakeJetson(tmp_path, "xavier_nx_jp4")
    with pytest.raises(UsageError) as err:
        controller(fj).plan(PowerRequest(nvpmodel="MAXN"))
    assert "MODE_20W_6CORE" in str(err.value) and "Xavier NX" in str(err.value)


@pytest.mark.parametrize("tree, value, ok", [
    ("agx_orin_jp5", "MAXN", True), ("agx_xavier_jp5", "MAXN", True),
    ("xavier_nx_jp4", "MAXN", False), ("orin_nano_jp6", "MAXN", False),
    ("orin_nano_jp6", "7W", True), ("agx_orin_jp5", 9, False),
])
def test_power_section_validated_against_the_board(tree, value, ok):
    table = nvpmodel.read_conf(FIXTURES / "trees" / tree)
    cfg = PowerConfig(nvpmodel=value, jetson_clocks=True)
    if ok:
        assert validate_power_config(cfg, table).name.upper() == str(value).upper()
    else:
        with pytest.raises(ConfigError) as err:
            validate_power_config(cfg, table, file="pipeline.yaml")
        assert str(err.value).startswith("pipeline.yaml: power.nvpmodel: '%s'" % value)
    assert validate_power_config(cfg, None) is None  # off a Jetson: cannot check


def test_live_owner_blocks_recovery_unless_forced(fake_orin: FakeJetson):
    require_root()
    path = power_state.state_path(power_state.SESSION, fake_orin.state_dir)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        state = power_state.PowerState.new(power_state.SESSION, "cli", "x")
        state.pid, state.previous_mode = sleeper.pid, {"id": 1, "name": "MODE_15W"}
        power_state.save(path, state)
        with pytest.raises(RuntimeFailure, match="pid %d" % sleeper.pid):
            controller(fake_orin).recover()
        assert controller(fake_orin).restore(force=True) == ["power mode back to 1=MODE_15W"]
    finally:
        sleeper.kill()
        sleeper.wait()


def test_manual_settings_survive_a_session(fake_orin: FakeJetson):
    require_root()
    ctl = controller(fake_orin)
    ctl.apply(PowerRequest(nvpmodel="MODE_15W"), power_state.MANUAL)   # `edgert power set`
    with power_session(PowerConfig(nvpmodel="MAXN"), controller=ctl):
        assert fake_orin.mode() == "0 MAXN"
    assert fake_orin.mode() == "1 MODE_15W"   # back to the manual setting, not the boot one
    assert [s.kind for s in ctl.pending()] == [power_state.MANUAL]
    ctl.restore()
    assert fake_orin.mode() == "2 MODE_30W"


def test_restore_on_exit_false_keeps_settings_until_power_restore(fake_orin: FakeJetson):
    require_root()
    ctl = controller(fake_orin)
    with power_session(PowerConfig(nvpmodel="MAXN", restore_on_exit=False), controller=ctl):
        pass
    assert fake_orin.mode() == "0 MAXN"
    assert [s.kind for s in ctl.pending()] == [power_state.MANUAL]


def test_nvidia_smi_clocks_only_when_asked(tmp_path: Path, monkeypatch):
    require_root()
    fj = FakeJetson(tmp_path, "agx_orin_jp5")
    for k, v in fj.env(EDGERT_SYSFS_ROOT=str(tmp_path / "x86")).items():
        monkeypatch.setenv(k, v)
    (tmp_path / "x86").mkdir()
    ctl = PowerController(root=tmp_path / "x86", state_folder=fj.state_dir, euid=0)
    with pytest.raises(RuntimeFailure, match="not a Jetson"):
        ctl.apply(MAXN_LOCK)
    ctl.apply(PowerRequest(nvidia_smi_clocks="1593,1410"))
    ctl.restore()
    q = ("nvidia-smi -i 0 --query-gpu=clocks.applications.memory,clocks.applications.graphics "
         "--format=csv,noheader,nounits")
    assert fj.calls() == [q, "nvidia-smi -i 0 -ac 1593,1410", "nvidia-smi -i 0 -ac 2619,1755"]


# ---- real processes: crash, SIGTERM ------------------------------------------------------
SESSION_SCRIPT = textwrap.dedent("""
    import os, signal, sys, time
    from edgert.config.schema import PowerConfig
    from edgert.platform.power import power_session
    with power_session(PowerConfig(nvpmodel="MAXN", jetson_clocks=True)):
        print("READY", flush=True)
        if sys.argv[1] == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)
""")


def start_session(fj: FakeJetson, how: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", SESSION_SCRIPT, how], env=fj.env(),
                            cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    assert proc.stdout.readline().strip() == "READY", proc.stderr.read()
    return proc


def test_sigterm_during_a_session_restores(fake_orin: FakeJetson):
    require_root()
    proc = start_session(fake_orin, "sleep")
    assert fake_orin.mode() == "0 MAXN"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    assert fake_orin.calls()[-2:] == restore_calls(fake_orin)
    assert fake_orin.mode() == "2 MODE_30W"
    assert controller(fake_orin).pending() == []


def test_restore_after_a_crash_via_the_pending_state_file(fake_orin: FakeJetson):
    require_root()
    proc = start_session(fake_orin, "crash")
    assert proc.wait(timeout=60) == -signal.SIGKILL
    state = json.loads(power_state.state_path(power_state.SESSION, fake_orin.state_dir).read_text())
    assert state["pending"] and state["previous_mode"]["id"] == 2
    assert fake_orin.mode() == "0 MAXN"     # the crash left the board in MAXN
    # the next start (any session, even one without power settings) restores first
    with power_session(None, controller=controller(fake_orin)):
        assert fake_orin.mode() == "2 MODE_30W"
    assert fake_orin.calls()[-2:] == restore_calls(fake_orin)


def test_power_restore_command_after_a_crash(fake_orin: FakeJetson):
    """What the systemd unit's ExecStopPost runs."""
    require_root()
    assert start_session(fake_orin, "crash").wait(timeout=60) == -signal.SIGKILL
    out = subprocess.run([sys.executable, "-m", "edgert", "power", "restore"], env=fake_orin.env(),
                         cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=120, check=False)
    assert out.returncode == 0, out.stdout
    assert "power mode back to 2=MODE_30W" in out.stdout
    assert fake_orin.mode() == "2 MODE_30W" and controller(fake_orin).pending() == []


@pytest.mark.parametrize("tree, ok", [("xavier_nx_jp4", False), ("agx_orin_jp5", True)])
def test_power_section_located_in_the_yaml(tmp_path: Path, tree, ok):
    from edgert.config.yamlsrc import load_yaml
    from edgert.platform.power import check_power_section

    yaml_file = tmp_path / "pipeline.yaml"
    yaml_file.write_text("name: x\nsources: []\npower:\n  nvpmodel: MAXN\n  jetson_clocks: true\n")
    doc, locs = load_yaml(yaml_file, {})
    cfg = PowerConfig(**doc["power"])
    root = FIXTURES / "trees" / tree
    if ok:
        check_power_section(cfg, locs, root=root)
        return
    with pytest.raises(ConfigError) as err:
        check_power_section(cfg, locs, root=root)
    assert str(err.value).startswith("%s:4:13: power.nvpmodel: 'MAXN' is not a power mode"
                                     % yaml_file)
    assert "Xavier NX" in str(err.value)
    check_power_section(cfg, locs, root=tmp_path)   # not a Jetson: nothing to check


def test_power_section_is_skipped_off_a_jetson(tmp_path: Path, monkeypatch, caplog):
    fj = FakeJetson(tmp_path, "agx_orin_jp5")
    for k, v in fj.env().items():
        monkeypatch.setenv(k, v)
    laptop = PowerController(root=tmp_path / "laptop", state_folder=fj.state_dir, euid=0)
    with power_session(PowerConfig(nvpmodel="MAXN", jetson_clocks=True), controller=laptop) as n:
        assert n == ["power: section ignored: not a Jetson (nothing was changed)"]
    assert fj.calls() == []


def test_an_ignored_sighup_stays_ignored(fake_orin: FakeJetson):
    require_root()
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with power_session(PowerConfig(nvpmodel="MAXN"), controller=controller(fake_orin)):
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_sigterm_chains_to_the_applications_own_handler(fake_orin: FakeJetson):
    """A pipeline that stops gracefully on SIGTERM keeps doing so inside a session."""
    require_root()
    stopped = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stopped.append(signum))
    try:
        with power_session(PowerConfig(nvpmodel="MAXN"), controller=controller(fake_orin)):
            os.kill(os.getpid(), signal.SIGTERM)
            assert stopped == [signal.SIGTERM]       # handled, not turned into SystemExit
            assert fake_orin.mode() == "0 MAXN"
        assert fake_orin.mode() == "2 MODE_30W"      # leaving the block restored
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_without_root_a_root_runs_pending_restore_is_named(fake_orin: FakeJetson, tmp_path):
    """`edgert power restore` without sudo names root's pending restore (not "nothing")."""
    system = tmp_path / "var-lib-edgert"
    state = power_state.PowerState.new(power_state.SESSION, "cli", "AGX Orin")
    state.pid, state.previous_mode = 0, {"id": 2, "name": "MODE_30W"}
    power_state.save(power_state.state_path(power_state.SESSION, system), state)
    user = PowerController(root=fake_orin.root, state_folder=tmp_path / "user", euid=1000,
                           system_folder=system)
    assert [s.previous_mode for s in user.pending()] == [{"id": 2, "name": "MODE_30W"}]
    with pytest.raises(RuntimeFailure, match="run 'sudo edgert power restore'"):
        user.restore()
    assert fake_orin.calls() == []
    root = PowerController(root=fake_orin.root, state_folder=tmp_path / "user", euid=0,
                           system_folder=system)
    assert root.system_folder is None and root.pending() == []

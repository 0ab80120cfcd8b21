"""A pipeline run under a real notify socket: READY=1, periodic WATCHDOG=1, STOPPING=1,
and no WATCHDOG=1 while the inference path is stalled on purpose.

The socket is an AF_UNIX datagram socket the test binds, named by NOTIFY_SOCKET
exactly as systemd does for a ``Type=notify`` unit; WATCHDOG_USEC is small so
a short run spans many watchdog periods.
"""
from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import pytest

from edgert.config.loader import load_pipeline
from tests.conftest import REPO
from tests.service import conftest as svc

RUN_PIPELINE = """\
version: 1
name: notify-test
sources:
  - {name: cam, uri: "svcframes://FRAMES"}
stages:
  - {name: infer, kind: svc-infer, input: sources, stall_after: STALL}
sinks:
  - {kind: svc-sink, input: infer}
runtime: {executor: EXECUTOR}
"""
WATCHDOG_USEC = 200_000  # pings every 0.1 s


class Listener:
    """Collects (arrival time, message) from the bound socket on a thread."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.05)
        self.messages: List[Tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            self.messages.append((time.monotonic(), data.decode()))

    def close(self) -> List[str]:
        time.sleep(0.1)
        self._stop.set()
        self._thread.join()
        self.sock.close()
        return [m for _, m in self.messages]

    def first(self, prefix: str, timeout: float = 30.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, m in list(self.messages):
                if m.startswith(prefix):
                    return t
            time.sleep(0.02)
        raise AssertionError("no %s message; got %r" % (prefix, self.messages))


@pytest.fixture
def listener(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Listener]:
    path = str(tmp_path / "notify.sock")
    lis = Listener(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", str(WATCHDOG_USEC))
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    yield lis
    svc.RELEASE.set()


def _executors() -> List[str]:
    """Executors wired to RunObserver.

    The threaded runtime joins this list when its hooks are wired: it calls the
    engine only for a stage with ``model:`` (plan.py), so its variant needs a
    stall inside a model-routed stage (e.g. a test engine backend that blocks).
    """
    return ["sequential"]


def _run(tmp_path: Path, executor: str, frames: int, stall: int) -> Any:
    from edgert.runtime.observer import default_observers

    path = tmp_path / "p.yaml"
    path.write_text(RUN_PIPELINE.replace("FRAMES", str(frames)).replace("STALL", str(stall))
                    .replace("EXECUTOR", executor))
    cfg = load_pipeline(path)
    if executor == "sequential":
        from edgert.runtime.sequential import SequentialExecutor

        return SequentialExecutor(cfg, observer=default_observers(), handle_signals=False).run()
    from edgert.runtime.executor import create_executor

    return create_executor(cfg, executor, observer=default_observers(),
                           handle_signals=False).run()


@pytest.mark.parametrize("executor", _executors())
def test_ready_watchdog_stopping(listener: Listener, tmp_path: Path, executor: str) -> None:
    _run(tmp_path, executor, frames=60, stall=-1)  # 60 frames at 100 fps: ~0.6 s
    msgs = listener.close()
    assert msgs[0].startswith("STATUS=starting")
    assert msgs[1].startswith("READY=1")
    assert msgs.count("WATCHDOG=1") >= 3, msgs
    assert msgs[-1].startswith("STOPPING=1")
    assert msgs.index("WATCHDOG=1") > 1  # no ping before READY


@pytest.mark.parametrize("executor", _executors())
def test_stalled_inference_stops_watchdog(listener: Listener, tmp_path: Path,
                                          executor: str) -> None:
    svc.RELEASE.clear()
    run = threading.Thread(target=_run, args=(tmp_path, executor, 30, 5), daemon=True)
    run.start()
    listener.first("READY=1")
    stalled_at = time.monotonic()
    time.sleep(1.5)  # 15 watchdog half-periods with the 6th batch blocked in inference
    window = [m for t, m in listener.messages if t > stalled_at + 0.5]
    svc.RELEASE.set()
    run.join(30)
    msgs = listener.close()
    assert "WATCHDOG=1" not in window, window
    # once the engine returns, pings resume and the run ends normally
    resumed = [m for t, m in listener.messages if t > stalled_at + 1.5]
    assert "WATCHDOG=1" in resumed and msgs[-1].startswith("STOPPING=1"), msgs


def test_unit_execstart_runs_and_notifies(tmp_path: Path) -> None:
    """The ExecStart of the demo's generated unit, run as systemd would (its Environment=,
    a notify socket), on a few frames of the real demo (ONNX Runtime)."""
    demo = REPO / "pipelines" / "demo.yaml"
    unit = subprocess.run([sys.executable, "-m", "edgert", "service", "install", str(demo),
                           "--user", "root", "--dry-run"], capture_output=True, text=True,
                          timeout=120)
    assert unit.returncode == 0, unit.stderr
    lines = unit.stdout.splitlines()
    argv = shlex.split(next(ln for ln in lines if ln.startswith("ExecStart="))[len("ExecStart="):])
    env = dict(os.environ)
    env.update(ln[len("Environment="):].split("=", 1) for ln in lines
               if ln.startswith("Environment="))
    env.update(NOTIFY_SOCKET=str(tmp_path / "notify.sock"), WATCHDOG_USEC=str(WATCHDOG_USEC))
    env.pop("EDGERT_STATE_DIR")  # /var/lib/edgert is the service's; this test is not root's
    lis = Listener(env["NOTIFY_SOCKET"])
    proc = subprocess.run(argv + ["--max-frames", "4"], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=300)
    msgs = lis.close()
    assert proc.returncode == 0, proc.stderr
    assert "4 frames" in proc.stdout and "street 4/4" in proc.stdout, proc.stdout
    assert any(m.startswith("READY=1") for m in msgs), msgs
    assert "WATCHDOG=1" in msgs and msgs[-1].startswith("STOPPING=1"), msgs
    assert (tmp_path / "out" / "detections.jsonl").is_file()

"""The notify protocol against a real AF_UNIX datagram socket opened by the test."""
from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

from edgert.service.sdnotify import Notifier, SystemdObserver, socket_address, watchdog_interval


def _recv_all(sock: socket.socket) -> List[str]:
    out = []
    sock.settimeout(0.2)
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except socket.timeout:
            return out


@pytest.fixture(params=["path", "abstract"])
def notify_socket(request: pytest.FixtureRequest,
                  tmp_path: Path) -> Iterator[Tuple[str, socket.socket]]:
    """(NOTIFY_SOCKET value, bound socket): a filesystem path or an '@' abstract name."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        value = str(tmp_path / "notify.sock")
        sock.bind(value)
    else:
        value = "@edgert-test-%s" % uuid.uuid4().hex
        sock.bind("\0" + value[1:])
    yield value, sock
    sock.close()


def test_messages_arrive(notify_socket: Tuple[str, socket.socket]) -> None:
    value, sock = notify_socket
    n = Notifier.from_env({"NOTIFY_SOCKET": value})
    assert n.enabled
    assert n.ready("warming up")
    assert n.watchdog()
    assert n.status("running: 3.0 fps\nsecond line")
    assert n.stopping()
    n.close()
    assert _recv_all(sock) == ["READY=1\nSTATUS=warming up", "WATCHDOG=1",
                               "STATUS=running: 3.0 fps second line", "STOPPING=1"]


def test_no_socket_is_a_noop() -> None:
    n = Notifier.from_env({})
    assert not n.enabled
    assert n.ready() is False and n.watchdog() is False
    assert SystemdObserver.from_env({}) is None


def test_dead_socket_never_raises(tmp_path: Path) -> None:
    n = Notifier(str(tmp_path / "gone.sock"))
    assert n.watchdog() is False
    assert n.watchdog() is False


@pytest.mark.parametrize("value,expected", [
    ("@abc", "\0abc"), ("/run/systemd/notify", "/run/systemd/notify"),
])
def test_socket_address(value: str, expected: str) -> None:
    assert socket_address(value) == expected


@pytest.mark.parametrize("env,expected", [
    ({}, None),
    ({"WATCHDOG_USEC": "30000000"}, 30.0),
    ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": "MYPID"}, 0.5),
    ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": "1"}, None),  # meant for another process
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
])
def test_watchdog_interval(env: dict, expected: object) -> None:
    env = {k: v.replace("MYPID", str(os.getpid())) for k, v in env.items()}
    assert watchdog_interval(env) == expected


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_observer_rate_limits_pings_and_reports_fps(
        notify_socket: Tuple[str, socket.socket]) -> None:
    value, sock = notify_socket
    clock = _Clock()
    obs = SystemdObserver(Notifier(value), watchdog_s=2.0, status_every=5.0, clock=clock)
    obs.on_ready()                       # READY + first ping
    for _ in range(10):                  # same instant: no more pings
        obs.on_batch_done(4)
    clock.now += 1.0                     # half the watchdog interval: ping
    obs.heartbeat()
    clock.now += 4.0                     # 5 s after start: ping + status with fps
    obs.on_batch_done(4)
    obs.on_stop("SIGTERM")
    obs.on_stop("streams ended")  # only the first is sent
    msgs = _recv_all(sock)
    assert msgs == ["READY=1\nSTATUS=running: first frame processed", "WATCHDOG=1",
                    "WATCHDOG=1", "WATCHDOG=1", "STATUS=running: 8.8 fps, 44 frames",
                    "STOPPING=1\nSTATUS=stopping: SIGTERM"]
    assert obs.fps == pytest.approx(44 / 5.0)


def test_observer_without_watchdog_never_pings(notify_socket: Tuple[str, socket.socket]) -> None:
    value, sock = notify_socket
    obs = SystemdObserver(Notifier(value), watchdog_s=None)
    obs.on_ready()
    obs.on_ready()  # only once
    obs.on_batch_done(1)
    assert _recv_all(sock) == ["READY=1\nSTATUS=running: first frame processed"]


def test_one_hung_lane_stops_pings(notify_socket: Tuple[str, socket.socket]) -> None:
    value, sock = notify_socket
    clock = _Clock()
    obs = SystemdObserver(Notifier(value), watchdog_s=2.0, status_every=1e9, clock=clock)
    obs.on_start(lanes=2)
    obs.on_ready()
    clock.now += 1.5
    obs.on_batch_done(1, lane=0)   # lane 1 silent: no ping
    obs.heartbeat(lane=0)
    clock.now += 0.1
    obs.heartbeat(lane=1)          # both lanes moved since the last ping: ping
    clock.now += 1.5
    obs.on_batch_done(1, lane=0)   # lane 1 hung from here on: no more pings
    clock.now += 1.5
    obs.on_batch_done(1, lane=0)
    msgs = _recv_all(sock)
    assert msgs.count("WATCHDOG=1") == 2, msgs

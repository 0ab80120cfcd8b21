"""Real servers for I/O tests, started and stopped by the tests themselves.

Everything listens on 127.0.0.1 at a free port.  When a server's program is
missing, tests skip with the reason, except under ``CI=true`` where they fail:
CI must install them (see ``.ci/run``).
"""
from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import List, Optional

import pytest

HERE = Path(__file__).resolve().parent
SYSTEM_PYTHON = "/usr/bin/python3"


def need(ok: bool, what: str) -> None:
    """Skip (or under CI=true, fail) when a required server/tool is missing."""
    if ok:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI=true but %s is missing; install it in .ci/run" % what)
    pytest.skip("%s is missing" % what)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("nothing listens on 127.0.0.1:%d after %.0f s" % (port, timeout))


def wait_closed(port: int, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.05)
    raise RuntimeError("127.0.0.1:%d still accepts after %.0f s" % (port, timeout))


def rtsp_server_available() -> bool:
    if not Path(SYSTEM_PYTHON).exists():
        return False
    probe = ("import gi; gi.require_version('GstRtspServer','1.0'); "
             "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
             "import sys; sys.exit(0 if Gst.ElementFactory.find('x264enc') else 1)")
    return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True).returncode == 0


class Server:
    """One server process that can be killed and started again on the same port."""

    def __init__(self, argv: List[str], port: int) -> None:
        self.argv = argv
        self.port = port
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "Server":
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        try:
            wait_port(self.port)
        except RuntimeError:
            self.stop(signal.SIGKILL)
            raise
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None
        wait_closed(self.port)

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop(signal.SIGKILL)


def rtsp_server(port: int, size: str = "160x120", fps: int = 15) -> Server:
    return Server([SYSTEM_PYTHON, str(HERE / "rtsp_server.py"), str(port), size, str(fps)], port)


def mosquitto_path() -> Optional[str]:
    for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto"):
        if os.access(p, os.X_OK):
            return p
    return None


def mosquitto(port: int, folder: Path, extra: str = "allow_anonymous true\n") -> Server:
    """Mosquitto on 127.0.0.1:port with persistence in ``folder``.

    Persistence keeps a persistent subscriber's queued QoS 1 messages across
    a broker restart (saved on SIGTERM), so a test can count deliveries.
    """
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "mosquitto.conf"
    conf.write_text(
        "listener %d 127.0.0.1\n%spersistence true\n"
        "persistence_location %s/\nmax_queued_messages 100000\nlog_dest none\n"
        "user %s\n"  # as root mosquitto would switch to 'mosquitto', who cannot write here
        % (port, extra, folder, getpass.getuser()))
    return Server([str(mosquitto_path()), "-c", str(conf)], port)



def tls_broker_files(folder: Path, user: str, password: str) -> str:
    """A throw-away CA, a server certificate for 127.0.0.1 and a password file
    (openssl and mosquitto_passwd); returns the mosquitto.conf lines using them."""
    folder.mkdir(parents=True, exist_ok=True)

    def sh(*argv: str) -> None:
        subprocess.run(argv, cwd=str(folder), check=True, capture_output=True)

    sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
       "-out", "ca.pem", "-days", "1", "-subj", "/CN=edgert-test-ca")
    sh("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
       "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    sh("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
       "-CAcreateserial", "-out", "server.pem", "-days", "1", "-extfile", "san.ext")
    sh("mosquitto_passwd", "-c", "-b", "passwd", user, password)
    return ("cafile {0}/ca.pem\ncertfile {0}/server.pem\nkeyfile {0}/server.key\n"
            "allow_anonymous false\npassword_file {0}/passwd\n".format(folder))


DEBIAN_GI = Path("/usr/lib/python3/dist-packages/gi")


def use_system_gi(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make Debian's python3-gi importable here (only ``gi``, through a link in ``folder``).

    PyGObject has no wheels; its Debian build works in the venv when both are
    the same CPython.  Skips (or under CI fails) when it is missing.
    """
    import sys

    need(DEBIAN_GI.is_dir(), "Debian python3-gi (apt-get install python3-gi)")
    abi = "cpython-%d%d" % sys.version_info[:2]
    if not any(abi in p.name for p in DEBIAN_GI.glob("_gi.*.so")):
        pytest.skip("Debian's python3-gi is built for another Python than this %s" % abi)
    (folder / "gi").symlink_to(DEBIAN_GI)
    monkeypatch.syspath_prepend(str(folder))

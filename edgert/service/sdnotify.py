"""systemd's notify protocol without a systemd library.

The protocol (sd_notify(3)): newline-separated ``KEY=VALUE`` lines sent as one
datagram to the AF_UNIX socket named by ``$NOTIFY_SOCKET``; a leading ``@``
means the Linux abstract namespace (a NUL byte).  When ``NOTIFY_SOCKET`` is
unset (not started by systemd, or ``Type=simple``) every call is a no-op, so
the runtime can always notify.  ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``) say
how often systemd expects ``WATCHDOG=1``; we ping at half that interval.

:class:`SystemdObserver` is the runtime hook (see ``edgert.runtime.observer``):
READY=1 after the first batch, WATCHDOG=1 from the inference path, STATUS=
with the frame rate, STOPPING=1 on shutdown.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Callable, Dict, Mapping, Optional

from edgert.runtime.observer import RunObserver

log = logging.getLogger("edgert.service.sdnotify")


def socket_address(value: str) -> str:
    """``$NOTIFY_SOCKET`` -> the address ``socket.sendto`` takes (abstract: leading NUL)."""
    if value.startswith("@"):
        return "\0" + value[1:]
    return value


def watchdog_interval(env: Optional[Mapping[str, str]] = None,
                      pid: Optional[int] = None) -> Optional[float]:
    """The watchdog timeout in seconds, or None when no watchdog applies to us.

    ``WATCHDOG_PID``, when set, names the process the watchdog is meant for; a
    child (e.g. ``edgert build`` spawned by the service) must not ping.
    """
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC", "").strip()
    if not usec:
        return None
    want_pid = env.get("WATCHDOG_PID", "").strip()
    if want_pid and want_pid != str(os.getpid() if pid is None else pid):
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not an integer", usec)
        return None
    return value / 1e6 if value > 0 else None


class Notifier:
    """Sends notify messages to one socket; never raises on delivery failure.

    A service must not die because systemd went away (e.g. during a daemon
    re-exec), so send errors are logged once and otherwise ignored.
    """

    def __init__(self, address: Optional[str]) -> None:
        self.address = socket_address(address) if address else None
        self._sock: Optional[socket.socket] = None
        self._lock = threading.Lock()
        self._warned = False

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "Notifier":
        env = os.environ if env is None else env
        return cls(env.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **fields: object) -> bool:
        """Send ``KEY=VALUE`` lines in one datagram; True when delivered."""
        if self.address is None:
            return False
        msg = "\n".join("%s=%s" % (k, str(v).replace("\n", " ")) for k, v in fields.items())
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    self._sock.setblocking(False)
                self._sock.sendto(msg.encode("utf-8"), self.address)
            except OSError as exc:
                if not self._warned:
                    log.warning("systemd notify socket %r: %s", self.address, exc)
                    self._warned = True
                return False
        return True

    def ready(self, status: str = "") -> bool:
        fields: Dict[str, object] = {"READY": 1}
        if status:
            fields["STATUS"] = status
        return self.send(**fields)

    def watchdog(self) -> bool:
        return self.send(WATCHDOG=1)

    def status(self, text: str) -> bool:
        return self.send(STATUS=text)

    def stopping(self, status: str = "") -> bool:
        fields: Dict[str, object] = {"STOPPING": 1}
        if status:
            fields["STATUS"] = status
        return self.send(**fields)

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


class SystemdObserver(RunObserver):
    """Run hooks -> notify messages, with watchdog pings rate-limited.

    Pings come only from :meth:`on_batch_done` / :meth:`heartbeat`, i.e. from
    the inference threads, and only once *every* lane has shown progress since
    the previous ping: if one engine instance hangs while the others keep
    going, pings stop and systemd restarts the service after ``WatchdogSec``.
    Pings are sent at most every
    ``interval / 2`` (systemd's advice) so a 1000 fps pipeline does not flood
    the socket; STATUS= (frames and fps) at most every ``status_every`` seconds.
    """

    def __init__(self, notifier: Notifier, watchdog_s: Optional[float],
                 status_every: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.notifier = notifier
        self.ping_every = watchdog_s / 2.0 if watchdog_s else None
        self.status_every = status_every
        self._clock = clock
        self._lock = threading.Lock()
        self._last_ping = float("-inf")
        self._last_status = clock()
        self._frames = 0
        self._frames_at_status = 0
        self._ready = False
        self._stopping = False
        self._lanes = 1
        self._seen: Dict[int, float] = {}
        self.fps: Optional[float] = None

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> Optional["SystemdObserver"]:
        """An observer when run under systemd with a notify socket, else None."""
        notifier = Notifier.from_env(env)
        if not notifier.enabled:
            return None
        interval = watchdog_interval(env)
        log.debug("systemd notify socket %s, watchdog %s", notifier.address, interval)
        return cls(notifier, interval)

    def on_start(self, lanes: int = 1) -> None:
        with self._lock:
            self._lanes = max(1, lanes)
        self.notifier.status("starting: loading engines, %d inference lane(s)" % lanes)

    def on_ready(self) -> None:
        with self._lock:
            if self._ready:
                return
            self._ready = True
        self.notifier.ready("running: first frame processed")
        self._ping(None, force=True)

    def on_batch_done(self, frames: int, lane: int = 0) -> None:
        with self._lock:
            self._frames += frames
        self._ping(lane)
        self._maybe_status()

    def heartbeat(self, lane: int = 0) -> None:
        self._ping(lane)

    def on_stop(self, reason: str = "") -> None:
        with self._lock:  # once: a signal and the end of the run may both report it
            if self._stopping:
                return
            self._stopping = True
        text = "stopping" + (": " + reason if reason else "")
        self.notifier.stopping(text)

    def _ping(self, lane: Optional[int], force: bool = False) -> None:
        if self.ping_every is None:
            return
        now = self._clock()
        with self._lock:
            if lane is not None:
                self._seen[lane] = now
            if not force:
                if now - self._last_ping < self.ping_every:
                    return
                lanes = range(self._lanes)
                if any(self._seen.get(k, float("-inf")) <= self._last_ping for k in lanes):
                    return  # some lane made no progress since the last ping
            self._last_ping = now
        self.notifier.watchdog()

    def _maybe_status(self) -> None:
        now = self._clock()
        with self._lock:
            elapsed = now - self._last_status
            if elapsed < self.status_every:
                return
            frames = self._frames - self._frames_at_status
            self.fps = frames / elapsed if elapsed > 0 else None
            self._frames_at_status, self._last_status = self._frames, now
            total = self._frames
        self.notifier.status("running: %.1f fps, %d frames" % (self.fps or 0.0, total))

"""SIGTERM / Ctrl-C turn into a graceful stop request for the running executor.

systemd stops a service with SIGTERM; a user presses Ctrl-C.  Both should
drain what is in flight and flush sinks (exit 0), not kill the process with
half-written files.  Handlers can only be installed from the main thread; from
any other thread this is a no-op and the caller stops the executor itself.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import threading
from types import FrameType
from typing import Any, Callable, Dict, Iterator, Optional

log = logging.getLogger("edgert.runtime.signals")

_SIGNALS = ("SIGINT", "SIGTERM")


@contextlib.contextmanager
def stop_on_signals(request_stop: Callable[[], None]) -> Iterator[None]:
    """Within the block, SIGINT/SIGTERM call ``request_stop`` (again on each signal)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: Dict[int, Any] = {}

    def handler(signum: int, frame: Optional[FrameType]) -> None:
        log.info("received %s", signal.Signals(signum).name)
        request_stop()

    for name in _SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None:
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)

"""Progress for long work (engine builds, calibration, benchmarks).

On a terminal a one-line bar is redrawn on stderr; elsewhere (systemd, CI,
pipes) only start and finish are logged, with durations, so logs stay short.
Library code uses this instead of printing.
"""
from __future__ import annotations

import logging
import sys
import time
from types import TracebackType
from typing import IO, Optional, Type

log = logging.getLogger("edgert.progress")


class Progress:
    """``with Progress("calibrating", total=200) as p: ... p.advance()``."""

    def __init__(
        self,
        what: str,
        total: Optional[int] = None,
        stream: Optional[IO[str]] = None,
        enabled: Optional[bool] = None,
    ) -> None:
        self.what = what
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = enabled
        self.started = 0.0
        self._last_draw = 0.0
        self.elapsed = 0.0

    def __enter__(self) -> "Progress":
        self.started = time.monotonic()
        log.info("%s ...", self.what)
        self._draw(force=True)
        return self

    def advance(self, n: int = 1, note: str = "") -> None:
        self.done += n
        self._draw(note=note)

    def _draw(self, force: bool = False, note: str = "") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        secs = now - self.started
        if self.total:
            frac = min(1.0, self.done / float(self.total))
            bar = "#" * int(frac * 24)
            text = "%s [%-24s] %d/%d %.0fs" % (self.what, bar, self.done, self.total, secs)
        else:
            text = "%s ... %d %.0fs" % (self.what, self.done, secs)
        if note:
            text += " " + note
        self.stream.write("\r\x1b[K" + text)
        self.stream.flush()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.elapsed = time.monotonic() - self.started
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
        if exc_type is None:
            log.info("%s done in %.1fs", self.what, self.elapsed)
        else:
            log.info("%s failed after %.1fs", self.what, self.elapsed)

"""Live camera sources over OpenCV capture, with reconnect.

RTSP cameras, USB webcams, CSI sensors and raw GStreamer pipelines all end
up as a ``cv2.VideoCapture`` (or a GStreamer appsink, see ``gst.py``) that
can stop delivering at any moment: a network blip, a camera reboot, a USB
cable pulled.  :class:`LiveSource` turns that into a stream that keeps going:
when a read fails it closes the capture, retries with exponential backoff and
jitter, logs each state change once (not every attempt), estimates the frames
lost during the outage, and publishes it all to the run's
:class:`~edgert.runtime.metrics.Metrics` (``bind_metrics``).

Frames are numbered 0, 1, 2 ... across reconnects; ``pts`` is seconds since
the source opened (a camera's own RTP clock restarts with every connection,
so it cannot give a monotonic timeline).

Metrics written (label ``source``):
  edgert_source_up                  1 while frames arrive, 0 while reconnecting
  edgert_source_reconnects_total    successful reconnects
  edgert_source_frames_lost_total   frames estimated lost while down (outage x fps);
                                    kept apart from ``edgert_frames_dropped_total``
                                    so the runtime's in = out + dropped identity holds
"""
from __future__ import annotations

import logging
import random
import threading
import time
from abc import abstractmethod
from typing import Any, ClassVar, Dict, Optional, Tuple, Type

import numpy as np
from pydantic import Field, model_validator

from edgert.errors import RuntimeFailure
from edgert.sources.base import Frame, Source, SourceConfig

log = logging.getLogger("edgert.sources.live")


class LiveSourceConfig(SourceConfig):
    """Options every camera source has (reconnect policy)."""

    reconnect: bool = True
    """Reopen the stream when it stops delivering frames (else the stream ends)."""
    reconnect_initial_s: float = Field(0.5, gt=0)
    """First wait before reopening; doubles after each failed attempt."""
    reconnect_max_s: float = Field(30.0, gt=0)
    """Longest wait between attempts."""
    reconnect_jitter: float = Field(0.2, ge=0, le=1)
    """Random fraction added to each wait (0.2 = up to +20 %), so many cameras
    behind one switch do not retry in lockstep."""
    give_up_after_s: Optional[float] = Field(None, gt=0)
    """End the stream after this long without frames (default: retry forever)."""
    wait_for_first_open: bool = False
    """At start, keep retrying a camera that is not up yet (a service booting
    before its cameras) instead of failing with an error."""

    @model_validator(mode="after")
    def _backoff_order(self) -> "LiveSourceConfig":
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ValueError("reconnect_max_s (%g) must be >= reconnect_initial_s (%g)"
                             % (self.reconnect_max_s, self.reconnect_initial_s))
        return self


def backoff_delays(initial: float, maximum: float, jitter: float,
                   rng: Optional[random.Random] = None) -> "Any":
    """Yield waits ``initial, 2*initial, ... maximum`` each times ``1 + U(0, jitter)``."""
    rng = rng or random.Random()
    delay = initial
    while True:
        yield min(maximum, delay) * (1.0 + rng.uniform(0.0, jitter))
        delay = min(maximum, delay * 2.0)


class LiveSource(Source):
    """A camera stream that reconnects; subclasses open/read/release one capture."""

    Config: ClassVar[Type[SourceConfig]] = LiveSourceConfig
    live = True

    def __init__(self, config: SourceConfig, base_dir: Any) -> None:
        super().__init__(config, base_dir)
        self.cfg: LiveSourceConfig = config  # type: ignore[assignment]
        self._closed = threading.Event()
        self._state_lock = threading.Lock()
        self._in_read = False
        self._ended = False  # set by a subclass at end-of-stream (no reconnect)
        self._index = 0
        self._t0: Optional[float] = None
        self._last_frame_t: Optional[float] = None
        self._fps: Optional[float] = None
        self._size: Optional[Tuple[int, int]] = None
        self._up = False
        self.reconnects = 0
        self.frames_lost = 0
        self.outages = 0

    # -- subclass hooks ---------------------------------------------------
    @abstractmethod
    def _open_capture(self) -> None:
        """Open the device/stream; raise RuntimeFailure with a one-line reason."""

    @abstractmethod
    def _read_capture(self) -> Optional[np.ndarray]:
        """One BGR frame, or None when the capture failed or timed out."""

    @abstractmethod
    def _release_capture(self) -> None:
        """Release the capture; must not raise."""

    def describe(self) -> str:
        """What the logs call this stream (URI without credentials)."""
        return redact(self.cfg.uri)

    # -- Source API -------------------------------------------------------
    def open(self) -> None:
        self._closed.clear()
        self._describe_metrics()
        try:
            self._open_capture()
        except RuntimeFailure as exc:
            if not (self.cfg.wait_for_first_open and self.cfg.reconnect):
                raise RuntimeFailure("source '%s': %s" % (self.name, exc)) from None
            log.warning("source '%s': %s; waiting for it to come up", self.name, exc)
            self._set_up(False)
            return
        self._t0 = time.monotonic()
        self._set_up(True)
        log.info("source '%s': opened %s", self.name, self.describe())

    def read(self) -> Optional[Frame]:
        with self._state_lock:
            self._in_read = True
        try:
            return self._read_or_recover()
        finally:
            with self._state_lock:
                self._in_read = False
                closed = self._closed.is_set()
            if closed:  # close() from another thread left the release to us
                self._release_capture()

    def _read_or_recover(self) -> Optional[Frame]:
        while not self._closed.is_set():
            image = self._read_capture() if self._up else None
            if image is not None:
                return self._frame(image)
            if self._ended:
                log.info("source '%s': end of stream", self.name)
                self._set_up(False)
                return None
            if not self.cfg.reconnect:
                if self._up:
                    log.warning("source '%s': stream ended (%s)", self.name, self.describe())
                self._set_up(False)
                return None
            if not self._recover():
                return None
        return None

    def close(self) -> None:
        """Stop; a read() blocked in another thread returns None soon after.

        Releasing a capture while another thread is inside its read() can
        crash native decoders, so then the reading thread releases it.
        """
        with self._state_lock:
            self._closed.set()
            reading = self._in_read
        if not reading:
            self._release_capture()
        self._set_up(False)

    @property
    def fps(self) -> Optional[float]:
        return self._fps

    @property
    def size(self) -> Optional[Tuple[int, int]]:
        return self._size

    def stats(self) -> Dict[str, Any]:
        return {"frames": self._index, "reconnects": self.reconnects,
                "frames_lost": self.frames_lost, "outages": self.outages, "up": self._up}

    # -- internals --------------------------------------------------------
    def _frame(self, image: np.ndarray) -> Frame:
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        self._last_frame_t = now
        self._size = (int(image.shape[1]), int(image.shape[0]))
        frame = Frame(image=image, index=self._index, pts=now - self._t0, capture_time=now)
        self._index += 1
        return frame

    def _recover(self) -> bool:
        """Reopen with backoff until frames flow again; False when giving up or closed."""
        down_since = time.monotonic()
        was_up = self._up
        self._set_up(False)
        self._release_capture()
        if was_up:
            self.outages += 1
            log.warning("source '%s': stream lost (%s); reconnecting with backoff %g..%g s",
                        self.name, self.describe(), self.cfg.reconnect_initial_s,
                        self.cfg.reconnect_max_s)
        attempts = 0
        for delay in backoff_delays(self.cfg.reconnect_initial_s, self.cfg.reconnect_max_s,
                                    self.cfg.reconnect_jitter):
            limit = self.cfg.give_up_after_s
            if limit is not None and time.monotonic() - down_since + delay > limit:
                log.error("source '%s': no frames for %.0f s; giving up on %s",
                          self.name, limit, self.describe())
                return False
            if self._closed.wait(delay):
                return False
            attempts += 1
            try:
                self._open_capture()
            except RuntimeFailure as exc:
                log.debug("source '%s': reconnect attempt %d failed: %s", self.name, attempts, exc)
                continue
            self._on_reconnected(attempts)
            return True
        return False  # pragma: no cover - the generator never ends

    def _on_reconnected(self, attempts: int) -> None:
        now = time.monotonic()
        lost = 0
        if self._last_frame_t is not None and self._fps:
            # Frames the camera produced while nobody was reading; an estimate
            # from the nominal rate, since the stream itself cannot say.
            lost = max(0, int(round((now - self._last_frame_t) * self._fps)) - 1)
        if self._t0 is None:
            self._t0 = now
        else:
            self.reconnects += 1
            self.frames_lost += lost
            if self.metrics is not None:
                self.metrics.inc("edgert_source_reconnects_total", source=self.name)
                self.metrics.inc("edgert_source_frames_lost_total", float(lost), source=self.name)
        self._set_up(True)
        gap = (now - self._last_frame_t) if self._last_frame_t is not None else 0.0
        log.info("source '%s': stream up again after %.1f s (%d attempt%s, ~%d frames lost)",
                 self.name, gap, attempts, "" if attempts == 1 else "s", lost)

    def _set_up(self, up: bool) -> None:
        self._up = up
        if self.metrics is not None:
            self.metrics.set("edgert_source_up", 1.0 if up else 0.0, source=self.name)

    def _describe_metrics(self) -> None:
        if self.metrics is None:
            return
        self.metrics.describe("edgert_source_up", "1 while the source delivers frames")
        self.metrics.describe("edgert_source_reconnects_total", "Successful reconnects")
        self.metrics.describe("edgert_source_frames_lost_total",
                              "Frames estimated lost while the source was down")

    def _note_fps(self, fps: Optional[float]) -> None:
        """Record the stream's nominal rate when it is plausible (RTSP often says 90000)."""
        if fps is not None and 0.5 <= fps <= 240.0:
            self._fps = float(fps)


def redact(uri: str) -> str:
    """``rtsp://user:pw@cam/x`` -> ``rtsp://user:***@cam/x`` for logs and errors."""
    if "://" not in uri:
        return uri
    scheme, rest = uri.split("://", 1)
    host, sep, path = rest.partition("/")
    if "@" in host:
        cred, at_host = host.rsplit("@", 1)
        user = cred.split(":", 1)[0]
        host = "%s:***@%s" % (user, at_host) if ":" in cred else "%s@%s" % (user, at_host)
    return "%s://%s%s%s" % (scheme, host, sep, path)


_ENV_LOCK = threading.Lock()


class OpenCVSource(LiveSource):
    """A LiveSource read through ``cv2.VideoCapture``; subclasses say how to open it."""

    def __init__(self, config: SourceConfig, base_dir: Any) -> None:
        super().__init__(config, base_dir)
        self._cap: Any = None
        self._cap_lock = threading.Lock()

    @abstractmethod
    def _capture_args(self, cv2: Any) -> Tuple[Any, int, Tuple[int, ...], Dict[str, str]]:
        """(target, apiPreference, params, environment) for ``cv2.VideoCapture``."""

    def _after_open(self, cap: Any, cv2: Any) -> None:
        """Apply settings that need an open capture (resolution, fourcc)."""

    def _open_capture(self) -> None:
        from edgert._lazy import require

        cv2 = require("cv2", "camera sources")
        _quiet_native_logs(cv2)
        target, api, params, env = self._capture_args(cv2)
        cap = _new_capture(cv2, target, api, params, env)
        if not cap.isOpened():
            cap.release()
            raise RuntimeFailure("cannot open %s" % self.describe())
        self._after_open(cap, cv2)
        self._note_fps(cap.get(cv2.CAP_PROP_FPS))
        with self._cap_lock:
            self._cap = cap

    def _read_capture(self) -> Optional[np.ndarray]:
        cap = self._cap
        if cap is None:
            return None
        try:
            ok, image = cap.read()
        except Exception as exc:  # noqa: BLE001 - cv2.error from a broken stream
            log.debug("source '%s': read failed: %s", self.name, exc)
            return None
        return image if ok and image is not None else None

    def _release_capture(self) -> None:
        with self._cap_lock:
            cap, self._cap = self._cap, None
        if cap is not None:
            try:
                cap.release()
            except Exception:  # noqa: BLE001 - releasing a dead stream must not fail close()
                pass


def _quiet_native_logs(cv2: Any) -> None:
    """Silence OpenCV's and FFmpeg's own stderr lines unless the user set their levels.

    Every failed reconnect attempt would otherwise print two native warning
    lines; edgert logs each state change once instead.  ``OPENCV_LOG_LEVEL=WARNING``
    and ``OPENCV_FFMPEG_LOGLEVEL=24`` bring them back for debugging.
    """
    import os

    if "OPENCV_FFMPEG_LOGLEVEL" not in os.environ:
        os.environ["OPENCV_FFMPEG_LOGLEVEL"] = "-8"  # AV_LOG_QUIET
    logging_mod = getattr(getattr(cv2, "utils", None), "logging", None)
    if "OPENCV_LOG_LEVEL" not in os.environ and logging_mod is not None:
        logging_mod.setLogLevel(logging_mod.LOG_LEVEL_ERROR)


def _new_capture(cv2: Any, target: Any, api: int, params: Tuple[int, ...],
                 env: Dict[str, str]) -> Any:
    """Open ``cv2.VideoCapture`` with ``env`` set for the duration of the open only.

    OpenCV's FFmpeg backend reads ``OPENCV_FFMPEG_CAPTURE_OPTIONS`` from the
    process environment at open time, so sources with different options take a
    lock and restore the previous value afterwards.
    """
    import os

    with _ENV_LOCK:
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            if params:
                return cv2.VideoCapture(target, api, list(params))
            return cv2.VideoCapture(target, api)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

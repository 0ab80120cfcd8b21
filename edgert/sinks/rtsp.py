"""``kind: rtsp``: serve the annotated video over RTSP (GStreamer's RTSP server).

For looking at what a headless box sees: ``ffplay rtsp://jetson:8554/street``
or VLC.  Each stream gets a mount ``/<source>`` (``path`` template) once its
first frame arrives; frames are only encoded while a client is watching, and
a slow client never blocks the pipeline (a leaky queue drops its frames).

Needs PyGObject with GStreamer and its RTSP server library:
``apt install python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-ugly``
(x264enc) and a venv created with ``--system-site-packages``; on a Jetson
``encoder: nvv4l2h264enc`` uses the hardware encoder.  YAML::

    - {kind: rtsp, input: det, port: 8554, path: "/{source}"}
"""
from __future__ import annotations

import importlib
import logging
import threading
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from pydantic import Field, field_validator

from edgert.batch import Batch
from edgert.errors import MissingDependency, RuntimeFailure
from edgert.stage import SINKS, Sink, SinkConfig, StageContext

log = logging.getLogger("edgert.sinks.rtsp")

NEEDS = ("the rtsp sink needs PyGObject with GStreamer's RTSP server: apt install python3-gi "
         "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-ugly; create the venv with "
         "--system-site-packages")
ENCODERS = {
    "x264enc": "x264enc tune=zerolatency speed-preset=ultrafast bitrate={kbps} key-int-max={gop}",
    "nvv4l2h264enc": "nvvidconv ! nvv4l2h264enc bitrate={bps} iframeinterval={gop} "
                     "insert-sps-pps=true",
}


class RtspSinkConfig(SinkConfig):
    port: int = Field(8554, ge=0, le=65535)
    """RTSP port (8554 is the usual unprivileged one)."""
    host: str = "0.0.0.0"
    """Address to listen on; ``127.0.0.1`` keeps it on this machine."""
    path: str = "/{source}"
    """Mount point per stream; ``{source}`` is the stream name."""
    fps: float = Field(25.0, gt=0)
    """Frame rate announced to clients."""
    bitrate_kbps: int = Field(2000, ge=50)
    """Encoder bitrate."""
    encoder: str = "x264enc"
    """``x264enc`` (software) or ``nvv4l2h264enc`` (Jetson hardware)."""
    annotate: bool = True
    """Draw boxes and labels (as the video sink does)."""

    @field_validator("encoder")
    @classmethod
    def _encoder(cls, v: str) -> str:
        if v not in ENCODERS:
            raise ValueError("encoder '%s' is not one of %s" % (v, ", ".join(ENCODERS)))
        return v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("path must start with '/', e.g. /{source}; got '%s'" % v)
        return v


def _gi() -> Tuple[Any, Any, Any]:
    try:
        gi = importlib.import_module("gi")
        gi.require_version("Gst", "1.0")
        gi.require_version("GstRtspServer", "1.0")
        return (importlib.import_module("gi.repository.Gst"),
                importlib.import_module("gi.repository.GstRtspServer"),
                importlib.import_module("gi.repository.GLib"))
    except (ImportError, ValueError):
        raise MissingDependency(NEEDS) from None


def launch_line(cfg: RtspSinkConfig, width: int, height: int) -> str:
    """The media pipeline one mount serves (appsrc fed by :meth:`RtspSink.write`)."""
    gop = max(1, int(round(cfg.fps)))
    enc = ENCODERS[cfg.encoder].format(kbps=cfg.bitrate_kbps, bps=cfg.bitrate_kbps * 1000,
                                       gop=gop)
    fps = "%d/1000" % int(round(cfg.fps * 1000))
    return ("( appsrc name=src is-live=true format=time do-timestamp=true block=false "
            "caps=video/x-raw,format=BGR,width=%d,height=%d,framerate=%s ! "
            "queue leaky=downstream max-size-buffers=4 ! videoconvert ! "
            "video/x-raw,format=I420 ! %s ! rtph264pay name=pay0 pt=96 config-interval=1 )"
            % (width, height, fps, enc))


@SINKS.register("rtsp")
class RtspSink(Sink):
    Config = RtspSinkConfig

    def __init__(self, config: SinkConfig, context: StageContext) -> None:
        super().__init__(config, context)
        self.cfg: RtspSinkConfig = config  # type: ignore[assignment]
        self._mods: Any = None
        self._server: Any = None
        self._loop: Any = None
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        self._clients: Dict[str, List[Any]] = {}  # source -> appsrcs of watching clients
        self._mounted: Dict[str, Tuple[int, int]] = {}
        self._cv2: Any = None
        self._draw: Any = None
        self.port: Optional[int] = None
        self.frames_sent = 0

    def start(self) -> None:
        Gst, GstRtspServer, GLib = self._mods = _gi()
        Gst.init(None)
        ctx = GLib.MainContext.new()
        self._server = GstRtspServer.RTSPServer()
        self._server.set_address(self.cfg.host)
        self._server.set_service(str(self.cfg.port))
        if self._server.attach(ctx) == 0:
            raise RuntimeFailure("rtsp sink '%s': cannot listen on %s:%d" %
                                 (self.name, self.cfg.host, self.cfg.port))
        self.port = int(self._server.get_bound_port())
        self._loop = GLib.MainLoop.new(ctx, False)
        self._thread = threading.Thread(target=self._loop.run, name="sink:%s" % self.name,
                                        daemon=True)
        self._thread.start()
        if self.cfg.annotate:
            from edgert._lazy import require
            from edgert.sinks.video import VideoSinkConfig

            self._cv2 = require("cv2", "drawing on the RTSP video")
            self._draw = VideoSinkConfig.model_validate({"kind": "video", "input": self.cfg.input})
        log.info("rtsp sink '%s': serving on rtsp://%s:%d%s", self.name, self.cfg.host,
                 self.port, self.cfg.path)

    def write(self, batch: Batch) -> None:
        for i in range(len(batch)):
            name = batch.source_name(i)
            image = batch.frames[i]
            if name not in self._mounted:
                self._mount(name, int(image.shape[1]), int(image.shape[0]))
            with self._lock:
                targets = list(self._clients.get(name, ()))
            if not targets:
                continue  # nobody watching: no encoding at all
            if self._cv2 is not None:
                from edgert.sinks.video import annotate

                image = annotate(self._cv2, image, batch, i, self._draw)
            self._push(targets, np.ascontiguousarray(image))

    def _push(self, targets: List[Any], image: np.ndarray) -> None:
        Gst = self._mods[0]
        data = image.tobytes()
        for src in targets:
            src.emit("push-buffer", Gst.Buffer.new_wrapped(data))
        self.frames_sent += 1

    def _mount(self, name: str, width: int, height: int) -> None:
        GstRtspServer = self._mods[1]
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch_line(self.cfg, width, height))
        factory.set_shared(True)
        factory.connect("media-configure", self._on_media, name)
        path = self.cfg.path.format(source=name)
        self._server.get_mount_points().add_factory(path, factory)
        self._mounted[name] = (width, height)
        log.info("rtsp sink '%s': rtsp://%s:%d%s (%dx%d)", self.name, self.cfg.host,
                 self.port or self.cfg.port, path, width, height)

    def _on_media(self, factory: Any, media: Any, name: str) -> None:
        """A client made the server build the pipeline: feed its appsrc from now on."""
        src = media.get_element().get_child_by_name("src")
        with self._lock:
            self._clients.setdefault(name, []).append(src)
        media.connect("unprepared", self._on_gone, name, src)

    def _on_gone(self, media: Any, name: str, src: Any) -> None:
        with self._lock:
            if src in self._clients.get(name, []):
                self._clients[name].remove(src)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.quit()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._loop = self._thread = None

    def stats(self) -> Dict[str, Any]:
        return {"frames_sent": self.frames_sent, "mounts": sorted(self._mounted)}

"""``gst://<pipeline>``: any GStreamer pipeline that ends in an appsink.

For experts who know the exact elements their hardware wants (e.g. Jetson's
``nvv4l2decoder``).  The pipeline is opened through OpenCV when OpenCV was
built with GStreamer (JetPack's python3-opencv is), otherwise through
PyGObject's appsink (Debian/Ubuntu ``python3-gi`` + ``gir1.2-gstreamer-1.0``;
make the venv with ``--system-site-packages`` to see it).  When the pipeline
does not end in an appsink, ``! videoconvert ! video/x-raw,format=BGR !
appsink`` is appended.  YAML::

    - name: cam
      uri: "gst://rtspsrc location=rtsp://10.0.0.5/s protocols=tcp ! rtph264depay
            ! h264parse ! nvv4l2decoder ! nvvidconv ! video/x-raw,format=BGRx
            ! videoconvert ! video/x-raw,format=BGR ! appsink drop=1 max-buffers=2"

A pipeline that reaches end-of-stream (a ``filesrc``) ends the stream; errors
and stalls go through the reconnect policy like any camera.
"""
from __future__ import annotations

import importlib
import re
from typing import Any, ClassVar, Optional, Type

import numpy as np
from pydantic import Field, field_validator

from edgert._lazy import available
from edgert.errors import MissingDependency, RuntimeFailure
from edgert.sources.base import SOURCES, SourceConfig, split_uri
from edgert.sources.live import LiveSource, LiveSourceConfig

APPSINK_TAIL = "videoconvert ! video/x-raw,format=BGR ! appsink drop=1 max-buffers=%d"
GST_HINT = ("OpenCV built with GStreamer (JetPack's python3-opencv) or PyGObject "
            "(apt install python3-gi gir1.2-gstreamer-1.0 gstreamer1.0-plugins-base; "
            "create the venv with --system-site-packages)")


class GstConfig(LiveSourceConfig):
    backend: str = "auto"
    """``auto`` (OpenCV when built with GStreamer, else PyGObject), ``opencv`` or ``gi``."""
    read_timeout_s: float = Field(5.0, gt=0)
    """No frame for this long counts as the stream lost (PyGObject backend)."""
    max_buffers: int = Field(2, ge=1)
    """Frames the appsink holds before dropping the oldest (when appended by edgert)."""

    @field_validator("backend")
    @classmethod
    def _backend(cls, v: str) -> str:
        if v not in ("auto", "opencv", "gi"):
            raise ValueError("'%s' is not a GStreamer backend; use auto, opencv or gi" % v)
        return v


def with_appsink(pipeline: str, max_buffers: int) -> str:
    """``pipeline`` ending in an appsink that delivers BGR frames."""
    pipeline = pipeline.strip().rstrip("!").strip()
    last = pipeline.rsplit("!", 1)[-1].strip()
    if re.match(r"^appsink(\s|$)", last):
        return pipeline
    return "%s ! %s" % (pipeline, APPSINK_TAIL % max_buffers)


def opencv_has_gstreamer() -> bool:
    if not available("cv2"):
        return False
    import cv2

    from edgert.platform.detect import parse_gstreamer

    return bool(parse_gstreamer(cv2.getBuildInformation()))


def _gi_gst() -> Any:
    """PyGObject's Gst module (with GstApp loaded), imported by name: no stubs exist."""
    gi = importlib.import_module("gi")
    gi.require_version("Gst", "1.0")
    gi.require_version("GstApp", "1.0")
    importlib.import_module("gi.repository.GstApp")
    return importlib.import_module("gi.repository.Gst")


def gi_has_gstreamer() -> bool:
    try:
        _gi_gst()
    except (ImportError, ValueError):
        return False
    return True


@SOURCES.register("gst")
class GstSource(LiveSource):
    """A GStreamer pipeline read through OpenCV or PyGObject."""

    Config: ClassVar[Type[SourceConfig]] = GstConfig

    def __init__(self, config: Any, base_dir: Any) -> None:
        super().__init__(config, base_dir)
        self._reader: Any = None

    def pipeline(self) -> str:
        cfg: GstConfig = self.config  # type: ignore[assignment]
        return with_appsink(split_uri(cfg.uri)[1], cfg.max_buffers)

    def describe(self) -> str:
        return "GStreamer pipeline '%s'" % self.pipeline()

    def _backend(self) -> str:
        cfg: GstConfig = self.config  # type: ignore[assignment]
        if cfg.backend in ("auto", "opencv") and opencv_has_gstreamer():
            return "opencv"
        if cfg.backend in ("auto", "gi") and gi_has_gstreamer():
            return "gi"
        raise MissingDependency("source '%s': %s needs GStreamer: %s"
                                % (self.name, split_uri(cfg.uri)[0] + "://", GST_HINT))

    def _open_capture(self) -> None:
        cfg: GstConfig = self.config  # type: ignore[assignment]
        if self._backend() == "opencv":
            self._reader = _OpenCVGst(self.pipeline())
        else:
            self._reader = _GiAppsink(self.pipeline(), cfg.read_timeout_s)
        self._note_fps(self._reader.fps)

    def _read_capture(self) -> Optional[np.ndarray]:
        reader = self._reader
        if reader is None:
            return None
        image = reader.read()
        if self._fps is None:
            self._note_fps(reader.fps)  # PyGObject learns it from the first sample's caps
        if image is None and reader.eos:
            self._ended = True
        return image

    def _release_capture(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()


class _OpenCVGst:
    def __init__(self, pipeline: str) -> None:
        import cv2

        self._cap = cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
        if not self._cap.isOpened():
            raise RuntimeFailure("GStreamer could not start '%s'" % pipeline)
        self.fps: Optional[float] = self._cap.get(cv2.CAP_PROP_FPS) or None
        self.eos = False

    def read(self) -> Optional[np.ndarray]:
        ok, image = self._cap.read()
        return image if ok else None

    def close(self) -> None:
        self._cap.release()


class _GiAppsink:
    """Pull BGR frames from the pipeline's appsink with PyGObject."""

    def __init__(self, pipeline: str, read_timeout_s: float) -> None:
        Gst = _gi_gst()
        Gst.init(None)
        self._gst = Gst
        self._timeout_ns = int(read_timeout_s * 1e9)
        self.eos = False
        self.fps: Optional[float] = None
        try:
            self._pipe = Gst.parse_launch(pipeline)
        except Exception as exc:  # noqa: BLE001 - GLib.Error names the bad element
            raise RuntimeFailure("bad GStreamer pipeline: %s" % _one_line(exc)) from None
        self._sink = _find_appsink(self._pipe, Gst)
        if self._sink is None:
            raise RuntimeFailure("the GStreamer pipeline has no appsink")
        if self._pipe.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            reason = self._bus_error() or "state change to PLAYING failed"
            self.close()
            raise RuntimeFailure("GStreamer could not start the pipeline: %s" % reason)

    def read(self) -> Optional[np.ndarray]:
        sample = self._sink.emit("try-pull-sample", self._timeout_ns)
        if sample is None:
            self.eos = bool(self._sink.get_property("eos")) and self._bus_error() is None
            return None
        return self._to_array(sample)

    def _to_array(self, sample: Any) -> Optional[np.ndarray]:
        caps = sample.get_caps().get_structure(0)
        width, height = caps.get_value("width"), caps.get_value("height")
        ok, num, den = caps.get_fraction("framerate")
        if ok and den:
            self.fps = num / den
        buf = sample.get_buffer()
        ok, info = buf.map(self._gst.MapFlags.READ)
        if not ok:
            return None
        try:
            data = np.frombuffer(info.data, np.uint8)
            stride = data.size // height  # rows are padded to 4 bytes
            return data[: stride * height].reshape(height, stride)[:, : width * 3] \
                .reshape(height, width, 3).copy()
        finally:
            buf.unmap(info)

    def _bus_error(self) -> Optional[str]:
        bus = self._pipe.get_bus()
        msg = bus.pop_filtered(self._gst.MessageType.ERROR)
        if msg is None:
            return None
        err, _debug = msg.parse_error()
        return _one_line(err.message)

    def close(self) -> None:
        self._pipe.set_state(self._gst.State.NULL)


def _find_appsink(pipe: Any, Gst: Any) -> Any:
    it = pipe.iterate_sinks()
    while True:
        res, elem = it.next()
        if res != Gst.IteratorResult.OK:
            return None
        if elem.get_factory() is not None and elem.get_factory().get_name() == "appsink":
            return elem


def _one_line(exc: Any) -> str:
    return " ".join(str(exc).split())

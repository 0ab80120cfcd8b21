"""``csi://N``: a Jetson CSI camera (IMX219, IMX477, ...) through nvarguscamerasrc.

edgert builds the pipeline JetPack's camera stack wants, with the frames
scaled/flipped by the VIC (``nvvidconv``) and handed over as BGR::

    nvarguscamerasrc sensor-id=N [sensor-mode=M] !
      video/x-raw(memory:NVMM),width=W,height=H,framerate=F/1 !
      nvvidconv flip-method=K ! video/x-raw,format=BGRx !
      videoconvert ! video/x-raw,format=BGR ! appsink drop=1 max-buffers=B

and opens it like a ``gst://`` source.  YAML::

    - {name: front, uri: "csi://0", width: 1920, height: 1080, fps: 30, flip: 2}

Anywhere but a Jetson with JetPack's GStreamer this is a one-line error.
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Optional, Type

from pydantic import Field, field_validator

from edgert.errors import RuntimeFailure
from edgert.sources.base import SOURCES, SourceConfig, split_uri
from edgert.sources.gst import GstConfig, GstSource

CSI_NEEDS = ("csi:// needs a Jetson with JetPack's GStreamer (nvarguscamerasrc); "
             "this machine is not one")


class CsiConfig(GstConfig):
    width: int = Field(1920, ge=1)
    """Output width (the sensor mode is scaled to it)."""
    height: int = Field(1080, ge=1)
    """Output height."""
    fps: int = Field(30, ge=1)
    """Frame rate requested from the sensor."""
    sensor_mode: Optional[int] = Field(None, ge=0)
    """Sensor mode index (``gst-inspect-1.0 nvarguscamerasrc`` lists them);
    default: the camera stack picks one that fits width/height/fps."""
    flip: int = Field(0, ge=0, le=7)
    """``nvvidconv flip-method``: 0 none, 1 ccw 90, 2 rotate 180, 3 cw 90,
    4 horizontal, 5 upper-right diagonal, 6 vertical, 7 upper-left diagonal."""

    @field_validator("uri")
    @classmethod
    def _sensor(cls, v: str) -> str:
        if not split_uri(v)[1].isdigit():
            raise ValueError("a CSI URI is csi://<sensor id>, e.g. csi://0; got '%s'" % v)
        return v


def csi_pipeline(cfg: CsiConfig) -> str:
    sensor = int(split_uri(cfg.uri)[1])
    mode = "" if cfg.sensor_mode is None else " sensor-mode=%d" % cfg.sensor_mode
    return (
        "nvarguscamerasrc sensor-id=%d%s ! "
        "video/x-raw(memory:NVMM),width=%d,height=%d,framerate=%d/1 ! "
        "nvvidconv flip-method=%d ! video/x-raw,format=BGRx ! "
        "videoconvert ! video/x-raw,format=BGR ! appsink drop=1 max-buffers=%d"
        % (sensor, mode, cfg.width, cfg.height, cfg.fps, cfg.flip, cfg.max_buffers)
    )


@SOURCES.register("csi")
class CsiSource(GstSource):
    Config: ClassVar[Type[SourceConfig]] = CsiConfig

    def pipeline(self) -> str:
        return csi_pipeline(self.config)  # type: ignore[arg-type]

    def describe(self) -> str:
        return "CSI camera %s" % split_uri(self.config.uri)[1]

    def open(self) -> None:
        from edgert.platform.detect import is_jetson

        if not is_jetson(Path("/")):
            raise RuntimeFailure("source '%s': %s" % (self.name, CSI_NEEDS))
        super().open()

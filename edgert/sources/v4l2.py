"""``v4l2:///dev/videoN``: USB webcams (and other V4L2 devices) through OpenCV.

YAML::

    - name: desk
      uri: v4l2:///dev/video0
      width: 1280
      height: 720
      fps: 30
      fourcc: MJPG        # most USB cameras only reach 720p30 in MJPG

A camera unplugged and plugged back in is reopened by the reconnect policy
of :class:`~edgert.sources.live.LiveSource` (the device node must reappear
under the same name; use a ``/dev/v4l/by-id/...`` path to be sure).
"""
from __future__ import annotations

import os
from typing import Any, ClassVar, Dict, Optional, Tuple, Type

from pydantic import Field, field_validator

from edgert.errors import RuntimeFailure
from edgert.sources.base import SOURCES, SourceConfig, split_uri
from edgert.sources.live import LiveSourceConfig, OpenCVSource, log


class V4l2Config(LiveSourceConfig):
    width: Optional[int] = Field(None, ge=1)
    """Requested frame width; the driver may pick the nearest mode (logged)."""
    height: Optional[int] = Field(None, ge=1)
    """Requested frame height."""
    fps: Optional[float] = Field(None, gt=0)
    """Requested frame rate."""
    fourcc: Optional[str] = None
    """Pixel format the camera sends: ``MJPG``, ``YUYV``, ``H264`` ..."""

    @field_validator("fourcc")
    @classmethod
    def _fourcc(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and len(v) != 4:
            raise ValueError("fourcc is 4 characters, e.g. MJPG or YUYV; got '%s'" % v)
        return v

    @field_validator("uri")
    @classmethod
    def _device(cls, v: str) -> str:
        _, rest = split_uri(v)
        if not rest.startswith("/dev/"):
            raise ValueError("a V4L2 URI names a device node: v4l2:///dev/video0; got '%s'" % v)
        return v


@SOURCES.register("v4l2")
class V4l2Source(OpenCVSource):
    Config: ClassVar[Type[SourceConfig]] = V4l2Config

    @property
    def device(self) -> str:
        return split_uri(self.config.uri)[1]

    def _capture_args(self, cv2: Any) -> Tuple[Any, int, Tuple[int, ...], Dict[str, str]]:
        if not os.path.exists(self.device):
            raise RuntimeFailure("no such camera device %s" % self.device)
        return self.device, cv2.CAP_V4L2, (), {}

    def _after_open(self, cap: Any, cv2: Any) -> None:
        cfg: V4l2Config = self.config  # type: ignore[assignment]
        # fourcc first: the sizes and rates a camera offers depend on it.
        if cfg.fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*cfg.fourcc))
        if cfg.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.width)
        if cfg.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.height)
        if cfg.fps:
            cap.set(cv2.CAP_PROP_FPS, cfg.fps)
        got = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
               cap.get(cv2.CAP_PROP_FPS))
        want = (cfg.width or got[0], cfg.height or got[1], cfg.fps or got[2])
        if (got[0], got[1]) != (want[0], want[1]) or abs(got[2] - want[2]) > 0.5:
            log.warning("source '%s': %s gives %dx%d@%g, asked for %dx%d@%g", self.name,
                        self.device, got[0], got[1], got[2], want[0], want[1], want[2])

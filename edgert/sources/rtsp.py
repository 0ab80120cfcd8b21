"""``rtsp://`` IP cameras through OpenCV's FFmpeg backend, reconnecting.

TCP by default: RTSP over UDP loses packets (grey smeared frames) on busy
networks and through NAT.  Open and read timeouts make a dead camera fail a
read within seconds instead of blocking forever, which is what lets
:class:`~edgert.sources.live.LiveSource` notice and reconnect.

YAML::

    - name: gate
      uri: rtsp://user:${CAM_PW}@10.0.0.12:554/stream1
      transport: tcp
      open_timeout_s: 5
      read_timeout_s: 5
      reconnect_initial_s: 0.5
      reconnect_max_s: 30
"""
from __future__ import annotations

from typing import Any, ClassVar, Dict, Tuple, Type

from pydantic import Field, field_validator

from edgert.sources.base import SOURCES, SourceConfig
from edgert.sources.live import LiveSourceConfig, OpenCVSource


class RtspConfig(LiveSourceConfig):
    transport: str = "tcp"
    """``tcp`` (reliable, the default) or ``udp``."""
    open_timeout_s: float = Field(5.0, gt=0)
    """Give up opening the stream after this long (then back off and retry)."""
    read_timeout_s: float = Field(5.0, gt=0)
    """A read that gets no frame for this long counts as the stream lost."""
    ffmpeg_options: Dict[str, str] = Field(default_factory=dict)
    """Extra FFmpeg demuxer options, e.g. ``{fflags: nobuffer, max_delay: "0"}``."""

    @field_validator("transport")
    @classmethod
    def _transport(cls, v: str) -> str:
        if v not in ("tcp", "udp"):
            raise ValueError("'%s' is not an RTSP transport; use tcp or udp" % v)
        return v


@SOURCES.register("rtsp")
@SOURCES.register("rtsps")
class RtspSource(OpenCVSource):
    Config: ClassVar[Type[SourceConfig]] = RtspConfig

    def _capture_args(self, cv2: Any) -> Tuple[Any, int, Tuple[int, ...], Dict[str, str]]:
        cfg: RtspConfig = self.config  # type: ignore[assignment]
        opts = {"rtsp_transport": cfg.transport}
        opts.update(cfg.ffmpeg_options)
        env = {"OPENCV_FFMPEG_CAPTURE_OPTIONS": "|".join("%s;%s" % kv for kv in opts.items())}
        params = (cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(cfg.open_timeout_s * 1000),
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(cfg.read_timeout_s * 1000))
        return cfg.uri, cv2.CAP_FFMPEG, params, env

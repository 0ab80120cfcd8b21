"""The source interface: one source is one stream of frames.

A source is chosen by its URI's scheme (``file://``, ``images://``,
``rtsp://``, ``v4l2://``, ``csi://``, ``gst://``) through the ``SOURCES``
registry.  ``read()`` returns the next :class:`Frame` or ``None`` at the end
of the stream; a live source that loses its connection handles reconnecting
itself and reports it through ``stats()``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Dict, Optional, Tuple, Type

import numpy as np
from pydantic import BaseModel, ConfigDict

from edgert.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from edgert.runtime.metrics import Metrics


@dataclass
class Frame:
    image: np.ndarray  # HxWx3 uint8 BGR
    index: int  # frame number within the stream, from 0
    pts: float  # presentation time in the stream, seconds
    capture_time: float  # time.monotonic() when read


def split_uri(uri: str) -> Tuple[str, str]:
    """``"file://a/b.mp4"`` -> ``("file", "a/b.mp4")``; a bare path counts as ``file``.

    Not ``urllib.parse``: ``file://../x.mp4`` must keep ``..`` as part of a
    relative path instead of reading it as a host name.
    """
    if "://" in uri:
        scheme, rest = uri.split("://", 1)
        return scheme.lower(), rest
    return "file", uri


def resolve_local(rest: str, base_dir: Path) -> Path:
    """The local path of a ``file://`` or ``images://`` URI, relative to ``base_dir``."""
    p = Path(rest).expanduser()
    return p if p.is_absolute() else (base_dir / p)


class SourceConfig(BaseModel):
    """Keys every source has; a scheme's class adds its own options."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: str
    """Stream name, used in outputs (``out/{source}.mp4``) and metrics."""
    uri: str
    """Where frames come from: ``file://street.mp4``, ``images://frames/``,
    ``rtsp://cam/stream``, ``v4l2:///dev/video0``, ``csi://0``."""
    loop: bool = False
    """Start again at the end (files and image folders)."""


class Source(ABC):
    Config: ClassVar[Type[SourceConfig]] = SourceConfig
    live: ClassVar[bool] = False
    """Live sources (cameras) drop frames under load; files block instead."""

    def __init__(self, config: SourceConfig, base_dir: Path) -> None:
        self.config = config
        self.base_dir = base_dir

    @property
    def name(self) -> str:
        return self.config.name

    @abstractmethod
    def open(self) -> None:
        """Open the stream; raise RuntimeFailure (one line) if it cannot be read."""

    @abstractmethod
    def read(self) -> Optional[Frame]:
        """The next frame, or None when the stream has ended."""

    @abstractmethod
    def close(self) -> None:
        """Release the stream. Safe to call twice."""

    @property
    def fps(self) -> Optional[float]:
        return None

    @property
    def size(self) -> Optional[Tuple[int, int]]:
        """(width, height) when known."""
        return None

    @property
    def frame_count(self) -> Optional[int]:
        return None

    def stats(self) -> Dict[str, Any]:
        return {}

    metrics: Optional["Metrics"] = None

    def bind_metrics(self, metrics: "Metrics") -> None:
        """Hand the run's :class:`~edgert.runtime.metrics.Metrics` to this source.

        The runtime calls this once, before :meth:`open`, so that live sources
        can publish ``edgert_source_up``/reconnect counts as they happen (not
        only in :meth:`stats`).  Sources that publish nothing ignore it.
        """
        self.metrics = metrics


SOURCES: Registry[Type[Source]] = Registry("source scheme")

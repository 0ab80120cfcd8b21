"""gst:// through PyGObject's appsink on a real GStreamer pipeline.

The venv cannot pip-install PyGObject without a compiler toolchain, so this
test puts Debian's ``python3-gi`` package (built for the same CPython ABI) on
``sys.path`` by itself, through a folder holding only a link to it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgert.errors import MissingDependency, RuntimeFailure
from edgert.sources import gst
from edgert.sources.gst import GstConfig, GstSource, with_appsink
from tests.servers import need, use_system_gi


@pytest.fixture()
def system_gi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_system_gi(tmp_path, monkeypatch)
    need(gst.gi_has_gstreamer(), "gir1.2-gstreamer-1.0 (GstApp typelib)")


def source(pipeline: str, **kw: object) -> GstSource:
    return GstSource(GstConfig(name="g", uri="gst://" + pipeline, backend="gi", **kw), Path("."))


@pytest.mark.parametrize("given, expected", [
    ("videotestsrc", "videotestsrc ! " + gst.APPSINK_TAIL % 2),
    ("videotestsrc ! ", "videotestsrc ! " + gst.APPSINK_TAIL % 2),
    ("a ! appsink name=x", "a ! appsink name=x"),
    ("a ! appsinkx", "a ! appsinkx ! " + gst.APPSINK_TAIL % 2),
])
def test_with_appsink(given: str, expected: str) -> None:
    assert with_appsink(given, 2) == expected


def test_reads_bgr_frames_until_end_of_stream(system_gi: None) -> None:
    # width 90: BGR rows of 270 bytes are padded to 272, the reader must strip that
    src = source("videotestsrc num-buffers=4 pattern=red ! video/x-raw,width=90,height=50,"
                 "framerate=10/1")
    src.open()
    frames = []
    while True:
        f = src.read()
        if f is None:
            break
        frames.append(f)
    src.close()
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert frames[0].image.shape == (50, 90, 3)
    assert np.all(frames[-1].image == np.array([0, 0, 255], np.uint8))  # red in BGR
    assert src.fps == 10.0 and src.size == (90, 50)


def test_bad_pipeline_is_one_line(system_gi: None) -> None:
    with pytest.raises(RuntimeFailure, match=r"^source 'g': bad GStreamer pipeline: .*nosuch"):
        source("nosuchelement ! fakesink", reconnect=False).open()


def test_without_gstreamer_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gst, "opencv_has_gstreamer", lambda: False)
    monkeypatch.setattr(gst, "gi_has_gstreamer", lambda: False)
    msg = r"^source 'g': gst:// needs GStreamer: .*python3-gi"
    with pytest.raises(MissingDependency, match=msg):
        GstSource(GstConfig(name="g", uri="gst://videotestsrc"), Path(".")).open()

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgert.errors import RuntimeFailure
from edgert.sources.base import SOURCES
from edgert.sources.local import FileSource, FileSourceConfig, ImagesSource, ImagesSourceConfig
from tests.media import street_frames, write_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "c.mp4", street_frames(12), fps=25.0)


def _read_all(src: object) -> list:
    frames = []
    while True:
        f = src.read()  # type: ignore[attr-defined]
        if f is None:
            return frames
        frames.append(f)


def test_schemes_registered() -> None:
    assert SOURCES.get("file") is FileSource
    assert SOURCES.get("images") is ImagesSource


def test_video_properties_and_frames(clip: Path) -> None:
    src = FileSource(FileSourceConfig(name="s", uri="file://c.mp4"), clip.parent)
    src.open()
    frames = _read_all(src)
    src.close()
    src.close()  # twice is fine
    assert src.size == (640, 360)
    assert src.fps == pytest.approx(25.0)
    assert src.frame_count == 12
    assert [f.index for f in frames] == list(range(12))
    assert frames[3].pts == pytest.approx(3 / 25.0)
    assert frames[0].image.shape == (360, 640, 3) and frames[0].image.dtype == np.uint8


def test_fps_override_and_loop(clip: Path) -> None:
    src = FileSource(FileSourceConfig(name="s", uri="file://%s" % clip, fps=10, loop=True),
                     Path("/nonexistent"))
    src.open()
    got = [src.read() for _ in range(30)]
    src.close()
    assert all(f is not None for f in got)
    assert [f.index for f in got] == list(range(30))  # type: ignore[union-attr]
    assert got[29].pts == pytest.approx(2.9)  # type: ignore[union-attr]
    assert src.frame_count is None


@pytest.mark.parametrize("content, why", [
    (b"", "empty"),
    (b"this is not a video at all" * 100, "text"),
    (b"\x00\x00\x00\x18ftypmp42" + bytes(4000), "truncated mp4 header"),
])
def test_unreadable_video_is_one_line_naming_the_path(tmp_path: Path, content: bytes,
                                                      why: str) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    src = FileSource(FileSourceConfig(name="cam", uri="file://bad.mp4"), tmp_path)
    with pytest.raises(RuntimeFailure) as err:
        src.open()
    msg = str(err.value)
    assert str(bad) in msg and "\n" not in msg and "cam" in msg, why


def test_missing_video(tmp_path: Path) -> None:
    src = FileSource(FileSourceConfig(name="cam", uri="file://nope.mp4"), tmp_path)
    with pytest.raises(RuntimeFailure, match="not found: .*nope.mp4"):
        src.open()


def test_images_sorted_with_pts(tmp_path: Path) -> None:
    import cv2

    frames = street_frames(3)
    for name, img in zip(["b.png", "a.jpg", "c.bmp"], frames):
        cv2.imwrite(str(tmp_path / name), img)
    (tmp_path / "notes.txt").write_text("ignored")
    src = ImagesSource(ImagesSourceConfig(name="imgs", uri="images://.", fps=4), tmp_path)
    src.open()
    got = _read_all(src)
    assert len(got) == 3 and src.frame_count == 3
    assert [f.pts for f in got] == [0.0, 0.25, 0.5]
    assert np.array_equal(got[1].image, frames[0])  # b.png is second in name order
    assert src.size == (640, 360)


@pytest.mark.parametrize("setup, match", [
    ("missing", "image folder not found"),
    ("empty", "no images"),
    ("corrupt", "cannot decode image .*x.png"),
])
def test_images_errors(tmp_path: Path, setup: str, match: str) -> None:
    folder = tmp_path / "imgs"
    if setup != "missing":
        folder.mkdir()
    if setup == "corrupt":
        (folder / "x.png").write_bytes(b"garbage")
    src = ImagesSource(ImagesSourceConfig(name="i", uri="images://imgs"), tmp_path)
    with pytest.raises(RuntimeFailure, match=match):
        src.open()
        src.read()

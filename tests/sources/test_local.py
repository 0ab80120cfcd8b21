from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgert.errors import RuntimeFailure
from edgert.sources.base import SOURCES
from edgert.sources.local import FileSource, FileSourceConfig, ImagesSource, ImagesSourceConfig
from tests.media import STREET, street_frames, write_clip


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


# -- loop / realtime / start_s / end_s (io) ------------------------------------
def _file_source(**kw: Any) -> FileSource:
    return FileSource(FileSourceConfig(name="s", uri="file://" + str(STREET), **kw), Path("."))


def _drain(src: FileSource, limit: int = 10000) -> list:
    out = []
    src.open()
    while len(out) < limit:
        f = src.read()
        if f is None:
            break
        out.append(f)
    src.close()
    return out


def test_start_and_end_window_pts_from_file_time() -> None:
    frames = _drain(_file_source(start_s=10.0, end_s=11.0))
    fps = 30000 / 1001
    assert len(frames) == round(11 * fps) - round(10 * fps)
    assert [f.index for f in frames] == list(range(len(frames)))
    assert frames[0].pts == pytest.approx(round(10 * fps) / fps)


def test_window_matches_decoding_from_the_start() -> None:
    whole = _drain(_file_source(end_s=1.0))
    part = _drain(_file_source(start_s=0.5, end_s=1.0))
    offset = len(whole) - len(part)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(whole[offset:], part))


def test_loop_restarts_at_start_s() -> None:
    frames = _drain(_file_source(start_s=2.0, end_s=2.2, loop=True), limit=20)
    n = len(_drain(_file_source(start_s=2.0, end_s=2.2)))
    assert len(frames) == 20 and n < 20
    assert np.array_equal(frames[0].image, frames[n].image)
    assert [f.index for f in frames] == list(range(20))
    assert all(b.pts > a.pts for a, b in zip(frames, frames[1:]))


def test_realtime_paces_at_the_file_rate() -> None:
    src = _file_source(end_s=0.5, realtime=True)
    assert src.live
    t0 = time.monotonic()
    frames = _drain(src)
    elapsed = time.monotonic() - t0
    # pacing is a lower bound only (never an upper one: CI machines are slow)
    assert elapsed >= frames[-1].pts - frames[0].pts


@pytest.mark.parametrize("kw, fragment", [
    ({"start_s": 5, "end_s": 4}, "must be after start_s"),
    ({"start_s": -1}, "greater than or equal to 0"),
])
def test_window_config_errors(kw: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        FileSourceConfig(name="s", uri="file://x.mp4", **kw)


def test_start_past_the_end_is_one_line() -> None:
    with pytest.raises(RuntimeFailure, match=r"^source 's': start_s 999 is past the end of "):
        _file_source(start_s=999).open()

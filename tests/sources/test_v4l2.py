"""v4l2:// options and errors (no USB camera is attached to the test machines)."""
from __future__ import annotations

from pathlib import Path

import pytest

from edgert.errors import RuntimeFailure
from edgert.sources.v4l2 import V4l2Config, V4l2Source

pytest.importorskip("cv2")


def test_missing_device_is_one_line_error(tmp_path: Path) -> None:
    dev = "/dev/video%d" % next(i for i in range(64, 128) if not Path("/dev/video%d" % i).exists())
    src = V4l2Source(V4l2Config(name="desk", uri="v4l2://" + dev, width=640), Path("."))
    with pytest.raises(RuntimeFailure) as err:
        src.open()
    assert str(err.value) == "source 'desk': no such camera device %s" % dev


@pytest.mark.parametrize("kw, fragment", [
    ({"uri": "v4l2://video0"}, "names a device node"),
    ({"uri": "v4l2:///dev/video0", "fourcc": "MJPEG"}, "fourcc is 4 characters"),
    ({"uri": "v4l2:///dev/video0", "width": 0}, "greater than or equal to 1"),
])
def test_config_errors(kw: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        V4l2Config(name="c", **kw)


def test_options_accepted() -> None:
    cfg = V4l2Config(name="c", uri="v4l2:///dev/video0", width=1280, height=720, fps=30,
                     fourcc="MJPG")
    assert (cfg.width, cfg.height, cfg.fps, cfg.fourcc) == (1280, 720, 30, "MJPG")

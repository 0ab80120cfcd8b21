"""csi:// pipeline construction and its error off a Jetson (no CSI camera exists here)."""
from __future__ import annotations

from pathlib import Path

import pytest

from edgert.errors import RuntimeFailure
from edgert.platform.detect import is_jetson
from edgert.sources.csi import CSI_NEEDS, CsiConfig, CsiSource, csi_pipeline


@pytest.mark.parametrize("kw, expected", [
    ({"uri": "csi://0"},
     "nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1920,height=1080,"
     "framerate=30/1 ! nvvidconv flip-method=0 ! video/x-raw,format=BGRx ! videoconvert ! "
     "video/x-raw,format=BGR ! appsink drop=1 max-buffers=2"),
    ({"uri": "csi://1", "sensor_mode": 4, "width": 1280, "height": 720, "fps": 60, "flip": 2,
      "max_buffers": 1},
     "nvarguscamerasrc sensor-id=1 sensor-mode=4 ! video/x-raw(memory:NVMM),width=1280,"
     "height=720,framerate=60/1 ! nvvidconv flip-method=2 ! video/x-raw,format=BGRx ! "
     "videoconvert ! video/x-raw,format=BGR ! appsink drop=1 max-buffers=1"),
])
def test_pipeline(kw: dict, expected: str) -> None:
    assert csi_pipeline(CsiConfig(name="c", **kw)) == expected


@pytest.mark.parametrize("kw, fragment", [
    ({"uri": "csi://front"}, "csi://<sensor id>"),
    ({"uri": "csi://0", "flip": 8}, "less than or equal to 7"),
])
def test_config_errors(kw: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        CsiConfig(name="c", **kw)


@pytest.mark.skipif(is_jetson(Path("/")), reason="this machine is a Jetson")
def test_off_a_jetson_one_line_error() -> None:
    with pytest.raises(RuntimeFailure) as err:
        CsiSource(CsiConfig(name="front", uri="csi://0"), Path(".")).open()
    assert str(err.value) == "source 'front': " + CSI_NEEDS

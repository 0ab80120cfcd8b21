"""Camera and output keys in YAML: valid files load, mistakes are one located line."""
from __future__ import annotations

from pathlib import Path

import pytest

from edgert.config.loader import loads_pipeline
from edgert.errors import ConfigError
from edgert.sinks.mqtt import MqttConfig
from edgert.sources.rtsp import RtspConfig

GOOD = """\
version: 1
sources:
  - {name: gate, uri: "rtsp://cam/s", reconnect_initial_s: 1, reconnect_max_s: 20}
  - {name: desk, uri: "v4l2:///dev/video0", width: 1280, height: 720, fourcc: MJPG}
  - {name: front, uri: "csi://0", flip: 2}
  - {name: expert, uri: "gst://videotestsrc ! appsink"}
sinks:
  - {kind: mqtt, input: sources, host: broker, qos: 1, only_detections: true}
  - {kind: metrics, input: sources, port: 9108}
  - {kind: rtsp, input: sources, port: 8554}
"""


def test_every_camera_and_output_loads(tmp_path: Path) -> None:
    cfg = loads_pipeline(GOOD, tmp_path / "p.yaml", check_files=False)
    assert isinstance(cfg.sources[0], RtspConfig) and cfg.sources[0].reconnect_max_s == 20
    assert isinstance(cfg.sinks[0], MqttConfig) and cfg.sinks[0].qos == 1


@pytest.mark.parametrize("old, new, where", [
    ("reconnect_max_s: 20", "reconnect_max_s: 0.1", "p.yaml:3:"),
    ("qos: 1", "qos: 2", "p.yaml:8:"),
    ("flip: 2", "flip: 9", "p.yaml:5:"),
    ("fourcc: MJPG", "fourcc: MJPEG", "p.yaml:4:"),
    ("reconnect_initial_s: 1", "reconect_initial_s: 1", "p.yaml:3:"),
])
def test_mistakes_are_one_located_line(tmp_path: Path, old: str, new: str, where: str) -> None:
    with pytest.raises(ConfigError) as err:
        loads_pipeline(GOOD.replace(old, new), tmp_path / "p.yaml", check_files=False)
    msg = str(err.value)
    assert where in msg and "\n" not in msg

"""Build presets: applied as defaults, pipeline keys win, errors located in the preset file."""
from __future__ import annotations

from pathlib import Path

import pytest

from edgert.config.loader import load_pipeline
from edgert.config.presets import Preset, load_preset
from edgert.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
PRESETS = sorted((REPO / "configs").glob("*.yaml"))

PIPELINE = """
version: 1
sources: [{name: cam, uri: "file://%(video)s"}]
models:
  det:
    onnx: %(onnx)s
    backend: tensorrt
%(extra)s
    build: {preset: %(preset)s}
stages:
  - {name: pre, kind: letterbox, input: sources, size: [416, 416]}
  - {name: infer, kind: infer, model: det, input: pre}
"""


def _pipeline(tmp_path: Path, preset: Path, extra: str = "") -> Path:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"x")
    p = tmp_path / "p.yaml"
    p.write_text(PIPELINE % {"video": video, "onnx": onnx, "preset": preset, "extra": extra})
    return p


def test_every_shipped_preset_is_valid() -> None:
    assert len(PRESETS) >= 5
    for path in PRESETS:
        preset = load_preset(path)
        assert isinstance(preset, Preset) and preset.description, path.name


def test_demo_pipeline_validates_and_gets_the_preset() -> None:
    cfg = load_pipeline(REPO / "pipelines" / "xavier-dla.yaml")
    det = cfg.models["detector"]
    assert det.devices() == ["dla:0", "dla:1", "gpu"]
    assert det.precision == "int8" and det.gpu_fallback is True  # from the preset
    assert det.build.workspace_mb == 1024 and det.build.dla_sram_kb == 1024
    assert det._pipeline is cfg and det._preset["platform"] == "xavier"


def test_pipeline_keys_win_over_the_preset(tmp_path: Path) -> None:
    preset = REPO / "configs" / "orin-gpu-fp16-sparse.yaml"
    cfg = load_pipeline(_pipeline(tmp_path, preset, "    precision: fp32\n    sparsity: false"))
    det = cfg.models["det"]
    assert det.precision == "fp32" and det.sparsity is False  # the pipeline's own
    assert det.build.cuda_graphs is True and det.build.workspace_mb == 2048  # the preset's


def test_set_override_wins_too(tmp_path: Path) -> None:
    preset = REPO / "configs" / "orin-dla-fp16.yaml"
    cfg = load_pipeline(_pipeline(tmp_path, preset), overrides=["models.det.device=gpu"])
    assert cfg.models["det"].device == "gpu" and cfg.models["det"].precision == "fp16"


def test_preset_int8_triggers_the_calibration_check(tmp_path: Path) -> None:
    preset = REPO / "configs" / "xavier-dla-int8.yaml"
    with pytest.raises(ConfigError, match="precision int8 needs calibration data"):
        load_pipeline(_pipeline(tmp_path, preset))


@pytest.mark.parametrize("body,where,msg", [
    ("preset: 1\nmodel: {precision: int4}\n", ":2:", "'int4' is not a precision"),
    ("preset: 1\nbuild: {dla_sram_kb: 1000}\n", ":2:", "1000 KiB is not a power of 2"),
    ("preset: 1\nbuild: {preset: other.yaml}\n", ":2:", "cannot reference another preset"),
    ("preset: 1\nmodel: {onnx: x.onnx}\n", ":2:", "unknown key 'onnx'"),
    ("preset: 2\n", ":1:", "unsupported preset version 2"),
    ("preset: 1\nplatform: thor\n", ":2:", "'thor' is not a platform"),
])
def test_preset_errors_point_into_the_preset(tmp_path: Path, body: str, where: str,
                                             msg: str) -> None:
    preset = tmp_path / "bad-preset.yaml"
    preset.write_text(body)
    with pytest.raises(ConfigError) as err:
        load_pipeline(_pipeline(tmp_path, preset))
    assert "bad-preset.yaml" + where in str(err.value) and msg in str(err.value)


def test_missing_preset_is_located_in_the_pipeline(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"p.yaml:\d+:\d+: models.det.build.preset: build "
                                          r"preset not found"):
        load_pipeline(_pipeline(tmp_path, tmp_path / "nope.yaml"))


def test_relative_paths_in_a_preset_resolve_against_it(tmp_path: Path) -> None:
    preset = tmp_path / "presets" / "p.yaml"
    preset.parent.mkdir()
    preset.write_text("preset: 1\nbuild: {timing_cache: ../tc/timing.cache}\n")
    assert load_preset(preset).build.timing_cache == (tmp_path / "tc" / "timing.cache").resolve()


TREES = REPO / "tests" / "platform" / "fixtures" / "trees"


@pytest.mark.parametrize("tree,devices,msg", [
    ("orin_nano_jp6", "[gpu, dla:0]", r"instances\[1\]: 'dla:0' — this Jetson has 0 DLA cores "
                                      r"\(use device: gpu\)"),
    ("agx_xavier_jp5", "[dla:0, dla:1]", None),
])
def test_dla_cores_checked_on_a_jetson(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       tree: str, devices: str, msg: str) -> None:
    monkeypatch.setenv("EDGERT_SYSFS_ROOT", str(TREES / tree))
    preset = REPO / "configs" / "orin-dla-fp16.yaml"
    path = _pipeline(tmp_path, preset, "    instances: %s" % devices)
    if msg is None:
        assert load_pipeline(path).models["det"].devices() == ["dla:0", "dla:1"]
    else:
        with pytest.raises(ConfigError, match=msg):
            load_pipeline(path)

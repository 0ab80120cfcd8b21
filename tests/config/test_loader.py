from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

from edgert.config.loader import load_pipeline, loads_pipeline
from edgert.errors import ConfigError, UsageError

from tests.config.conftest import PIPELINE


def _edit(old: str, new: str) -> str:
    assert old in PIPELINE, old
    return PIPELINE.replace(old, new, 1)


# (case id, pipeline text, expected "line:col" or None, key path, message fragment)
BROKEN: List[Tuple[str, str, Optional[str], str, str]] = [
    ("yaml-syntax", _edit("size: [416, 416]", "size: [416, 416"), "15:9", "", "YAML syntax error"),
    ("unknown-key", _edit("size: [416, 416]", "sise: [416, 416]"), "14:5", "stages[0].sise",
     "did you mean 'size'"),
    ("unknown-section", _edit("name: t", "nmae: t"), "2:1", "nmae", "did you mean 'name'"),
    ("wrong-type", _edit("batch: 2", "batch: lots"), "9:12", "models.detector.batch",
     "valid integer"),
    ("negative-batch", _edit("batch: 2", "batch: -4"), "9:12", "models.detector.batch",
     "greater than or equal to 1"),
    ("input-names-nothing", _edit("input: pre", "input: prex"), "18:12", "stages[1].input",
     "names no stage (did you mean 'pre'?)"),
    ("cycle", _edit("input: sources", "input: infer"), "13:12", "stages[0].input",
     "cycle: pre -> infer -> pre"),
    ("missing-model-file", _edit("det.onnx", "nope.onnx"), "8:11", "models.detector.onnx",
     "model file not found"),
    ("missing-video", _edit("street.mp4", "gone.mp4"), "5:10", "sources[0].uri",
     "video file not found"),
    ("dla-7", _edit("batch: 2", "device: dla:7"), "9:13", "models.detector.device",
     "at most 2 DLA cores"),
    ("bad-device", _edit("batch: 2", "device: tpu"), "9:13", "models.detector.device",
     "not a device"),
    ("unknown-model", _edit("model: detector", "model: detectr"), "17:12", "stages[1].model",
     "did you mean 'detector'"),
    ("unknown-kind", _edit("kind: t-sink", "kind: t-snik"), "20:11", "sinks[0].kind",
     "did you mean 't-sink'"),
    ("unknown-scheme", _edit("file://street.mp4", "ftp://x"), "5:10", "sources[0].uri",
     "unsupported URI scheme 'ftp://'"),
    ("duplicate-stage", _edit("name: infer", "name: pre"), "15:11", "stages[1].name",
     "duplicate name 'pre'"),
    ("dla-on-ort", _edit("batch: 2", "device: dla:0\n    backend: onnxruntime"), "9:13",
     "models.detector.device", "needs backend tensorrt"),
    ("int8-no-calib", _edit("batch: 2", "precision: int8"), "9:16",
     "models.detector.precision", "needs calibration data"),
    ("missing-required", _edit("    model: detector\n", ""), "15:5", "stages[1]",
     "missing required key 'model'"),
    ("env-unset", _edit("batch: 2", "batch: ${EDGERT_TEST_UNSET}"), "9:12",
     "models.detector.batch", "EDGERT_TEST_UNSET is not set"),
    ("duplicate-key", _edit("batch: 2", "batch: 2\n    batch: 3"), "10:5",
     "models.detector.batch", "duplicate key"),
    ("sources-not-list", _edit("sources:\n  - name: street\n    uri: file://street.mp4",
                               "sources: street"), "3:10", "sources", "is a list"),
]


@pytest.mark.parametrize("case,text,where,key,fragment", BROKEN, ids=[c[0] for c in BROKEN])
def test_broken_pipelines_give_one_located_line(
    workdir: Path, case: str, text: str, where: Optional[str], key: str, fragment: str
) -> None:
    p = workdir / "p.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_pipeline(p, env={})
    err = info.value
    msg = str(err)
    assert "\n" not in msg
    assert fragment in msg
    assert err.key_path == key
    if where is not None:
        assert "%s:%s" % (err.line, err.col) == where, msg
        assert msg.startswith("%s:%s: " % (p, where))
    assert err.exit_code == 2


def test_valid_pipeline_is_typed_and_paths_resolve(workdir: Path) -> None:
    cfg = load_pipeline(workdir / "p.yaml")
    assert cfg.name == "t"
    assert cfg.models["detector"].batch == 2
    assert cfg.models["detector"].onnx == (workdir / "det.onnx").resolve()
    assert cfg.base_dir == workdir.resolve()
    stage = cfg.stage("pre")
    assert getattr(stage, "size") == [416, 416]
    assert type(stage).__name__ == "_PreConfig"


@pytest.mark.parametrize("env,expected", [({}, 2), ({"B": "8"}, 8)])
def test_env_expansion_is_typed(workdir: Path, env: dict, expected: int) -> None:
    text = _edit("batch: 2", "batch: ${B:-2}")
    cfg = loads_pipeline(text, workdir / "p.yaml", env=env)
    assert cfg.models["detector"].batch == expected


def test_quoted_env_stays_a_string(workdir: Path) -> None:
    text = _edit("name: t", 'name: "${N:-007}"')
    assert loads_pipeline(text, workdir / "p.yaml", env={}).name == "007"


@pytest.mark.parametrize("override,check", [
    ("models.detector.batch=4", lambda c: c.models["detector"].batch == 4),
    ("stages.pre.size=[320,320]", lambda c: c.stage("pre").size == [320, 320]),
    ("stages.0.size=[256,256]", lambda c: c.stage("pre").size == [256, 256]),
    ("models.detector.gpu_fallback=false", lambda c: c.models["detector"].gpu_fallback is False),
    ("runtime.queue_depth=8", lambda c: c.runtime.queue_depth == 8),
    ("sources.street.loop=true", lambda c: c.sources[0].loop is True),
])
def test_set_overrides_coerce_types(workdir: Path, override: str, check) -> None:
    cfg = load_pipeline(workdir / "p.yaml", overrides=[override])
    assert check(cfg)


@pytest.mark.parametrize("override,fragment,exc", [
    ("models.detector.batch=-1", "(from --set models.detector.batch=-1)", ConfigError),
    ("stages.px.size=1", "no item named 'px'", UsageError),
    ("models.detector.batch", "expected KEY.PATH=VALUE", UsageError),
    ("stages.9.size=1", "no index 9", UsageError),
])
def test_bad_overrides(workdir: Path, override: str, fragment: str, exc: type) -> None:
    with pytest.raises(exc) as info:
        load_pipeline(workdir / "p.yaml", overrides=[override])
    assert fragment in str(info.value)


def test_cli_validate_exit_codes(workdir: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "edgert", "validate", str(workdir / "p.yaml")],
                        capture_output=True, text=True)
    # the t-* kinds only exist inside this test process, so the CLI reports them as unknown:
    # one line, exit 2, no traceback
    assert ok.returncode == 2
    assert len(ok.stderr.strip().splitlines()) == 1
    assert "Traceback" not in ok.stderr
    missing = subprocess.run([sys.executable, "-m", "edgert", "validate", "nope.yaml"],
                             capture_output=True, text=True, cwd=str(workdir))
    assert missing.returncode == 2
    assert missing.stderr.strip() == "nope.yaml: pipeline file not found"

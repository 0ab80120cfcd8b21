"""End to end: report keys, held-out frames, the gate's exit code, usage errors."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import pytest

from edgert.cli.main import main
from edgert.quant.feeds import Preparer
from edgert.quant.frames import load_frames
from edgert.quant.quantize import QuantizeOptions, run_quantize
from tests.quant.conftest import resize_stage

REQUIRED = {"agreement", "held_out_frames", "calibration_frames", "method",
            "layers_kept_in_higher_precision"}


def test_report_keys_and_values(quantized: Dict[str, Any]) -> None:
    report = json.loads(quantized["opts"].report.read_text())
    assert REQUIRED <= set(report)
    assert 0.0 <= report["agreement"] <= 1.0
    assert report["held_out_frames"] == 6 and report["calibration_frames"] == 12
    assert report["method"] == "entropy"
    assert report["gate"]["task"] == "classify"
    assert set(report["gate"]["outputs"]) == {"y"}
    assert report["passed"] is True and report["min_agreement"] == 0.5
    assert [s["node"] for s in report["sensitivity"]][:1] == \
        report["layers_kept_in_higher_precision"]
    assert len(report["sensitivity"]) == 3  # conv1, conv2, fc
    assert report["trt_cache"]["header"] == "TRT-8502-EntropyCalibration2"


def test_held_out_frames_are_not_calibration_frames(quantized: Dict[str, Any]) -> None:
    fr = quantized["report"]["frames"]
    assert not set(fr["calibration_ids"]) & set(fr["held_out_ids"])


def test_gate_fails_below_the_bar(classifier_path: Path, photos: Path, tmp_path: Path) -> None:
    opts = QuantizeOptions(model=classifier_path, out=tmp_path / "q.onnx", method="minmax",
                           min_agreement=1.01 - 1e-9)
    report = run_quantize(opts, load_frames(photos, 6, 4), Preparer([resize_stage()], "x"))
    assert report["passed"] is False
    assert (tmp_path / "q.onnx").is_file()  # outputs are still written for inspection


def _cli(capsys: pytest.CaptureFixture, *args: str) -> tuple:
    """In-process CLI run (subprocess start-up would dominate these fast checks)."""
    code = main(["quantize", *args])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("extra,message", [
    (["--min-agreement", "1.5"], "--min-agreement"),
    (["--count", "0"], "--count"),
    (["--model", "det"], "--pipeline"),
    (["--trt-version", "banana"], "--trt-version"),
    (["--min-agreement", "0.9", "--held-out", "0"], "held-out"),
])
def test_usage_errors_are_one_line(classifier_path: Path, photos: Path, tmp_path: Path,
                                   extra: list, message: str,
                                   capsys: pytest.CaptureFixture) -> None:
    code, err = _cli(capsys, str(classifier_path), "--calib", str(photos), "--out",
                     str(tmp_path / "q.onnx"), *extra)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and message in err

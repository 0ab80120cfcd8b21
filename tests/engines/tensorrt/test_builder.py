"""Builder logic through the TensorRT stand-in: flags, DLA, overrides, profiles, refusals."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import pytest

from edgert.config.schema import BuildConfig
from edgert.engines.tensorrt.builder import BuildRequest, build
from edgert.engines.tensorrt.compat import detect
from edgert.errors import RuntimeFailure, UsageError
from tests.engines import fake_tensorrt
from tests.engines.models import tiny_model


def run(trt: Any, onnx: Path, calib: Any = None, **kw: Any) -> Dict[str, Any]:
    req = BuildRequest(name="tiny", onnx=onnx, device=kw.pop("device", "gpu"),
                       precision=kw.pop("precision", "fp16"), batch=kw.pop("batch", 2), **kw)
    built = build(req, detect(trt), calib)
    assert built.plan.startswith(fake_tensorrt.PLAN_MAGIC)
    plan: Dict[str, Any] = json.loads(built.plan[len(fake_tensorrt.PLAN_MAGIC):])
    plan["_built"] = built
    return plan


# precision -> flags on 8.5/10.x (TRT 11 sets none: strongly typed)
FLAGS = [
    ("fp32", "gpu", []),
    ("fp16", "gpu", ["FP16"]),
    ("best", "gpu", ["FP16"]),  # no calibration data: INT8 not enabled
    ("fp16", "dla:0", ["FP16", "GPU_FALLBACK"]),
    ("fp16", "dla:1", ["FP16", "GPU_FALLBACK"]),
]


@pytest.mark.parametrize("precision,device,flags", FLAGS)
def test_flags_per_precision_and_device(trt: Any, onnx_path: Path, precision: str, device: str,
                                        flags: list) -> None:
    if trt.__version__.startswith("11") and device.startswith("dla"):
        with pytest.raises(UsageError, match="only strongly typed Q/DQ models on DLA"):
            run(trt, onnx_path, precision=precision, device=device)
        return
    plan = run(trt, onnx_path, precision=precision, device=device)
    expect = [f for f in flags if f == "GPU_FALLBACK" or not trt.__version__.startswith("11")]
    assert plan["flags"] == sorted(expect)
    assert plan["verbosity"] == "DETAILED"


@pytest.fixture(params=["8.5.2", "10.3.0"])
def trt_dla(request: Any, trt_factory: Any) -> Any:
    """Versions whose DLA takes non-Q/DQ (implicitly quantized) models."""
    return trt_factory(request.param)


def test_network_flags_per_version(trt: Any, onnx_path: Path) -> None:
    plan = run(trt, onnx_path, precision="fp32")
    major = int(trt.__version__.split(".")[0])
    ncf = trt.NetworkDefinitionCreationFlag
    if major < 10:
        assert plan["network_flags"] == 1 << int(ncf.EXPLICIT_BATCH)
    elif major == 10:
        assert plan["network_flags"] == 0  # EXPLICIT_BATCH is ignored; weakly typed
    else:
        assert plan["network_flags"] == 1 << int(ncf.STRONGLY_TYPED)


@pytest.mark.parametrize("core", [0, 1])
def test_dla_core_default_device_and_fallback(trt_dla: Any, onnx_path: Path, core: int) -> None:
    plan = run(trt_dla, onnx_path, device="dla:%d" % core)
    assert plan["default_device"] == "DLA" and plan["dla_core"] == core
    assert "GPU_FALLBACK" in plan["flags"]
    assert plan["_built"].fallback_layers == ["head/softmax"]  # Softmax: not on DLA here


def test_dla_without_fallback_refuses_unsupported_layers(trt_dla: Any, onnx_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot run on dla:0.*head/softmax.*gpu_fallback"):
        run(trt_dla, onnx_path, device="dla:0", gpu_fallback=False)


def test_dla_without_fallback_builds_when_every_layer_fits(trt_dla: Any, tmp_path: Path) -> None:
    onnx = tiny_model(tmp_path / "nosoftmax.onnx", softmax=False)
    plan = run(trt_dla, onnx, device="dla:0", gpu_fallback=False)
    assert "GPU_FALLBACK" not in plan["flags"]
    assert plan["_built"].fallback_layers == []


def test_per_layer_overrides(trt_dla: Any, tmp_path: Path) -> None:
    onnx = tiny_model(tmp_path / "m.onnx", softmax=False)
    cfg = BuildConfig(layers=[{"match": "relu*", "device": "gpu"},
                              {"match": "conv*", "device": "dla"}])
    plan = run(trt_dla, onnx, device="dla:0", build=cfg)
    assert plan["device_types"] == {"relu1": "GPU", "conv1": "DLA"}
    assert plan["_built"].fallback_layers == ["relu1"]


def test_override_to_dla_of_a_layer_dla_cannot_run(trt_dla: Any, onnx_path: Path) -> None:
    cfg = BuildConfig(layers=[{"match": "head/*", "device": "dla"}])
    with pytest.raises(UsageError, match="'head/softmax' is pinned to dla"):
        run(trt_dla, onnx_path, device="dla:0", build=cfg)


def test_dla_overrides_are_ignored_on_gpu_instances(trt: Any, onnx_path: Path) -> None:
    cfg = BuildConfig(layers=[{"match": "conv*", "device": "dla"}])
    plan = run(trt, onnx_path, device="gpu", build=cfg)
    assert plan["device_types"] == {}


@pytest.mark.parametrize("device,low", [("gpu", 1), ("dla:0", 4)])
def test_profile_for_the_batch(trt_dla: Any, onnx_path: Path, device: str, low: int) -> None:
    plan = run(trt_dla, onnx_path, device=device, batch=4)
    assert plan["profiles"] == [{"images": [[low, 3, 8, 8], [4, 3, 8, 8], [4, 3, 8, 8]]}]


def test_static_batch_needs_no_profile_and_must_match(trt: Any, tmp_path: Path) -> None:
    onnx = tiny_model(tmp_path / "static.onnx", dynamic_batch=False, batch=2)
    assert run(trt, onnx, batch=2)["profiles"] == []
    with pytest.raises(UsageError, match="fixed batch of 2 but batch: 4"):
        run(trt, onnx, batch=4)


def test_workspace_and_dla_pools(trt_dla: Any, onnx_path: Path) -> None:
    cfg = BuildConfig(workspace_mb=256, dla_sram_kb=512, dla_local_dram_mb=256,
                      dla_global_dram_mb=128)
    plan = run(trt_dla, onnx_path, device="dla:0", build=cfg)
    assert plan["pools"] == {"WORKSPACE": 256 << 20, "DLA_MANAGED_SRAM": 512 << 10,
                             "DLA_LOCAL_DRAM": 256 << 20, "DLA_GLOBAL_DRAM": 128 << 20}
    gpu = run(trt_dla, onnx_path, device="gpu", build=cfg)
    assert gpu["pools"] == {"WORKSPACE": 256 << 20}  # DLA pools only for DLA builds


def test_sparsity_flag_and_build_log_note(trt: Any, onnx_path: Path) -> None:
    plan = run(trt, onnx_path, sparsity=True)
    assert "SPARSE_WEIGHTS" in plan["flags"]
    assert any("(Sparsity)" in n for n in plan["_built"].notes)
    with pytest.raises(UsageError, match="sparsity needs precision"):
        run(trt, onnx_path, sparsity=True, precision="fp32")


def test_fp32_on_dla_is_refused(trt_dla: Any, onnx_path: Path) -> None:
    with pytest.raises(UsageError, match="DLA runs FP16 or INT8 only"):
        run(trt_dla, onnx_path, device="dla:0", precision="fp32")


@pytest.mark.parametrize("cores,device,msg", [
    (0, "dla:0", "no DLA cores"),
    (2, "dla:2", "has 2 DLA cores \\(dla:0, dla:1\\)"),
    (1, "dla:1", "has 1 DLA core \\(dla:0\\)"),
])
def test_dla_core_count_refusals(trt_dla: Any, onnx_path: Path, monkeypatch: Any, cores: int,
                                 device: str, msg: str) -> None:
    monkeypatch.setattr(fake_tensorrt.Builder, "num_DLA_cores", cores)
    with pytest.raises(UsageError, match=msg):
        run(trt_dla, onnx_path, device=device)


def test_max_gpu_fallback_fails_before_building(trt_dla: Any, onnx_path: Path) -> None:
    with pytest.raises(RuntimeFailure, match="1 layers fall back from dla:0.*max_gpu_fallback 0"):
        run(trt_dla, onnx_path, device="dla:0", max_gpu_fallback=0)
    assert run(trt_dla, onnx_path, device="dla:0", max_gpu_fallback=1)["dla_core"] == 0


def test_qdq_on_dla_before_11_4_is_refused(trt_dla: Any, tmp_path: Path) -> None:
    onnx = tiny_model(tmp_path / "qdq.onnx", qdq=True)
    with pytest.raises(UsageError, match="only implicit quantization.*qdq-translator"):
        run(trt_dla, onnx, device="dla:0", precision="int8")


def test_qdq_int8_on_gpu_sets_int8_without_a_calibrator(trt_dla: Any, tmp_path: Path) -> None:
    onnx = tiny_model(tmp_path / "qdq.onnx", qdq=True)
    plan = run(trt_dla, onnx, precision="int8", calib=_no_calibration)
    assert plan["flags"] == ["FP16", "INT8"] and plan["calibration"] is None


def _no_calibration(specs: Any) -> Any:
    raise AssertionError("a Q/DQ model must not be calibrated")


def test_int8_without_calibration_is_refused_on_the_implicit_path(trt_dla: Any,
                                                                  onnx_path: Path) -> None:
    with pytest.raises(UsageError, match="needs calibration data or a calibration cache"):
        run(trt_dla, onnx_path, precision="int8", has_calibration=False)


# ---------------------------------------------------------------- TensorRT 11


@pytest.mark.parametrize("version", ["11.0.0", "11.2.1", "11.3.0"])
def test_trt_11_0_to_11_3_refuse_dla(trt_factory: Any, onnx_path: Path, version: str) -> None:
    trt = trt_factory(version)
    with pytest.raises(UsageError, match="TensorRT %s has no DLA support" % version):
        run(trt, onnx_path, device="dla:0", precision="fp16")


def test_trt_11_4_runs_only_qdq_models_on_dla(trt_factory: Any, onnx_path: Path,
                                              tmp_path: Path) -> None:
    trt = trt_factory("11.4.1")
    with pytest.raises(UsageError, match="only strongly typed Q/DQ models on DLA"):
        run(trt, onnx_path, device="dla:0", precision="int8")
    plan = run(trt, tiny_model(tmp_path / "qdq.onnx", qdq=True), device="dla:0", precision="int8")
    assert plan["default_device"] == "DLA"
    assert "INT8" not in plan["flags"] and "FP16" not in plan["flags"]  # strongly typed


def test_trt_11_int8_without_qdq_is_refused(trt_factory: Any, onnx_path: Path) -> None:
    trt = trt_factory("11.4.1")
    with pytest.raises(UsageError, match="no INT8 calibration.*export a Q/DQ ONNX"):
        run(trt, onnx_path, precision="int8", has_calibration=True)


def test_trt_11_strongly_typed_fp16_sets_no_precision_flags(trt_factory: Any,
                                                            onnx_path: Path) -> None:
    trt = trt_factory("11.4.1")
    plan = run(trt, onnx_path, precision="fp16")
    assert plan["flags"] == []


# ---------------------------------------------------------------- timing cache, errors


def test_timing_cache_is_loaded_and_saved(trt: Any, onnx_path: Path, tmp_path: Path) -> None:
    tc = tmp_path / "t" / "timing.cache"
    run(trt, onnx_path, timing_cache=tc)
    assert json.loads(tc.read_bytes()) == {"builds": 1}
    run(trt, onnx_path, timing_cache=tc)
    assert json.loads(tc.read_bytes()) == {"builds": 2}  # the second build reused the first's


def test_corrupt_timing_cache_starts_fresh(trt: Any, onnx_path: Path, tmp_path: Path,
                                           caplog: Any) -> None:
    tc = tmp_path / "timing.cache"
    tc.write_bytes(b"\x00garbage")
    run(trt, onnx_path, timing_cache=tc)
    assert json.loads(tc.read_bytes()) == {"builds": 1}
    assert "unreadable" in caplog.text


def test_unparsable_onnx_is_one_line(trt: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(RuntimeFailure, match="TensorRT cannot parse .*bad.onnx"):
        run(trt, bad)


def test_progress_monitor_on_10_and_later(trt: Any, onnx_path: Path) -> None:
    feats = detect(trt)
    assert feats.progress_monitor == (not trt.__version__.startswith("8"))
    run(trt, onnx_path)  # the monitor's callbacks ran inside the stand-in's build


def test_dla_int8_requires_the_entropy_calibrator(trt_dla: Any, onnx_path: Path) -> None:
    with pytest.raises(UsageError, match="DLA requires the entropy calibrator"):
        run(trt_dla, onnx_path, device="dla:0", precision="int8", has_calibration=True,
            calibration_method="minmax")

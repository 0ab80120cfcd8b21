"""Stage partitioning around the batching model."""
from __future__ import annotations

from edgert.config.loader import loads_pipeline
from edgert.runtime.plan import StageError, plan_stages
from tests.runtime import doubles  # noqa: F401 - registers the test-* kinds
from tests.runtime.doubles import pipeline


def test_linear_pipeline_splits_pre_infer_post() -> None:
    plan = plan_stages(pipeline(["name: a, uri: 'test://a'"]))
    assert [s.name for s in plan.pre] == ["pre"]
    assert plan.infer is not None and plan.infer.name == "infer" and plan.model == "m"
    assert [s.name for s in plan.post] == ["det"]


def test_side_branch_on_sources_runs_in_post() -> None:
    cfg = loads_pipeline("""
sources: [{name: a, uri: 'test://a'}]
models: {m: {onnx: x.onnx, backend: onnxruntime, device: cpu}}
stages:
  - {name: det, kind: test-post, input: infer}
  - {name: side, kind: test-pre, input: sources}
  - {name: infer, kind: test-infer, model: m, input: pre}
  - {name: pre, kind: test-pre, input: sources}
""", "/tmp/p.yaml", check_files=False)
    plan = plan_stages(cfg)
    assert [s.name for s in plan.pre] == ["pre"]
    assert sorted(s.name for s in plan.post) == ["det", "side"]


def test_no_model_means_everything_is_post() -> None:
    cfg = loads_pipeline("""
sources: [{name: a, uri: 'test://a'}]
stages: [{name: pre, kind: test-pre, input: sources}]
""", "/tmp/p.yaml", check_files=False)
    plan = plan_stages(cfg)
    assert plan.infer is None and plan.model is None and [s.name for s in plan.post] == ["pre"]


def test_stage_error_is_one_line_with_the_stage_name() -> None:
    err = StageError("det", ValueError("bad\nshape"))
    assert err.one_line() == "stage 'det' failed: ValueError: bad"  # first line only
    assert err.one_line("sink") == "sink 'det' failed: ValueError: bad"

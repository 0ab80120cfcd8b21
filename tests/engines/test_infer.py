from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgert.batch import Batch
from edgert.config.schema import ModelConfig, PipelineConfig
from edgert.engines.infer import Infer, InferConfig, load_labels
from edgert.engines.onnxruntime import OrtEngine
from edgert.errors import RuntimeFailure
from edgert.stage import StageContext
from tests.media import tiny_model


@pytest.fixture
def setup(tmp_path: Path) -> tuple:
    tiny_model(tmp_path / "m.onnx")
    (tmp_path / "labels.txt").write_text("a\nb\n\n")
    pipe = PipelineConfig.model_construct(sources=[], models={
        "m": ModelConfig(onnx=tmp_path / "m.onnx", labels=tmp_path / "labels.txt", batch=2)})
    engine = OrtEngine("m", tmp_path / "m.onnx", "cpu")
    stage = Infer(InferConfig(name="infer", kind="infer", model="m", input="pre"),
                  StageContext(pipe, lambda name: engine))
    stage.start()
    return stage, engine


def _batch(n: int) -> Batch:
    frames = [np.zeros((8, 8, 3), np.uint8)] * n
    return Batch.of_frames(frames, [0] * n, range(n), [0.0] * n, [0.0] * n)


def test_runs_in_place_on_the_engine_io(setup: tuple) -> None:
    stage, engine = setup
    io = engine.new_io(2)
    batch = _batch(2)
    batch.tensor = io.inputs["x"][:2]
    batch.tensor[:] = 1.0
    batch.extras["engine_io"] = io
    out = stage.process(batch)
    assert np.shares_memory(out.outputs["y"], io.outputs["y"])
    assert float(out.outputs["y"][1, 0, 0, 0]) == 3.0
    assert out.labels == ["a", "b"]
    assert stage.stats()["bytes_copied"] == 0


def test_copies_a_foreign_tensor_and_counts_it(setup: tuple) -> None:
    stage, _ = setup
    batch = _batch(3)  # bigger than the model's batch: the stage grows its own IO
    batch.tensor = np.full((3, 3, 8, 8), 2.0, np.float32)
    out = stage.process(batch)
    assert float(out.outputs["y"][2, 0, 0, 0]) == 5.0
    assert stage.stats()["bytes_copied"] == batch.tensor.nbytes


def test_missing_or_misfit_tensor_is_a_clear_error(setup: tuple) -> None:
    stage, _ = setup
    with pytest.raises(RuntimeFailure, match="produced no tensor"):
        stage.process(_batch(1))
    batch = _batch(1)
    batch.tensor = np.zeros((1, 3, 16, 16), np.float32)
    with pytest.raises(RuntimeFailure, match=r"does not fit model input 'x'"):
        stage.process(batch)


def test_load_labels(tmp_path: Path) -> None:
    p = tmp_path / "l.names"
    p.write_text("person\n traffic light \n\n")
    assert load_labels(p) == ["person", "traffic light"]
    with pytest.raises(RuntimeFailure, match="cannot read labels file"):
        load_labels(tmp_path / "missing.names")


@pytest.mark.parametrize("pre, error", [
    ("{name: pre, kind: resize, size: [8, 8]}", None),
    ("{name: pre, kind: resize, size: [8, 8], layout: nhwc}", "makes NHWC [8, 8, 3]"),
    ("{name: pre, kind: letterbox, size: [16, 8]}", "takes [?, 3, 8, 8] (m.onnx) but stage 'pre' "
                                                    "makes NCHW [3, 8, 16]"),
])
def test_graph_pass_checks_the_model_input_size(tmp_path: Path, pre: str, error: str) -> None:
    from edgert.config.loader import loads_pipeline
    from edgert.errors import ConfigError

    tiny_model(tmp_path / "m.onnx")
    text = ("sources: [{name: a, uri: 'file://a.mp4'}]\n"
            "models: {m: {onnx: m.onnx, device: cpu}}\n"
            "stages:\n  - %s\n  - {name: inf, kind: infer, model: m, input: pre}\n" % pre)
    if error is None:
        cfg = loads_pipeline(text, tmp_path / "p.yaml", check_files=False)
        assert cfg.stages[1].kind == "infer"
        return
    with pytest.raises(ConfigError) as err:
        loads_pipeline(text, tmp_path / "p.yaml", check_files=False)
    assert error in str(err.value) and "p.yaml:5:" in str(err.value)
    assert "stages[1].model" in str(err.value)

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest

from edgert.batch import Batch
from edgert.config.schema import PipelineConfig
from edgert.errors import RuntimeFailure
from edgert.postprocess.classify import Classify, ClassifyConfig, top_k
from edgert.stage import StageContext

CTX = StageContext(PipelineConfig.model_construct(sources=[]))


def _batch(scores: np.ndarray) -> Batch:
    n = scores.shape[0]
    b = Batch.of_frames([np.zeros((4, 4, 3), np.uint8)] * n, [0] * n, range(n), [0.0] * n,
                        [0.0] * n)
    b.outputs = {"logits": scores.astype(np.float32)}
    return b


def _stage(**kw: Any) -> Classify:
    cfg: Dict[str, Any] = {"name": "cls", "kind": "classify", "input": "infer"}
    cfg.update(kw)
    return Classify(ClassifyConfig(**cfg), CTX)


@pytest.mark.parametrize("scores, k, expected", [
    ([[0.1, 0.5, 0.2, 0.9]], 2, [[3, 1]]),
    ([[0.1, 0.5, 0.2, 0.9]], 10, [[3, 1, 2, 0]]),
    ([[1.0, 1.0, 0.0], [0.0, 2.0, 3.0]], 1, [[0], [2]]),
])
def test_top_k(scores: list, k: int, expected: list) -> None:
    assert top_k(np.array(scores), k).tolist() == expected


def test_softmax_scores_and_labels(tmp_path: Path) -> None:
    (tmp_path / "l.txt").write_text("cat\ndog\nbird\n")
    out = _stage(top_k=2, labels=tmp_path / "l.txt").process(_batch(np.array([[0.0, 2.0, 1.0]])))
    assert out.classes is not None
    assert out.classes.class_id.tolist() == [[1, 2]]
    e = np.exp([0.0, 2.0, 1.0])
    assert np.allclose(out.classes.score[0], [e[1] / e.sum(), e[2] / e.sum()], atol=1e-6)
    assert out.label(1) == "dog"


def test_probabilities_kept_and_threshold_marks_weak_classes() -> None:
    out = _stage(top_k=3, softmax=False, score_threshold=0.25).process(
        _batch(np.array([[0.6, 0.3, 0.1]])))
    assert out.classes.class_id.tolist() == [[0, 1, -1]]  # type: ignore[union-attr]
    assert np.allclose(out.classes.score, [[0.6, 0.3, 0.1]])  # type: ignore[union-attr]


def test_named_output_and_errors() -> None:
    b = _batch(np.array([[0.0, 1.0]]))
    b.outputs["other"] = np.array([[5.0, 0.0]], np.float32)
    assert _stage(output="other", top_k=1).process(b).classes.class_id.tolist() == [[0]]  # type: ignore[union-attr]
    with pytest.raises(RuntimeFailure, match="no output 'nope'; outputs: logits, other"):
        _stage(output="nope").process(b)
    b.outputs = {}
    with pytest.raises(RuntimeFailure, match="produced no model outputs"):
        _stage().process(b)

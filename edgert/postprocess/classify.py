"""``classify``: class scores -> top-k classes per frame (``batch.classes``)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np
from pydantic import Field

from edgert.batch import Batch, Classifications
from edgert.engines.infer import load_labels
from edgert.errors import RuntimeFailure
from edgert.postprocess.nanodet import softmax
from edgert.stage import STAGES, Stage, StageConfig, StageContext


class ClassifyConfig(StageConfig):
    """``{name: cls, kind: classify, input: infer, top_k: 5, softmax: true}``."""

    top_k: int = Field(5, ge=1, le=1000)
    """How many classes to keep per frame, best first."""
    softmax: bool = True
    """Apply softmax to the scores (set false when the model outputs probabilities)."""
    score_threshold: float = Field(0.0, ge=0.0, le=1.0)
    """Classes scoring below this are reported with class_id -1."""
    output: Optional[str] = None
    """Which model output holds the scores (default: the first)."""
    labels: Optional[Path] = None
    """Class names file; defaults to the model's ``labels``."""


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best scores per row, best first (argpartition, then sort)."""
    k = min(k, scores.shape[1])
    idx = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part = np.take_along_axis(scores, idx, axis=1)
    return np.take_along_axis(idx, np.argsort(-part, axis=1, kind="stable"), axis=1)


@STAGES.register("classify")
class Classify(Stage):
    Config = ClassifyConfig

    def __init__(self, config: StageConfig, context: StageContext) -> None:
        super().__init__(config, context)
        cfg: ClassifyConfig = self.config  # type: ignore[assignment]
        self.labels: Optional[List[str]] = load_labels(cfg.labels) if cfg.labels else None

    def process(self, batch: Batch) -> Batch:
        cfg: ClassifyConfig = self.config  # type: ignore[assignment]
        if not batch.outputs:
            raise RuntimeFailure("stage '%s': its input '%s' produced no model outputs"
                                 % (self.name, cfg.input))
        name = cfg.output or next(iter(batch.outputs))
        if name not in batch.outputs:
            raise RuntimeFailure("stage '%s': model has no output '%s'; outputs: %s"
                                 % (self.name, name, ", ".join(batch.outputs)))
        raw = batch.outputs[name]
        scores = raw.reshape(raw.shape[0], -1).astype(np.float32)
        if cfg.softmax:
            scores = softmax(scores, axis=1)
        idx = top_k(scores, cfg.top_k)
        best = np.take_along_axis(scores, idx, axis=1)
        ids = np.where(best >= cfg.score_threshold, idx, -1).astype(np.int32)
        batch.classes = Classifications(class_id=ids, score=best.astype(np.float32))
        if self.labels is not None:
            batch.labels = self.labels
        return batch

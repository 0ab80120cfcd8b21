"""Which stages run where in the threaded runtime.

The pipeline's stages are split around the *batching model* (the model of the
first ``model:`` stage in topological order):

* ``pre``: that stage's upstream chain (letterbox...).  Runs in the batcher
  threads, writing straight into the engine input slot chosen for the batch.
* ``infer``: the model stage itself.  One copy per engine instance, each bound
  to its own engine, so ``instances: [dla:0, dla:1, gpu]`` run concurrently.
* ``post``: everything else (decoders, trackers, secondary models).  Runs off
  the inference path in its own thread.

Stages are routed by name: each stage processes the batch its ``input``
produced, so branches (two stages reading one input) work as in the
sequential executor.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from edgert.batch import Batch
from edgert.config.graph import topo_order
from edgert.config.schema import PipelineConfig
from edgert.stage import Stage, StageConfig


@dataclass
class StagePlan:
    pre: List[StageConfig] = field(default_factory=list)
    infer: Optional[StageConfig] = None
    post: List[StageConfig] = field(default_factory=list)

    @property
    def model(self) -> Optional[str]:
        """The batching model's name (None when the pipeline has no model stage)."""
        return getattr(self.infer, "model", None) if self.infer is not None else None


def model_of(stage: StageConfig, pipeline: PipelineConfig) -> Optional[str]:
    model = getattr(stage, "model", None)
    return model if isinstance(model, str) and model in pipeline.models else None


def plan_stages(pipeline: PipelineConfig) -> StagePlan:
    """Split the pipeline's stages into pre / infer / post (see module doc)."""
    order = [pipeline.stage(n) for n in topo_order(pipeline)]
    infer = next((s for s in order if model_of(s, pipeline)), None)
    if infer is None:
        return StagePlan(pre=[], infer=None, post=order)
    by_name = {s.name: s for s in order}
    chain = set()
    up = infer.input
    while up in by_name:
        chain.add(up)
        up = by_name[up].input
    pre = [s for s in order if s.name in chain]
    post = [s for s in order if s.name not in chain and s.name != infer.name]
    return StagePlan(pre=pre, infer=infer, post=post)


def batch_size(pipeline: PipelineConfig, plan: StagePlan) -> int:
    return pipeline.models[plan.model].batch if plan.model else 1


class StageError(Exception):
    """A stage or sink raised; carries its name so the failure is reported once, by name."""

    def __init__(self, stage: str, error: BaseException) -> None:
        super().__init__(stage, error)
        self.stage = stage
        self.error = error

    def one_line(self, kind: str = "stage") -> str:
        """The same wording as the sequential executor (``stage 'det' failed: ...``)."""
        from edgert.runtime.sequential import stage_failure

        return str(stage_failure(kind, self.stage, self.error))


Observe = Callable[[str, float], None]


def run_chain(stages: List[Stage], results: Dict[str, Batch], observe: Observe) -> None:
    """Run ``stages`` in order, each on its input's batch; results by stage name."""
    for stage in stages:
        t0 = time.perf_counter()
        try:
            results[stage.name] = stage.process(results[stage.config.input])
        except Exception as exc:  # noqa: BLE001 - any stage failure stops the run, by name
            raise StageError(stage.name, exc) from exc
        observe(stage.name, time.perf_counter() - t0)

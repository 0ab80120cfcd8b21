"""Instantiate a pipeline's components for the threaded executor.

Unlike the sequential executor, the threaded one needs *several* copies of
some stages: one preprocess chain per batcher thread (stages may keep scratch
buffers, so copies are never shared between threads), and one infer stage per
engine instance, each seeing only its own engine through its
:class:`StageContext`.  Engines are created here, one per listed device.
"""
from __future__ import annotations

import logging
from contextlib import ExitStack
from typing import Dict, List, Optional, Sequence

from edgert.config.schema import PipelineConfig
from edgert.engines.base import Engine
from edgert.runtime.graph import EngineFactory, start_component
from edgert.runtime.hub import BLOCK, DROP_OLDEST
from edgert.runtime.plan import StagePlan, model_of, plan_stages
from edgert.runtime.pool import SlotPool
from edgert.runtime.threaded import Components
from edgert.sources.base import SOURCES, Source, split_uri
from edgert.stage import SINKS, STAGES, Sink, Stage, StageConfig, StageContext

log = logging.getLogger("edgert.runtime.build")



def policy_for(source: Source, configured: str) -> str:
    """``auto``: live sources drop the oldest frame, files and folders block."""
    if configured != "auto":
        return configured
    return DROP_OLDEST if source.live else BLOCK


def make_sources(pipeline: PipelineConfig) -> List[Source]:
    return [SOURCES.get(split_uri(s.uri)[0])(s, pipeline.base_dir) for s in pipeline.sources]


def make_sinks(pipeline: PipelineConfig, ctx: StageContext) -> List[Sink]:
    return [SINKS.get(k.kind)(k, ctx) for k in pipeline.sinks]


class Builder:
    """Creates engines and stage copies; ``stack`` closes/stops all of them."""

    def __init__(self, pipeline: PipelineConfig, engine_factory: EngineFactory,
                 stack: ExitStack) -> None:
        self.pipeline = pipeline
        self.engine_factory = engine_factory
        self.stack = stack
        self.plan: StagePlan = plan_stages(pipeline)
        self._shared: Dict[str, Engine] = {}

    def engine(self, model: str, device: str) -> Engine:
        cfg = self.pipeline.models[model]
        eng = self.engine_factory(model, cfg, device, self.pipeline.base_dir)
        self.stack.callback(eng.close)
        return eng

    def shared_engine(self, model: str) -> Engine:
        """Engines of models other than the batching one: one each, used by ``post``."""
        if model not in self._shared:
            self._shared[model] = self.engine(model, self.pipeline.models[model].devices()[0])
        return self._shared[model]

    def context(self, own: Optional[Engine] = None) -> StageContext:
        batching = self.plan.model

        def engine_for(model: str) -> Engine:
            if own is not None and model == batching:
                return own
            return self.shared_engine(model)

        return StageContext(self.pipeline, engine_for)

    def stages(self, configs: Sequence[StageConfig], ctx: StageContext) -> List[Stage]:
        out = []
        for cfg in configs:
            stage = STAGES.get(cfg.kind)(cfg, ctx)
            start_component(stage, "stage")
            self.stack.callback(_stop_quietly, stage)
            out.append(stage)
        return out

    def components(self, sources: List[Source], sinks: Optional[List[Sink]],
                   slots_per_instance: int = 2, prep_workers: Optional[int] = None
                   ) -> Components:
        plan = self.plan
        devices: List[str] = []
        engines: List[Optional[Engine]] = []
        infer: List[List[Stage]] = []
        if plan.model is not None and plan.infer is not None:
            devices = self.pipeline.models[plan.model].devices()
            for dev in devices:
                eng = self.engine(plan.model, dev)
                engines.append(eng)
                infer.append(self.stages([plan.infer], self.context(eng)))
        else:
            devices, engines, infer = ["none"], [None], [[]]
        batch = self.pipeline.models[plan.model].batch if plan.model else 1
        capacity = min(batch, engines[0].max_batch) if engines[0] is not None else batch
        pool = SlotPool(engines, capacity, slots_per_instance)
        n_prep = prep_workers or min(2, len(engines))
        pre = [self.stages(plan.pre, self.context()) for _ in range(n_prep)]
        post = self.stages(plan.post, self.context())
        if sinks is None:
            sinks = make_sinks(self.pipeline, self.context())
        for sink in sinks:
            start_component(sink, "sink")
            self.stack.callback(_stop_quietly, sink)
        policies = [policy_for(s, self.pipeline.runtime.drop_policy) for s in sources]
        _log_plan(plan, devices, capacity, n_prep, self.pipeline, len(sources))
        return Components(sources, policies, pre, infer, post, sinks, pool, devices)


def _stop_quietly(obj: object) -> None:
    """Stop a stage/sink; a failing stop is logged, never masks the run's result."""
    try:
        obj.stop()  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001
        log.error("%s: stop failed: %s", getattr(obj, "name", obj), exc)


def _log_plan(plan: StagePlan, devices: List[str], batch: int, prep: int,
              pipeline: PipelineConfig, n_sources: int) -> None:
    others = sorted({m for s in plan.post if (m := model_of(s, pipeline))})
    log.info("threaded runtime: %d source(s), batch %d, %d batcher(s), instances %s%s",
             n_sources, batch, prep, ",".join(devices),
             ("; post models " + ",".join(others)) if others else "")

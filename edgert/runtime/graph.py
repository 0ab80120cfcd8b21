"""Instantiate a pipeline's components: sources, stages in topological order, sinks, engines.

Executors (sequential here, threaded in its own module) share this so every
way of running a pipeline builds it the same way.  Engines are created once
per model through the engine factory and handed to stages through
:class:`~edgert.stage.StageContext`, so stages never construct engines.
Nothing is opened or started here; :meth:`Graph.open` does that under an
``ExitStack`` that closes everything in reverse order, also after a failure.
"""
from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from edgert.config.graph import topo_order
from edgert.config.schema import ModelConfig, PipelineConfig
from edgert.engines.base import Engine
from edgert.errors import EdgertError, RuntimeFailure
from edgert.sources.base import SOURCES, Source, split_uri
from edgert.stage import SINKS, STAGES, Sink, Stage, StageContext

log = logging.getLogger("edgert.runtime.graph")

EngineFactory = Callable[[str, ModelConfig, str, Path], Engine]


def default_engine_factory() -> EngineFactory:
    from edgert.engines.factory import create_engine

    return create_engine


class EnginePool:
    """One engine per model, created on first request (on the model's first device)."""

    def __init__(self, pipeline: PipelineConfig, factory: EngineFactory) -> None:
        self.pipeline = pipeline
        self.factory = factory
        self.engines: Dict[str, Engine] = {}

    def get(self, model: str) -> Engine:
        eng = self.engines.get(model)
        if eng is None:
            cfg = self.pipeline.models[model]
            eng = self.factory(model, cfg, cfg.devices()[0], self.pipeline.base_dir)
            self.engines[model] = eng
        return eng

    def close(self) -> None:
        for eng in self.engines.values():
            eng.close()
        self.engines.clear()


def model_stage(pipeline: PipelineConfig, order: List[str]) -> Optional[str]:
    """Name of the first stage (topological order) that runs a model: it sets the batch size."""
    for name in order:
        model = getattr(pipeline.stage(name), "model", None)
        if isinstance(model, str) and model in pipeline.models:
            return name
    return None


@dataclass
class Graph:
    pipeline: PipelineConfig
    sources: List[Source]
    stages: List[Stage]  # topological order
    sinks: List[Sink]
    engines: EnginePool
    infer_stage: Optional[str] = None  # the stage whose model sets the batch size
    batch_size: int = 1
    context: StageContext = field(init=False)

    def __post_init__(self) -> None:
        self.context = StageContext(self.pipeline, self.engines.get)

    def open(self, stack: ExitStack) -> None:
        """Open sources and start stages/sinks; ``stack`` undoes it in reverse."""
        stack.callback(self.engines.close)
        for src in self.sources:
            src.open()
            stack.callback(_quietly, src.close, "source", src.name)
        for stage in self.stages:
            start_component(stage, "stage")
            stack.callback(_quietly, stage.stop, "stage", stage.name)
        for sink in self.sinks:
            start_component(sink, "sink")
            stack.callback(_quietly, sink.stop, "sink", sink.name, True)

    def model_of(self, stage_name: str) -> Optional[str]:
        model = getattr(self.pipeline.stage(stage_name), "model", None)
        return model if isinstance(model, str) else None


def build_graph(pipeline: PipelineConfig, engine_factory: Optional[EngineFactory] = None) -> Graph:
    """Instances of every component of ``pipeline`` (nothing opened yet)."""
    pool = EnginePool(pipeline, engine_factory or default_engine_factory())
    order = topo_order(pipeline)
    sources = [SOURCES.get(split_uri(s.uri)[0])(s, pipeline.base_dir) for s in pipeline.sources]
    graph = Graph(pipeline, sources, [], [], pool)
    graph.stages = [STAGES.get(pipeline.stage(n).kind)(pipeline.stage(n), graph.context)
                    for n in order]
    graph.sinks = [SINKS.get(k.kind)(k, graph.context) for k in pipeline.sinks]
    graph.infer_stage = model_stage(pipeline, order)
    if graph.infer_stage is not None:
        graph.batch_size = pipeline.models[graph.model_of(graph.infer_stage) or ""].batch
    return graph


def start_component(obj: Any, what: str) -> None:
    """Start a stage/sink; an unexpected exception becomes one line naming it."""
    try:
        obj.start()
    except EdgertError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise RuntimeFailure("%s '%s' failed to start: %s: %s"
                             % (what, obj.name, type(exc).__name__, exc)) from exc



def _quietly(fn: Callable[[], None], what: str, name: str, propagate: bool = False) -> None:
    """Run a close/stop; failures are logged, and for sinks re-raised as one line."""
    try:
        fn()
    except Exception as exc:  # noqa: BLE001
        log.error("%s '%s': stop failed: %s", what, name, exc)
        if propagate:
            if isinstance(exc, EdgertError):
                raise
            raise RuntimeFailure("%s '%s' failed to finish: %s" % (what, name, exc)) from exc

"""The stage interface: a typed config, ``start()``, ``process(batch)``, ``stop()``.

Every processing step in a pipeline (preprocess, inference, decoding) is a
:class:`Stage`; every output is a :class:`Sink`.  Each is registered by the
name users write as ``kind:`` in YAML and declares a pydantic ``Config`` class
whose field docstrings are the reference for that YAML element.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Dict, Optional, Type

from pydantic import BaseModel, ConfigDict

from edgert.batch import Batch
from edgert.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from edgert.config.schema import PipelineConfig
    from edgert.engines.base import Engine
    from edgert.runtime.metrics import Metrics


class StageConfig(BaseModel):
    """Keys every stage has. Subclasses add their own; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: str
    """Unique stage name, referenced by other stages' and sinks' ``input``."""
    kind: str
    """Which stage this is, e.g. ``letterbox``, ``infer``, ``nanodet``."""
    input: str = "sources"
    """Name of the upstream stage; ``sources`` means the pipeline's frames."""


class SinkConfig(BaseModel):
    """Keys every sink has."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    kind: str
    """Which sink this is, e.g. ``video``, ``jsonl``, ``mqtt``."""
    name: Optional[str] = None
    """Optional unique name; defaults to ``<kind>`` or ``<kind>-<index>``."""
    input: str
    """Name of the stage whose batches this sink consumes."""


class StageContext:
    """What a stage may ask of the pipeline it runs in.

    Kept small on purpose: the pipeline's config (for ``model:`` lookups and
    paths) and a function that returns a started engine for a model name, so
    stages never construct engines themselves and the runtime can pool them.
    """

    def __init__(
        self,
        pipeline: "PipelineConfig",
        engine_for: Optional[Any] = None,
    ) -> None:
        self.pipeline = pipeline
        self._engine_for = engine_for

    @property
    def base_dir(self) -> Path:
        return self.pipeline.base_dir

    def engine(self, model: str) -> "Engine":
        if self._engine_for is None:
            raise RuntimeError("this context provides no engines")
        engine: "Engine" = self._engine_for(model)
        return engine


class Stage(ABC):
    """A processing step. Subclasses set ``Config`` and implement ``process``."""

    Config: ClassVar[Type[StageConfig]] = StageConfig

    def __init__(self, config: StageConfig, context: StageContext) -> None:
        self.config = config
        self.context = context

    @property
    def name(self) -> str:
        return self.config.name

    @classmethod
    def check_config(cls, config: StageConfig, pipeline: "PipelineConfig") -> None:
        """Graph-pass checks that need the whole pipeline (e.g. ``model:`` exists).

        Raise ``ConfigError(message, key_path="field")``; the loader prefixes
        the stage's path and adds file:line:col.
        """

    def start(self) -> None:
        """Acquire resources (open models, allocate buffers). Called once."""

    @abstractmethod
    def process(self, batch: Batch) -> Batch:
        """Return the batch enriched with this stage's results."""

    def stop(self) -> None:
        """Release resources. Called once, also after a failure."""

    def stats(self) -> Dict[str, Any]:
        """Counters for the end-of-run summary and metrics (optional)."""
        return {}


class Sink(ABC):
    """A consumer of batches: a file, a broker, an exporter."""

    Config: ClassVar[Type[SinkConfig]] = SinkConfig

    def __init__(self, config: SinkConfig, context: StageContext) -> None:
        self.config = config
        self.context = context

    @property
    def name(self) -> str:
        return self.config.name or self.config.kind

    @classmethod
    def check_config(cls, config: SinkConfig, pipeline: "PipelineConfig") -> None:
        """Graph-pass checks; raise ``ConfigError(message, key_path="field")``."""

    def start(self) -> None:
        """Open files/connections. Called once before the first batch."""

    @abstractmethod
    def write(self, batch: Batch) -> None:
        """Consume one batch (must not keep references to reused buffers)."""

    def flush(self) -> None:
        """Make everything written so far durable/visible."""

    def stop(self) -> None:
        """Flush and close. Called once, also on SIGTERM and after failures."""
        self.flush()

    def stats(self) -> Dict[str, Any]:
        return {}

    metrics: Optional["Metrics"] = None

    def bind_metrics(self, metrics: "Metrics") -> None:
        """Hand the run's Metrics to this sink; the runtime calls it before :meth:`start`.

        Sinks publish delivery counts (``edgert_sink_dropped_total{sink}``)
        there; the ``metrics`` sink serves it over HTTP.
        """
        self.metrics = metrics


STAGES: Registry[Type[Stage]] = Registry("stage kind")
SINKS: Registry[Type[Sink]] = Registry("sink kind")

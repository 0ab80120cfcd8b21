"""The ``infer`` stage: run a model on the batch's tensor, fill ``batch.outputs``.

The engine comes from :meth:`StageContext.engine`, so the runtime decides how
many engines exist and where they run.  When the runtime has put the batch's
tensor into the engine's own input memory (``batch.extras["engine_io"]``, see
``edgert.runtime``), the engine runs on it directly; otherwise the tensor is
copied into this stage's buffers and the copy is counted in
``EngineIO.bytes_copied``.  Outputs are views of the engine's buffers, valid
until the next batch on the same IO (decoders read them at once).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from edgert.batch import Batch
from edgert.config.schema import PipelineConfig
from edgert.engines.base import Engine, EngineIO
from edgert.errors import ConfigError, RuntimeFailure
from edgert.stage import STAGES, Stage, StageConfig, StageContext

log = logging.getLogger("edgert.engines.infer")


def load_labels(path: Path) -> List[str]:
    """Class names, one per line (blank lines kept as their index, stripped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuntimeFailure("cannot read labels file %s: %s" % (path, exc.strerror)) from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.strip() for line in lines]


def onnx_input_dims(path: Path) -> Optional[List[int]]:
    """The first graph input's dims (-1 when symbolic), or None when unknown.

    Used by the graph pass only when the ``onnx`` package is installed and the
    file parses; anything else is left to the engine, which reports it at run time.
    """
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - missing package or a bad file: the engine reports it
        return None
    weights = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    if not inputs:
        return None
    dims = inputs[0].type.tensor_type.shape.dim
    return [int(d.dim_value) if d.HasField("dim_value") else -1 for d in dims]


class InferConfig(StageConfig):
    """``{name: infer, kind: infer, model: detector, input: pre}``."""

    model: str
    """Name of the model under ``models:`` to run."""


@STAGES.register("infer")
class Infer(Stage):
    """Run the model's engine on ``batch.tensor``."""

    Config = InferConfig

    def __init__(self, config: StageConfig, context: StageContext) -> None:
        super().__init__(config, context)
        self.engine: Optional[Engine] = None
        self.labels: Optional[List[str]] = None
        self._own: Optional[EngineIO] = None
        self.frames = 0

    @classmethod
    def check_config(cls, config: StageConfig, pipeline: PipelineConfig) -> None:
        if getattr(config, "input", "") == "sources":
            raise ConfigError("infer needs a preprocess stage (letterbox/resize) as input",
                              key_path="input")
        model = pipeline.models.get(getattr(config, "model", ""))
        try:
            upstream = pipeline.stage(config.input)
        except KeyError:
            return
        size, layout = getattr(upstream, "size", None), getattr(upstream, "layout", None)
        if model is None or size is None or layout not in ("nchw", "nhwc"):
            return
        dims = onnx_input_dims(model.onnx)
        if dims is None or len(dims) != 4:
            return
        w, h = size
        made = (3, h, w) if layout == "nchw" else (h, w, 3)
        if any(want > 0 and want != got for want, got in zip(dims[1:], made)):
            shown = ["?" if d <= 0 else str(d) for d in dims]
            raise ConfigError("model '%s' takes [%s] (%s) but stage '%s' makes %s %s tensors; "
                              "set its size/layout to match"
                              % (config.model, ", ".join(shown), model.onnx.name,  # type: ignore[attr-defined]
                                 upstream.name, layout.upper(), list(made)), key_path="model")

    def start(self) -> None:
        model: str = self.config.model  # type: ignore[attr-defined]
        self.engine = self.context.engine(model)
        if len(self.engine.inputs) != 1:
            raise RuntimeFailure("model '%s' has %d inputs; the infer stage feeds models with one"
                                 % (model, len(self.engine.inputs)))
        labels = self.context.pipeline.models[model].labels
        if labels is not None:
            self.labels = load_labels(labels)

    def _io_for(self, batch: Batch, name: str) -> EngineIO:
        """The engine IO that holds ``batch.tensor``, copying it in if it is elsewhere."""
        assert self.engine is not None
        n = len(batch)
        io = batch.extras.get("engine_io")
        if isinstance(io, EngineIO) and name in io.inputs and batch.tensor is not None \
                and np.may_share_memory(io.inputs[name], batch.tensor):
            return io
        if batch.tensor is None:
            raise RuntimeFailure("stage '%s': its input '%s' produced no tensor; put a letterbox/"
                                 "resize stage before it" % (self.name, self.config.input))
        if self._own is None or self._own.capacity < n:
            self._own = self.engine.new_io(max(n, self.context.pipeline.models[
                self.config.model].batch))  # type: ignore[attr-defined]
        dst = self._own.inputs[name]
        if tuple(dst.shape[1:]) != tuple(batch.tensor.shape[1:]):
            raise RuntimeFailure("stage '%s': tensor %s does not fit model input '%s' %s"
                                 % (self.name, tuple(batch.tensor.shape[1:]), name,
                                    tuple(dst.shape[1:])))
        dst[:n] = batch.tensor
        self._own.bytes_copied += int(batch.tensor.nbytes)
        return self._own

    def process(self, batch: Batch) -> Batch:
        if self.engine is None:
            self.start()
        assert self.engine is not None
        n = len(batch)
        io = self._io_for(batch, self.engine.inputs[0].name)
        self.engine.run(io, n)
        batch.outputs = {k: v[:n] for k, v in io.outputs.items()}
        if self.labels is not None:
            batch.labels = self.labels
        self.frames += n
        return batch

    def stats(self) -> Dict[str, Any]:
        copied = self._own.bytes_copied if self._own is not None else 0
        return {"frames": self.frames, "bytes_copied": copied}

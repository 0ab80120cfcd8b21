"""Frames -> model inputs, and model outputs -> detections, the way the pipeline does it.

Calibrating on tensors that were preprocessed differently from production (a
different resize, normalization or channel order) silently ruins INT8, so with
``--pipeline P --model NAME`` the pipeline's OWN preprocess stages are
instantiated from the loaded config and frames run through them, and the
pipeline's decoder (the stage reading that model's infer stage) judges the
accuracy gate.  Without a pipeline the registered ``letterbox`` stage is used at
the model's input size, and ``--decoder KIND`` names a decoder.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from edgert.batch import Batch, Detections
from edgert.errors import UsageError
from edgert.stage import STAGES, Stage, StageConfig, StageContext

log = logging.getLogger("edgert.quant.feeds")


class Preparer:
    """Runs preprocess stages on frames and a decoder on outputs (one frame at a time)."""

    def __init__(self, pre: Sequence[Stage], input_name: str, decoder: Optional[Stage] = None,
                 describe: str = "") -> None:
        self.pre = list(pre)
        self.input_name = input_name
        self.decoder = decoder
        self.describe = describe or ", ".join(s.config.kind for s in self.pre)

    def start(self) -> None:
        for s in self.pre:
            s.start()
        if self.decoder is not None:
            self.decoder.start()

    def stop(self) -> None:
        for s in self.pre + ([self.decoder] if self.decoder is not None else []):
            try:
                s.stop()
            except Exception as exc:  # noqa: BLE001 - cleanup must not mask the result
                log.warning("stopping stage %s: %s", s.name, exc)

    def batch(self, frame: np.ndarray, index: int) -> Batch:
        b = Batch.of_frames([frame], [0], [index], [0.0], [0.0], ["calibration"])
        for s in self.pre:
            b = s.process(b)
        if b.tensor is None:
            raise UsageError("preprocess stages (%s) produced no tensor" % self.describe)
        # stages may reuse one tensor buffer across batches; keep each frame's own copy
        b.tensor = np.array(b.tensor, dtype=np.float32, copy=True)
        if b.transforms is not None:
            b.transforms = np.array(b.transforms, copy=True)
        return b

    def feed(self, batch: Batch) -> Dict[str, np.ndarray]:
        return {self.input_name: np.ascontiguousarray(batch.tensor, dtype=np.float32)}

    def decode(self, batch: Batch, outputs: Dict[str, np.ndarray]) -> Optional[Any]:
        """Detections or (top1, score) for one frame, or None without a decoder."""
        if self.decoder is None:
            return None
        b = Batch(frames=batch.frames, source_index=batch.source_index,
                  frame_index=batch.frame_index, pts=batch.pts, capture_time=batch.capture_time,
                  source_names=batch.source_names, tensor=batch.tensor,
                  transforms=batch.transforms, outputs=dict(outputs), extras=dict(batch.extras))
        b = self.decoder.process(b)
        if b.detections is not None:
            return b.detections.for_item(0)
        if b.classes is not None:
            return (int(b.classes.class_id[0, 0]), float(b.classes.score[0, 0]))
        raise UsageError("decoder %s produced neither detections nor classes" % self.decoder.name)


def _make_stage(cfg: StageConfig, ctx: StageContext) -> Stage:
    cls = STAGES.get(cfg.kind)
    return cls(cfg, ctx)


def _chain_to(pipeline: Any, stage_name: str) -> List[StageConfig]:
    """The stages from ``sources`` up to (excluding) ``stage_name``, in run order."""
    chain: List[StageConfig] = []
    current = pipeline.stage(stage_name).input
    while current != "sources":
        cfg = pipeline.stage(current)
        chain.append(cfg)
        current = cfg.input
    return list(reversed(chain))


def from_pipeline(pipeline: Any, model: str, input_name: str,
                  decoder_kind: Optional[str] = None) -> Preparer:
    """Preprocess and decode exactly as ``pipeline`` does for ``model``."""
    if model not in pipeline.models:
        raise UsageError("--model %r: the pipeline's models are %s"
                         % (model, ", ".join(sorted(pipeline.models)) or "(none)"))
    infer = [s for s in pipeline.stages if getattr(s, "model", None) == model]
    if not infer:
        raise UsageError("--model %r: no stage of the pipeline runs it" % model)
    ctx = StageContext(pipeline)
    pre = [_make_stage(c, ctx) for c in _chain_to(pipeline, infer[0].name)]
    decoder: Optional[Stage] = None
    if decoder_kind:
        decoder = decoder_stage(decoder_kind, ctx, infer[0].name)
    else:
        readers = [s for s in pipeline.stages if s.input == infer[0].name]
        if readers:
            decoder = _make_stage(readers[0], ctx)
    return Preparer(pre, input_name, decoder,
                    "pipeline %s: %s" % (pipeline.name, ", ".join(c.config.kind for c in pre)))


def decoder_stage(kind: str, ctx: StageContext, input_name: str = "infer") -> Stage:
    cls = STAGES.get(kind)
    try:
        cfg = cls.Config(name="decode", kind=kind, input=input_name)
    except Exception as exc:  # noqa: BLE001 - pydantic names the missing keys
        raise UsageError("--decoder %s needs settings a pipeline provides (%s); use --pipeline"
                         % (kind, str(exc).splitlines()[0])) from None
    return cls(cfg, ctx)


def default_preparer(input_name: str, input_shape: Sequence[Optional[int]],
                     decoder_kind: Optional[str], base_dir: Union[str, Path] = ".") -> Preparer:
    """The ``letterbox`` stage at the model's input size (and ``--decoder`` when given)."""
    from edgert.config.schema import PipelineConfig

    if len(input_shape) != 4 or input_shape[2] is None or input_shape[3] is None:
        raise UsageError("model input %s has shape %s; pass --pipeline to say how to "
                         "preprocess" % (input_name, list(input_shape)))
    if "letterbox" not in STAGES.names():
        raise UsageError("no letterbox stage is available; pass --pipeline P --model NAME")
    cls = STAGES.get("letterbox")
    cfg = cls.Config.model_validate({"name": "pre", "kind": "letterbox", "input": "sources",
                                     "size": [int(input_shape[3]), int(input_shape[2])]})
    ctx = StageContext(PipelineConfig(sources=[]))
    log.warning("no --pipeline: preprocessing with letterbox defaults (RGB, raw 0..255 "
                "pixels, no mean/std); pass --pipeline P --model NAME if the model expects "
                "normalized input")
    decoder = decoder_stage(decoder_kind, ctx, "infer") if decoder_kind else None
    return Preparer([cls(cfg, ctx)], input_name, decoder, "letterbox %dx%d (default)"
                    % (int(input_shape[2]), int(input_shape[3])))


def model_input(g: Any) -> Tuple[str, Sequence[Optional[int]]]:
    """The single image input of the model (quantize handles one-input models)."""
    if len(g.inputs) != 1:
        raise UsageError("the model has %d inputs (%s); quantize handles single-input models"
                         % (len(g.inputs), ", ".join(g.inputs)))
    name = g.inputs[0]
    return name, tuple(g.shape(name) or ())


def is_detections(x: Any) -> bool:
    return isinstance(x, Detections)


def make_preparer(g: Any, pipeline: Optional[str], model: Optional[str],
                  overrides: Sequence[str] = (), decoder_kind: Optional[str] = None) -> Preparer:
    """The CLI's ``--pipeline P --model NAME [--set ..] [--decoder KIND]`` -> a Preparer."""
    name, shape = model_input(g)
    if pipeline:
        from edgert.config.loader import load_pipeline

        if not model:
            raise UsageError("--pipeline needs --model NAME (which of its models to use)")
        cfg = load_pipeline(pipeline, overrides=overrides)
        return from_pipeline(cfg, model, name, decoder_kind)
    if model:
        raise UsageError("--model names a model of --pipeline; pass --pipeline too")
    return default_preparer(name, shape, decoder_kind)


def pipeline_frames_path(pipeline: Any) -> Optional[Path]:
    """The local video or image folder of the pipeline's first file/images source, if any."""
    from edgert.sources.base import resolve_local, split_uri

    for src in pipeline.sources:
        scheme, rest = split_uri(src.uri)
        if scheme in ("file", "images"):
            return resolve_local(rest, pipeline.base_dir)
    return None

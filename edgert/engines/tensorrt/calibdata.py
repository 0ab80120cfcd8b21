"""Calibration batches: frames from an image folder, a video or a pipeline source,
run through the pipeline's OWN preprocess stages.

The stages are instantiated from the pipeline config exactly as the runtime
does (``STAGES.get(kind)(config, StageContext(pipeline))``), so letterboxing,
channel order, normalization and dtype are identical at calibration and at
inference.  Frames are read with the pipeline's own source classes
(``images://`` for a folder, ``file://`` for a video) and sampled evenly over
the stream when it is longer than ``count``.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence, Tuple

import numpy as np

from edgert.batch import Batch
from edgert.config.schema import CalibrationConfig, PipelineConfig
from edgert.errors import RuntimeFailure
from edgert.sources.base import SOURCES, Frame, Source, split_uri
from edgert.stage import STAGES, Stage, StageConfig, StageContext

log = logging.getLogger("edgert.engines.tensorrt.calibdata")


def preprocess_chain(pipeline: PipelineConfig, model: str) -> List[StageConfig]:
    """The stages between the sources and the first stage that runs ``model``, in order."""
    from edgert.config.graph import topo_order

    by_name = {s.name: s for s in pipeline.stages}
    infer = next((by_name[n] for n in topo_order(pipeline)
                  if getattr(by_name[n], "model", None) == model), None)
    if infer is None:
        raise RuntimeFailure("calibration: no stage of the pipeline runs model '%s'" % model)
    chain: List[StageConfig] = []
    up = infer.input
    while up in by_name:
        chain.append(by_name[up])
        up = by_name[up].input
    return list(reversed(chain))


def open_frames(calib: CalibrationConfig, pipeline: PipelineConfig) -> Source:
    """The source calibration frames come from (opened)."""
    if calib.source is not None:
        cfg = next((s for s in pipeline.sources if s.name == calib.source), None)
        if cfg is None:
            raise RuntimeFailure("calibration source '%s' is not a source of the pipeline"
                                 % calib.source)
        src = SOURCES.get(split_uri(cfg.uri)[0])(cfg, pipeline.base_dir)
    elif calib.images is not None:
        path = Path(calib.images)
        if not path.exists():
            raise RuntimeFailure("calibration images not found: %s" % path)
        scheme = "images" if path.is_dir() else "file"
        cls = SOURCES.get(scheme)
        src = cls(cls.Config(name="calibration", uri="%s://%s" % (scheme, path)),
                  pipeline.base_dir)
    else:
        raise RuntimeFailure("calibration needs images: DIR|VIDEO or source: NAME")
    src.open()
    return src


def sample_frames(src: Source, count: int) -> Iterator[Frame]:
    """Up to ``count`` frames spread evenly over the stream."""
    total = src.frame_count
    stride = max(1, total // count) if total else 1
    taken = 0
    index = 0
    while taken < count:
        frame = src.read()
        if frame is None:
            break
        if index % stride == 0:
            taken += 1
            yield frame
        index += 1


class CalibrationData:
    """Yields ``{input: (batch, ...) array}`` calibration batches for one model."""

    def __init__(self, pipeline: PipelineConfig, model: str, calib: CalibrationConfig,
                 input_name: str, input_shape: Tuple[int, ...], dtype: np.dtype) -> None:
        self.pipeline = pipeline
        self.model = model
        self.calib = calib
        self.input_name = input_name
        self.shape = tuple(input_shape)
        self.dtype = np.dtype(dtype)
        self.batch = int(self.shape[0])
        self.stages: List[Stage] = []

    @property
    def num_batches(self) -> int:
        return max(1, self.calib.count // self.batch)

    def _start_stages(self) -> None:
        ctx = StageContext(self.pipeline)
        for cfg in preprocess_chain(self.pipeline, self.model):
            stage = STAGES.get(cfg.kind)(cfg, ctx)
            stage.start()
            self.stages.append(stage)
        log.info("calibration preprocessing: %s",
                 " -> ".join(s.name for s in self.stages) or "none (frames as is)")

    def _preprocess(self, frames: Sequence[Frame]) -> np.ndarray:
        now = time.monotonic()
        batch = Batch.of_frames([f.image for f in frames], [0] * len(frames),
                                [f.index for f in frames], [f.pts for f in frames],
                                [now] * len(frames), source_names=("calibration",))
        for stage in self.stages:
            batch = stage.process(batch)
        if batch.tensor is None:
            raise RuntimeFailure("calibration: preprocess stages produced no tensor for '%s'"
                                 % self.input_name)
        tensor = np.asarray(batch.tensor)[: len(frames)]
        if tuple(tensor.shape[1:]) != self.shape[1:]:
            raise RuntimeFailure("calibration: preprocessing gives %s per frame but input '%s' "
                                 "is %s" % (tuple(tensor.shape[1:]), self.input_name,
                                            self.shape[1:]))
        # A copy: stages reuse their output buffer for the next batch.
        return np.array(tensor, dtype=self.dtype, copy=True)

    def batches(self) -> Iterator[Dict[str, np.ndarray]]:
        """Full batches only; a short last batch is topped up by repeating its frames."""
        self._start_stages()
        src = open_frames(self.calib, self.pipeline)
        try:
            pending: List[Frame] = []
            made = 0
            for frame in sample_frames(src, self.num_batches * self.batch):
                pending.append(frame)
                if len(pending) == self.batch:
                    yield {self.input_name: self._preprocess(pending)}
                    made += 1
                    pending = []
            if pending and made < self.num_batches:
                while len(pending) < self.batch:
                    pending.append(pending[len(pending) % max(1, len(pending))])
                yield {self.input_name: self._preprocess(pending)}
                made += 1
            if made == 0:
                raise RuntimeFailure("calibration: no frames could be read")
        finally:
            src.close()
            self.close()

    def close(self) -> None:
        for stage in self.stages:
            try:
                stage.stop()
            except Exception as exc:  # noqa: BLE001 - a failing stop must not hide results
                log.warning("calibration stage %s: stop failed: %s", stage.name, exc)
        self.stages = []


InputSpec = Tuple[str, Tuple[int, ...], Any]


def single_image_input(inputs: Sequence[InputSpec]) -> InputSpec:
    """Pipeline calibration feeds one image input; other models bring a cache."""
    if len(inputs) != 1:
        raise RuntimeFailure("calibration from the pipeline feeds one image input; this model has "
                             "%d (%s): provide int8.calibration.cache"
                             % (len(inputs), ", ".join(i[0] for i in inputs)))
    return inputs[0]

"""Small, explicit test doubles for the runtime: a synthetic source, a numpy engine,
and stages/sinks that record what they saw.

They implement the real interfaces (Source, Engine, Stage, Sink) with tiny
arrays so runtime tests exercise threads, queues, ordering and accounting in
well under a second, without video files or ONNX models.  Registered under
``test-*`` names / the ``test://`` scheme; never used outside tests.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from edgert.batch import Batch, Detections
from edgert.config.loader import loads_pipeline
from edgert.config.schema import ModelConfig, PipelineConfig
from edgert.engines.base import Engine, EngineIO, TensorSpec
from edgert.errors import RuntimeFailure
from edgert.sources.base import SOURCES, Frame, Source, SourceConfig
from edgert.stage import SINKS, STAGES, Sink, SinkConfig, Stage, StageConfig

SIZE = 8  # model input is (N, 3, SIZE, SIZE)


class TestSourceConfig(SourceConfig):
    frames: int = 10
    """How many frames the stream has."""
    delay_ms: float = 0.0
    """Time between frames (a camera's frame interval)."""
    fail_at: int = -1
    """Raise RuntimeFailure when asked for this frame (-1: never)."""
    fail_open: bool = False
    live: bool = False


@SOURCES.register("test")
class TestSource(Source):
    """Frames whose pixels encode their index, so sinks can check what arrived."""

    Config = TestSourceConfig

    def __init__(self, config: SourceConfig, base_dir: Path) -> None:
        super().__init__(config, base_dir)
        assert isinstance(config, TestSourceConfig)
        self.cfg = config
        self.next = 0
        self.closed = 0
        self.live_flag = config.live

    @property  # type: ignore[override]
    def live(self) -> bool:  # type: ignore[override]
        return self.live_flag

    def open(self) -> None:
        if self.cfg.fail_open:
            raise RuntimeFailure("cannot open %s" % self.cfg.uri)

    def read(self) -> Optional[Frame]:
        if self.next >= self.cfg.frames:
            return None
        if self.next == self.cfg.fail_at:
            raise RuntimeFailure("camera %s went away" % self.name)
        if self.cfg.delay_ms:
            time.sleep(self.cfg.delay_ms / 1000.0)
        img = np.full((48, 64, 3), self.next % 251, np.uint8)
        fr = Frame(img, self.next, self.next / 30.0, time.monotonic())
        self.next += 1
        return fr

    def close(self) -> None:
        self.closed += 1


class FakeEngine(Engine):
    """out[i] = mean of input[i]; ``run`` can sleep to model a slow accelerator."""

    backend = "fake"

    def __init__(self, device: str = "cpu", batch: int = 4, sleep_s: float = 0.0) -> None:
        self.device = device
        self.batch = batch
        self.sleep_s = sleep_s
        self.runs = 0
        self.ios: List[EngineIO] = []
        self.lock = threading.Lock()

    @property
    def inputs(self) -> List[TensorSpec]:
        return [TensorSpec("images", (self.batch, 3, SIZE, SIZE), np.dtype(np.float32))]

    @property
    def outputs(self) -> List[TensorSpec]:
        return [TensorSpec("mean", (self.batch, 1), np.dtype(np.float32))]

    def new_io(self, capacity: int) -> EngineIO:
        io = EngineIO(capacity, {"images": np.zeros((capacity, 3, SIZE, SIZE), np.float32)},
                      {"mean": np.zeros((capacity, 1), np.float32)})
        self.ios.append(io)
        return io

    def run(self, io: EngineIO, n: int) -> None:
        if self.sleep_s:
            time.sleep(self.sleep_s)
        io.outputs["mean"][:n, 0] = io.inputs["images"][:n].mean(axis=(1, 2, 3))
        with self.lock:
            self.runs += 1


def fake_factory(sleep_s: float = 0.0, created: Optional[List[FakeEngine]] = None):  # type: ignore[no-untyped-def]
    def make(name: str, model: ModelConfig, device: str, base_dir: Path) -> Engine:
        eng = FakeEngine(device, model.batch, sleep_s)
        if created is not None:
            created.append(eng)
        return eng

    return make


@STAGES.register("test-pre")
class TestPre(Stage):
    """Writes frame pixel values into batch.tensor (the runtime's slot when preallocated)."""

    def process(self, batch: Batch) -> Batch:
        n = len(batch)
        if batch.tensor is None:
            batch.tensor = np.zeros((n, 3, SIZE, SIZE), np.float32)
        for i, img in enumerate(batch.frames):
            batch.tensor[i] = float(img[0, 0, 0])
        return batch


class TestInferConfig(StageConfig):
    model: str


@STAGES.register("test-infer")
class TestInfer(Stage):
    """Runs in place on the runtime's EngineIO when given one, else copies in."""

    Config = TestInferConfig

    def start(self) -> None:
        assert isinstance(self.config, TestInferConfig)
        self.engine = self.context.engine(self.config.model)
        self.own: Optional[EngineIO] = None

    def process(self, batch: Batch) -> Batch:
        n = len(batch)
        io = batch.extras.get("engine_io")
        if io is None or not any(io is mine for mine in getattr(self.engine, "ios", [])):
            if self.own is None:
                self.own = self.engine.new_io(n)
            io = self.own
            io.inputs["images"][:n] = batch.tensor
        self.engine.run(io, n)
        batch.outputs = {k: v[:n] for k, v in io.outputs.items()}
        batch.extras["device"] = self.engine.device
        return batch


class TestPostConfig(StageConfig):
    fail_at_frame: int = -1
    """Raise when a batch contains this frame index (-1: never)."""


@STAGES.register("test-post")
class TestPost(Stage):
    """Turns the engine output into one detection per frame (score = frame value)."""

    Config = TestPostConfig

    def process(self, batch: Batch) -> Batch:
        assert isinstance(self.config, TestPostConfig)
        if self.config.fail_at_frame in batch.frame_index.tolist():
            raise ValueError("decoder exploded on frame %d" % self.config.fail_at_frame)
        n = len(batch)
        first = batch.outputs["mean"] if "mean" in batch.outputs else \
            next(iter(batch.outputs.values()))
        score = first[:n].reshape(n, -1)[:, 0].astype(np.float32)
        batch.detections = Detections(np.zeros((n, 4), np.float32), score,
                                      np.zeros(n, np.int32), np.arange(n, dtype=np.int32))
        return batch


class CollectConfig(SinkConfig):
    delay_ms: float = 0.0


RECORDS: Dict[str, List[Tuple[str, int, float, str]]] = {}


@SINKS.register("test-collect")
class Collect(Sink):
    """Records (stream, frame index, decoded score, device) per frame, keyed by sink name."""

    Config = CollectConfig

    def start(self) -> None:
        self.rows = RECORDS.setdefault(self.name, [])
        self.stopped = 0

    def write(self, batch: Batch) -> None:
        assert isinstance(self.config, CollectConfig)
        if self.config.delay_ms:
            time.sleep(self.config.delay_ms / 1000.0)
        for i in range(len(batch)):
            score = float(batch.detections.score[i]) if batch.detections is not None else -1.0
            self.rows.append((batch.source_name(i), int(batch.frame_index[i]), score,
                              str(batch.extras.get("device", ""))))

    def stop(self) -> None:
        self.stopped += 1


def pipeline(sources: List[str], batch: int = 4, instances: str = "", runtime: str = "",
             post: str = "", sink: str = "") -> PipelineConfig:
    """A pipeline of test doubles; ``sources`` are YAML flow mappings without braces."""
    srcs = "\n".join("  - {%s}" % s for s in sources)
    inst = (", instances: [%s]" % instances) if instances else ""
    text = """
sources:
%s
models:
  m: {onnx: none.onnx, backend: onnxruntime, device: cpu, batch: %d%s}
stages:
  - {name: pre, kind: test-pre, input: sources}
  - {name: infer, kind: test-infer, model: m, input: pre}
  - {name: det, kind: test-post, input: infer%s}
sinks:
  - {kind: test-collect, name: out, input: det%s}
runtime: {%s}
""" % (srcs, batch, inst, post, sink, runtime)
    return loads_pipeline(text, "/tmp/test-pipeline.yaml", check_files=False)

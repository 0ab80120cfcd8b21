"""Test-only components for the service tests (names start with ``svc``).

``svcframes://N`` yields N small synthetic frames; ``svc-infer`` stands in for
an inference stage and can be stalled on purpose (it blocks on an event after
``stall_after`` batches) so the watchdog test can prove that a hung inference
path stops ``WATCHDOG=1``.  Never used outside tests.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

from edgert.batch import Batch
from edgert.sources.base import SOURCES, Frame, Source
from edgert.stage import SINKS, STAGES, Sink, Stage, StageConfig

RELEASE = threading.Event()
"""Set to let a stalled ``svc-infer`` continue (tests set it when done)."""


@SOURCES.register("svcframes")
class _Frames(Source):
    def open(self) -> None:
        self.count = int(self.config.uri.split("://", 1)[1] or "0")
        self.i = 0

    def read(self) -> Optional[Frame]:
        if self.i >= self.count:
            return None
        self.i += 1
        time.sleep(0.01)  # a 100 fps camera, so a run spans several watchdog periods
        return Frame(np.zeros((8, 8, 3), np.uint8), self.i - 1, self.i / 100.0, time.monotonic())

    def close(self) -> None:
        pass


class _InferConfig(StageConfig):
    stall_after: int = -1
    """Block (until RELEASE is set) from this batch on; -1 never stalls."""


@STAGES.register("svc-infer")
class _Infer(Stage):
    Config = _InferConfig

    def start(self) -> None:
        self.batches = 0

    def process(self, batch: Batch) -> Batch:
        self.batches += 1
        if 0 <= self.config.stall_after < self.batches:
            RELEASE.wait(60)
        return batch


@SINKS.register("svc-sink")
class _Sink(Sink):
    def write(self, batch: Batch) -> None:
        pass


PIPELINE = """\
version: 1
name: svc test
sources:
  - {name: cam, uri: "svcframes://FRAMES"}
models:
  detector: {onnx: det.onnx, backend: BACKEND}
stages:
  - {name: infer, kind: svc-infer, input: sources, stall_after: STALL}
sinks:
  - {kind: svc-sink, input: infer}
"""


def write_pipeline(folder: Path, frames: int = 5, stall: int = -1, backend: str = "auto",
                   extra: str = "") -> Path:
    (folder / "det.onnx").write_bytes(b"")
    text = (PIPELINE.replace("FRAMES", str(frames)).replace("STALL", str(stall))
            .replace("BACKEND", backend))
    path = folder / "p.yaml"
    path.write_text(text + extra)
    return path


@pytest.fixture
def pipeline(tmp_path: Path) -> Path:
    return write_pipeline(tmp_path)

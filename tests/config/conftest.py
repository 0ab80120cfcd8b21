"""Test-only components so config tests do not depend on real stages.

They register under names starting with ``t-`` and are never used outside tests.
"""
from __future__ import annotations

from pathlib import Path
from typing import List

import pytest

from edgert.batch import Batch
from edgert.stage import SINKS, STAGES, Sink, SinkConfig, Stage, StageConfig


class _PreConfig(StageConfig):
    size: List[int] = [416, 416]


@STAGES.register("t-pre")
class _Pre(Stage):
    Config = _PreConfig

    def process(self, batch: Batch) -> Batch:
        return batch


class _InferConfig(StageConfig):
    model: str


@STAGES.register("t-infer")
class _Infer(Stage):
    Config = _InferConfig

    def process(self, batch: Batch) -> Batch:
        return batch


@SINKS.register("t-sink")
class _Sink(Sink):
    def write(self, batch: Batch) -> None:
        pass


PIPELINE = """\
version: 1
name: t
sources:
  - name: street
    uri: file://street.mp4
models:
  detector:
    onnx: det.onnx
    batch: 2
stages:
  - name: pre
    kind: t-pre
    input: sources
    size: [416, 416]
  - name: infer
    kind: t-infer
    model: detector
    input: pre
sinks:
  - kind: t-sink
    input: infer
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder with a valid pipeline ``p.yaml`` and the (empty) files it names."""
    (tmp_path / "det.onnx").write_bytes(b"")
    (tmp_path / "street.mp4").write_bytes(b"")
    (tmp_path / "p.yaml").write_text(PIPELINE)
    return tmp_path

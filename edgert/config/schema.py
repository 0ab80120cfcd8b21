"""Typed configuration of a pipeline file (the YAML contract in DESIGN.md).

Each class is the reference for one YAML section: field docstrings say what a
key means and show an example.  Sources, stages and sinks are validated
against the ``Config`` class of their scheme/kind (see ``edgert.registry``), so
this module only holds what is common to every pipeline.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from edgert.sources.base import SourceConfig
from edgert.stage import SinkConfig, StageConfig

DEVICE_RE = re.compile(r"^(cpu|gpu|dla:\d+)$")


def check_device(value: str) -> str:
    """Validate ``cpu | gpu | dla:N`` (whether dla:N exists is checked later)."""
    if not DEVICE_RE.match(value):
        raise ValueError("'%s' is not a device; use cpu, gpu, dla:0 or dla:1" % value)
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class CalibrationConfig(Strict):
    """INT8 calibration data: ``{images: ../calib/, count: 200, cache: ../cache/det.calib}``."""

    images: Optional[Path] = None
    """Folder of images, or a video file, to sample calibration frames from."""
    source: Optional[str] = None
    """Alternatively, the name of a pipeline source to sample frames from."""
    count: int = Field(200, ge=1)
    """How many frames to calibrate on."""
    cache: Optional[Path] = None
    """Calibration cache file: read when present, written after calibrating."""
    method: str = "entropy"
    """``entropy`` (required for DLA) or ``minmax``."""


class Int8Config(Strict):
    calibration: CalibrationConfig = Field(default_factory=lambda: CalibrationConfig())


class ModelConfig(Strict):
    """One model, e.g. ``detector: {onnx: ../models/detector.onnx, device: gpu}``."""

    onnx: Path
    """The ONNX file (relative paths resolve against the pipeline's folder)."""
    backend: str = "auto"
    """``auto`` (TensorRT when it imports and a GPU is present, else ONNX
    Runtime), ``tensorrt`` or ``onnxruntime``."""
    device: str = "gpu"
    """``gpu``, ``dla:0``, ``dla:1`` or ``cpu``."""
    gpu_fallback: bool = True
    """Let layers DLA cannot run fall back to the GPU (else the build fails)."""
    precision: str = "fp16"
    """``fp32``, ``fp16``, ``int8`` or ``best``."""
    int8: Optional[Int8Config] = None
    """INT8 calibration settings (needed for ``precision: int8`` on TensorRT)."""
    sparsity: bool = False
    """Build with 2:4 structured-sparsity kernels (Ampere/Orin GPUs)."""
    batch: int = Field(1, ge=1, le=4096)
    """Frames per inference call; batches are formed across streams."""
    instances: Optional[List[str]] = None
    """One engine per listed device, load-balanced: ``[dla:0, dla:1, gpu]``."""
    labels: Optional[Path] = None
    """Text file with one class name per line."""

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        return check_device(v)

    @field_validator("instances")
    @classmethod
    def _instances(cls, v: Optional[List[str]]) -> Optional[List[str]]:
        if v is not None:
            if not v:
                raise ValueError("instances must list at least one device")
            for d in v:
                check_device(d)
        return v

    @field_validator("backend")
    @classmethod
    def _backend(cls, v: str) -> str:
        if v not in ("auto", "tensorrt", "onnxruntime"):
            raise ValueError(
                "'%s' is not a backend; use auto, tensorrt or onnxruntime" % v
            )
        return v

    @field_validator("precision")
    @classmethod
    def _precision(cls, v: str) -> str:
        if v not in ("fp32", "fp16", "int8", "best"):
            raise ValueError("'%s' is not a precision; use fp32, fp16, int8 or best" % v)
        return v

    def devices(self) -> List[str]:
        """Every device an engine of this model is placed on."""
        return list(self.instances) if self.instances else [self.device]


class RuntimeConfig(Strict):
    """How frames move: ``{queue_depth: 4, drop_policy: drop_oldest, batch_timeout_ms: 10}``."""

    queue_depth: int = Field(4, ge=1, le=1024)
    """Frames buffered per stream before the drop policy applies."""
    drop_policy: str = "auto"
    """``drop_oldest`` (live cameras: bounded latency), ``block`` (files:
    nothing lost) or ``auto`` (drop_oldest for live sources, block for files)."""
    batch_timeout_ms: float = Field(10.0, ge=0)
    """How long the batcher waits to fill a batch across streams."""
    metrics_port: Optional[int] = Field(None, ge=1, le=65535)
    """Serve Prometheus metrics on this port."""
    executor: str = "auto"
    """``threaded`` (concurrent, the default) or ``sequential`` (one frame at a time)."""

    @field_validator("drop_policy")
    @classmethod
    def _drop(cls, v: str) -> str:
        if v not in ("auto", "drop_oldest", "block"):
            raise ValueError("'%s' is not a drop policy; use auto, drop_oldest or block" % v)
        return v


class PowerConfig(Strict):
    """Jetson power settings applied for the run: ``{nvpmodel: MAXN, jetson_clocks: true}``."""

    nvpmodel: Optional[Union[int, str]] = None
    """Power mode by id (``0``) or name (``MAXN``); checked against the board's table."""
    jetson_clocks: bool = False
    """Pin clocks at the mode's maximum (the previous state is stored first)."""
    restore_on_exit: bool = True
    """Restore the previous mode and clocks on exit, SIGTERM, or the next start after a crash."""


class PipelineConfig(Strict):
    """A whole pipeline file."""

    version: int = 1
    name: str = "pipeline"
    sources: List[SourceConfig]
    models: Dict[str, ModelConfig] = Field(default_factory=dict)
    stages: List[StageConfig] = Field(default_factory=list)
    sinks: List[SinkConfig] = Field(default_factory=list)
    runtime: RuntimeConfig = Field(default_factory=lambda: RuntimeConfig())
    power: Optional[PowerConfig] = None
    # Set by the loader, never from YAML.
    _path: Optional[Path] = PrivateAttr(default=None)

    @property
    def path(self) -> Optional[Path]:
        """The YAML file this pipeline was loaded from (None when built in code)."""
        return self._path

    @property
    def base_dir(self) -> Path:
        """Folder that relative paths in the file resolve against."""
        return self._path.parent if self._path is not None else Path.cwd()

    def stage(self, name: str) -> StageConfig:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

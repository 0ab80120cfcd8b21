"""Typed configuration of a pipeline file (the YAML contract in DESIGN.md).

Each class is the reference for one YAML section: field docstrings say what a
key means and show an example.  Sources, stages and sinks are validated
against the ``Config`` class of their scheme/kind (see ``edgert.registry``), so
this module only holds what is common to every pipeline.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

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


class LayerOverride(Strict):
    """Pin layers to a device by name pattern: ``{match: "*head*", device: gpu}``."""

    match: str
    """Shell-style pattern (``fnmatch``) on the ONNX/TensorRT layer name, e.g. ``"/head/*"``."""
    device: str
    """``gpu`` or ``dla`` (the instance's own DLA core; only on ``dla:N`` instances)."""

    @field_validator("device")
    @classmethod
    def _layer_device(cls, v: str) -> str:
        if v not in ("gpu", "dla"):
            raise ValueError("'%s' is not a layer device; use gpu or dla" % v)
        return v


def _pow2(value: Optional[int], unit: str) -> Optional[int]:
    if value is not None and (value <= 0 or value & (value - 1)):
        raise ValueError("%d %s is not a power of 2 (TensorRT requires it for DLA pools)"
                         % (value, unit))
    return value


class BuildConfig(Strict):
    """Engine-build options (TensorRT only): ``build: {preset: ../configs/xavier-dla-int8.yaml}``.

    A ``preset`` file (see ``configs/``) supplies defaults for these keys and
    for the model's ``device``, ``precision``, ... ; keys written in the
    pipeline always win.
    """

    preset: Optional[Path] = None
    """Build preset YAML, e.g. ``../configs/orin-gpu-fp16-sparse.yaml``."""
    workspace_mb: Optional[int] = Field(None, ge=1)
    """Builder scratch memory limit in MiB (TensorRT default: all device memory)."""
    dla_sram_kb: Optional[int] = Field(None, ge=4)
    """DLA managed SRAM per loadable in KiB, power of 2 (default 1024)."""
    dla_local_dram_mb: Optional[int] = Field(None, ge=1)
    """DLA local DRAM per loadable in MiB, power of 2 (default 1024)."""
    dla_global_dram_mb: Optional[int] = Field(None, ge=1)
    """DLA global DRAM per loadable in MiB, power of 2 (default 512)."""
    layers: List[LayerOverride] = Field(default_factory=list)
    """Per-layer device overrides, first match wins: ``[{match: "*Softmax*", device: gpu}]``."""
    max_gpu_fallback: Optional[int] = Field(None, ge=0)
    """Fail a DLA build when more layers than this fall back to the GPU."""
    timing_cache: Optional[Path] = None
    """Timing cache file (default: one per GPU and TensorRT version in the engine cache folder)."""
    cache_dir: Optional[Path] = None
    """Engine cache folder (default: ``$EDGERT_CACHE_DIR`` or ``~/.cache/edgert/engines``)."""
    cuda_graphs: bool = False
    """Capture inference in a CUDA graph (falls back to normal enqueue when capture fails)."""

    @field_validator("dla_sram_kb")
    @classmethod
    def _sram(cls, v: Optional[int]) -> Optional[int]:
        return _pow2(v, "KiB")

    @field_validator("dla_local_dram_mb", "dla_global_dram_mb")
    @classmethod
    def _dram(cls, v: Optional[int]) -> Optional[int]:
        return _pow2(v, "MiB")


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
    build: BuildConfig = Field(default_factory=BuildConfig)
    """TensorRT build options and an optional preset (see :class:`BuildConfig`)."""
    # The pipeline this model belongs to, linked by the graph pass so the
    # TensorRT backend can calibrate INT8 with the pipeline's own preprocessing.
    _pipeline: Any = PrivateAttr(default=None)
    # {path, platform, description} of the applied build preset (edgert.config.presets).
    _preset: Any = PrivateAttr(default=None)

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

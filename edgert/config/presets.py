"""Build presets: per-platform defaults a model references with ``build: {preset: FILE}``.

A preset is a small YAML file (see ``configs/``) so that the knowledge of what
builds well on a board (DLA with INT8 on Xavier, sparse FP16 on Orin's GPU)
lives in one reviewed place instead of being copied into every pipeline::

    preset: 1                        # format version
    description: Xavier DLA, INT8 with GPU fallback
    platform: xavier                 # xavier | orin | orin-nano | any (`edgert build` warns
                                     # when it runs on another board family)
    model:                           # defaults for the model's own keys
      device: dla:0
      precision: int8
      gpu_fallback: true
    build:                           # defaults for the model's build: section
      workspace_mb: 1024
      dla_sram_kb: 512

Keys the pipeline writes itself (and ``--set`` overrides) always win over the
preset.  Relative paths in a preset resolve against the preset's folder.
Errors point into the preset file (``xavier-dla-int8.yaml:7:3: model.precision:
...``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

from pydantic import Field, field_validator

from edgert.config.schema import BuildConfig, ModelConfig, PipelineConfig, Strict, check_device
from edgert.config.yamlsrc import KeyPath, Locations, load_yaml
from edgert.errors import ConfigError

PLATFORMS = ("any", "xavier", "orin", "orin-nano")


class PresetModel(Strict):
    """The model keys a preset may set (file and label paths stay in the pipeline)."""

    device: Optional[str] = None
    instances: Optional[List[str]] = None
    gpu_fallback: Optional[bool] = None
    precision: Optional[str] = None
    sparsity: Optional[bool] = None
    batch: Optional[int] = Field(None, ge=1, le=4096)

    @field_validator("device")
    @classmethod
    def _device(cls, v: Optional[str]) -> Optional[str]:
        return None if v is None else check_device(v)

    @field_validator("instances")
    @classmethod
    def _instances(cls, v: Optional[List[str]]) -> Optional[List[str]]:
        for d in v or []:
            check_device(d)
        return v

    @field_validator("precision")
    @classmethod
    def _precision(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and v not in ("fp32", "fp16", "int8", "best"):
            raise ValueError("'%s' is not a precision; use fp32, fp16, int8 or best" % v)
        return v


class PresetBuild(BuildConfig):
    """A preset's ``build:`` section: every build key except ``preset`` (no chains)."""

    @field_validator("preset")
    @classmethod
    def _no_chain(cls, v: Optional[Path]) -> Optional[Path]:
        if v is not None:
            raise ValueError("a preset cannot reference another preset")
        return v


class Preset(Strict):
    preset: int = 1
    """Format version (1)."""
    description: str = ""
    platform: str = "any"
    """Board family the preset is tuned for: ``xavier``, ``orin``, ``orin-nano`` or ``any``."""
    model: PresetModel = Field(default_factory=lambda: PresetModel.model_validate({}))
    build: PresetBuild = Field(default_factory=lambda: PresetBuild.model_validate({}))

    @field_validator("platform")
    @classmethod
    def _platform(cls, v: str) -> str:
        if v not in PLATFORMS:
            raise ValueError("'%s' is not a platform; use %s" % (v, ", ".join(PLATFORMS)))
        return v

    @field_validator("preset")
    @classmethod
    def _version(cls, v: int) -> int:
        if v != 1:
            raise ValueError("unsupported preset version %d; this edgert reads version 1" % v)
        return v


def load_preset(path: Path) -> Preset:
    """Read and validate a preset file; errors are located in that file."""
    from edgert.config.loader import validate_model

    if not path.is_file():
        raise ConfigError("build preset not found: %s" % path)
    doc, locs = load_yaml(path)
    preset: Preset = validate_model(Preset, doc if doc is not None else {}, (), locs)
    for name in ("timing_cache", "cache_dir"):
        value = getattr(preset.build, name)
        if isinstance(value, Path) and not value.is_absolute():
            setattr(preset.build, name, (path.parent / value.expanduser()).resolve())
    return preset


def apply_preset(model: ModelConfig, preset: Preset) -> None:
    """Fill the model's keys the pipeline did not set from the preset (in place)."""
    for key in preset.model.model_fields_set:
        value = getattr(preset.model, key)
        if value is not None and key not in model.model_fields_set:
            setattr(model, key, value)
    build = model.build
    for key in preset.build.model_fields_set:
        if key not in build.model_fields_set:
            setattr(build, key, getattr(preset.build, key))


def check_model_build(pipeline: PipelineConfig, name: str, model: ModelConfig,
                      locs: Locations) -> None:
    """Graph-pass hook: apply the model's preset and link the model to its pipeline.

    Runs before the device and INT8 checks so they see the preset's values.
    """
    model._pipeline = pipeline
    preset_path = model.build.preset
    if preset_path is not None:
        _apply_file(model, name, preset_path, locs)
    check_board_dla(model, name, locs)


def _apply_file(model: ModelConfig, name: str, preset_path: Path, locs: Locations) -> None:
    key: KeyPath = ("models", name, "build", "preset")
    if not preset_path.is_file():
        raise locs.error("build preset not found: %s" % preset_path, key)
    preset = load_preset(preset_path)
    apply_preset(model, preset)
    model._preset = preset_summary(preset_path, preset)


def preset_summary(path: Path, preset: Preset) -> Dict[str, Any]:
    return {"path": str(path), "platform": preset.platform, "description": preset.description}


def preset_platform(model: ModelConfig) -> Optional[str]:
    """The platform the model's preset targets, when it names one."""
    info = getattr(model, "_preset", None)
    if isinstance(info, dict) and info.get("platform") not in (None, "any"):
        return str(info["platform"])
    return None


def check_board_dla(model: ModelConfig, name: str, locs: Locations,
                    root: Optional[Path] = None) -> None:
    """On a Jetson, ``dla:N`` must exist on this board (Orin Nano has none, Orin NX 8GB one).

    Off a Jetson nothing is checked: the same YAML is developed on a laptop.
    """
    from edgert.platform import detect, nvpmodel, tools

    wanted = [(j, d) for j, d in enumerate(model.devices()) if d.startswith("dla:")]
    root = root if root is not None else tools.sysroot()
    if not wanted or not detect.is_jetson(root):
        return
    cores = detect.dla_cores(root, nvpmodel.read_conf(root))
    if cores is None:
        return
    for j, dev in wanted:
        if int(dev.split(":", 1)[1]) < cores:
            continue
        key: KeyPath = ("models", name) + (("instances", j) if model.instances else ("device",))
        have = ", ".join("dla:%d" % i for i in range(cores)) if cores else "use device: gpu"
        raise locs.error("'%s' — this Jetson has %d DLA core%s (%s)"
                         % (dev, cores, "" if cores == 1 else "s", have), key)

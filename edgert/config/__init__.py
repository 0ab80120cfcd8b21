"""Pipeline files: YAML -> typed, validated objects with located errors.

``load_pipeline(path, overrides)`` is the entry point; see ``schema.py`` for
what each section may contain.
"""
from edgert.config.loader import load_pipeline, loads_pipeline
from edgert.config.schema import ModelConfig, PipelineConfig

__all__ = ["load_pipeline", "loads_pipeline", "PipelineConfig", "ModelConfig"]

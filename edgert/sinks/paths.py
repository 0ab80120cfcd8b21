"""Output path templates shared by file sinks.

Output paths are templates such as ``out/{source}.mp4``; ``{source}`` is the
stream name.  Relative output paths resolve against the *current working
directory* (inputs resolve against the pipeline file's folder, so a pipeline
can be moved with its models; outputs land where the user runs it).
"""
from __future__ import annotations

from pathlib import Path

from edgert.config.schema import PipelineConfig
from edgert.errors import ConfigError


def check_template(template: str, pipeline: PipelineConfig, key: str = "path") -> None:
    """Graph-pass check: the template formats, and names ``{source}`` when it must."""
    try:
        template.format(source="x")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError("bad path template '%s' (%s); the only field is {source}"
                          % (template, exc), key_path=key) from None
    if not template.strip():
        raise ConfigError("path is empty", key_path=key)


def output_path(template: str, source: str) -> Path:
    """The file for ``source`` (absolute, relative ones against the working directory)."""
    p = Path(template.format(source=source)).expanduser()
    return p if p.is_absolute() else Path.cwd() / p


def partial_path(final: Path) -> Path:
    """Hidden temp name beside ``final`` with the same suffix (writers pick the container by it)."""
    return final.with_name("." + final.stem + ".partial" + final.suffix)

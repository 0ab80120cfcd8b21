"""Argument groups shared by commands that take a pipeline file."""
from __future__ import annotations

import argparse

from edgert.config.schema import PipelineConfig


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pipeline", metavar="PIPELINE", help="pipeline YAML file")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
        help="override a key, e.g. --set models.detector.precision=int8 "
             "or --set stages.pre.size=[320,320] (repeatable)",
    )


def load_pipeline_from_args(args: argparse.Namespace, check_files: bool = True) -> PipelineConfig:
    from edgert.config.loader import load_pipeline

    return load_pipeline(args.pipeline, overrides=args.overrides, check_files=check_files)

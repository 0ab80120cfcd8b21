"""``edgert validate PIPELINE``: check a pipeline file without running it."""
from __future__ import annotations

import argparse

from edgert.cli.common import add_pipeline_arguments, load_pipeline_from_args
from edgert.config.schema import PipelineConfig

ORDER = 20


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("validate", help="check a pipeline file (schema, graph, files)",
                       description="Validate a pipeline file: every key, every reference, "
                                   "every file. Exits 0 and prints a one-line summary when valid.")
    add_pipeline_arguments(p)
    p.set_defaults(func=run)


def _plural(n: int, word: str) -> str:
    return "%d %s%s" % (n, word, "" if n == 1 else "s")


def summary(cfg: PipelineConfig) -> str:
    models = ", ".join(
        "%s: %s %s %s b%d" % (n, m.backend, "+".join(m.devices()), m.precision, m.batch)
        for n, m in cfg.models.items()
    )
    parts = [_plural(len(cfg.sources), "source"), _plural(len(cfg.models), "model")]
    parts += [_plural(len(cfg.stages), "stage"), _plural(len(cfg.sinks), "sink")]
    text = "%s: valid pipeline '%s': %s" % (cfg.path, cfg.name, ", ".join(parts))
    return text + (" (%s)" % models if models else "")


def run(args: argparse.Namespace) -> int:
    cfg = load_pipeline_from_args(args)
    print(summary(cfg))
    return 0

"""``edgert explain [NAME]``: the YAML reference, generated from the config classes.

Every stage, sink, source scheme and pipeline section is a typed config class
whose field docstrings describe the key, so the reference can never drift from
what the loader accepts.
"""
from __future__ import annotations

import argparse
from typing import Any, Dict, List, Tuple, Type

ORDER = 90


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("explain", help="show the YAML keys of a stage, sink, source or section",
                       description="Without NAME, list every stage/sink kind, source scheme and "
                                   "section. With NAME (e.g. letterbox, jsonl, file, models, "
                                   "runtime), show its keys, types, defaults and meaning.")
    p.add_argument("name", nargs="?", metavar="NAME")
    p.set_defaults(func=run)


def _sections() -> Dict[str, Type[Any]]:
    from edgert.config.schema import ModelConfig, PowerConfig, RuntimeConfig

    return {"models": ModelConfig, "runtime": RuntimeConfig, "power": PowerConfig}


def _catalogue() -> List[Tuple[str, str, Type[Any]]]:
    """(group, name, config class) for everything a pipeline file can name."""
    from edgert.sources.base import SOURCES
    from edgert.stage import SINKS, STAGES

    items: List[Tuple[str, str, Type[Any]]] = []
    items += [("section", n, c) for n, c in _sections().items()]
    items += [("source", n + "://", SOURCES.get(n).Config) for n in SOURCES.names()]
    items += [("stage", n, STAGES.get(n).Config) for n in STAGES.names()]
    items += [("sink", n, SINKS.get(n).Config) for n in SINKS.names()]
    return items


def _type_name(annotation: Any) -> str:
    from typing import get_args

    plain = getattr(annotation, "__name__", None)
    text = str(annotation) if get_args(annotation) or not plain else plain
    return text.replace("typing.", "").replace("pathlib.", "").replace("NoneType", "None").replace("edgert.config.schema.", "")


def describe(cls: Type[Any]) -> str:
    lines = []
    for name, info in cls.model_fields.items():
        if info.is_required():
            default = "required"
        elif info.default_factory is not None:
            default = "default: %r" % (info.default_factory(),)
        else:
            default = "default: %r" % (info.default,)
        lines.append("  %s (%s, %s)" % (name, _type_name(info.annotation), default))
        if info.description:
            for text in info.description.strip().splitlines():
                lines.append("      " + text.strip())
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from edgert.errors import UsageError
    from edgert.registry import did_you_mean

    items = _catalogue()
    if not args.name:
        for group in ("section", "source", "stage", "sink"):
            names = [n for g, n, _ in items if g == group]
            print("%-8s %s" % (group + "s:", ", ".join(names) or "-"))
        print("\nedgert explain NAME shows the keys of one of them.")
        return 0
    wanted = args.name.rstrip(":/")
    for group, name, cls in items:
        if name.rstrip(":/") == wanted:
            doc = (cls.__doc__ or "").strip().splitlines()
            print("%s %s%s" % (group, name, (": " + doc[0]) if doc else ""))
            print(describe(cls))
            return 0
    names = [n.rstrip(":/") for _, n, _ in items]
    raise UsageError("nothing named '%s'%s; run 'edgert explain' for the list"
                     % (args.name, did_you_mean(wanted, names)))

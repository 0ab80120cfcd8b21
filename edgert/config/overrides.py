"""``--set key.path=value`` overrides of a loaded pipeline document.

Paths use dots; list items are addressed by index (``stages.0.size``) or, for
lists of named items, by name (``stages.pre.size``, ``sources.street.uri``).
Values are typed the way YAML types them (``4``, ``true``, ``[416, 416]``), and
validated with the rest of the file afterwards.
"""
from __future__ import annotations

from typing import Any, List, Sequence, Tuple, Union

import yaml

from edgert.config.yamlsrc import KeyPath, Locations, format_path
from edgert.errors import UsageError
from edgert.registry import did_you_mean


def parse_override(text: str) -> Tuple[List[str], Any]:
    if "=" not in text:
        raise UsageError("--set %s: expected KEY.PATH=VALUE" % text)
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".")]
    if not key.strip() or any(not p for p in parts):
        raise UsageError("--set %s: empty key path" % text)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def _index(seq: List[Any], part: str, flag: str, where: KeyPath) -> int:
    if part.lstrip("-").isdigit():
        i = int(part)
        if not -len(seq) <= i < len(seq):
            raise UsageError("--set %s: %s has %d items, no index %d"
                             % (flag, format_path(where) or "document", len(seq), i))
        return i % len(seq)
    names = [item.get("name") for item in seq if isinstance(item, dict)]
    if part in names:
        return names.index(part)
    known = [str(n) for n in names if n is not None]
    raise UsageError("--set %s: %s has no item named '%s'%s; known: %s"
                     % (flag, format_path(where), part, did_you_mean(part, known),
                        ", ".join(known) or "none"))


def apply_overrides(doc: Any, overrides: Sequence[str], locs: Locations) -> Any:
    """Apply each ``--set`` in order; returns the (mutated) document."""
    for flag in overrides:
        parts, value = parse_override(flag)
        node: Any = doc
        where: KeyPath = ()
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            key: Union[str, int]
            if isinstance(node, list):
                key = _index(node, part, flag, where)
            elif isinstance(node, dict):
                key = part
            else:
                raise UsageError("--set %s: %s is a value, not a section"
                                 % (flag, format_path(where)))
            where = where + (key,)
            if last:
                node[key] = value
                locs.overridden[where] = flag
            else:
                if isinstance(node, dict) and key not in node:
                    node[key] = {}
                node = node[key]
    return doc

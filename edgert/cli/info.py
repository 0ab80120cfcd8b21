"""``edgert info [--json]``: what edgert runs on (Jetson module, L4T/JetPack, versions)."""
from __future__ import annotations

import argparse
import json
import sys

ORDER = 55


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="describe this machine: Jetson model, JetPack, versions",
                       description=__doc__)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_info)


def _info(args: argparse.Namespace) -> int:
    from edgert.platform.detect import detect

    data = detect().to_dict()
    if args.json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        return 0
    for key, value in data.items():
        if isinstance(value, dict):
            value = ", ".join("%s %s" % (k, v if v is not None else "-") for k, v in value.items())
        elif isinstance(value, list):
            value = "; ".join(json.dumps(v) if isinstance(v, dict) else str(v)
                              for v in value) or "-"
        sys.stdout.write("%-18s %s\n" % (key + ":", "-" if value is None else value))
    return 0

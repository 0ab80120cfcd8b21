"""``edgert bundle PIPELINE -o FILE.tar.gz``: a deploy bundle built on any machine.

The bundle holds the pipeline (input paths rewritten relative to it), its
models, Q/DQ variants, calibration caches and other input files, the edgert
wheel, a sha256 manifest and ``install.sh`` for the device.  Engines are
*not* included: TensorRT engines are built on the device (``install.sh`` runs
``edgert build``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ORDER = 85


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bundle", help="pack a pipeline, its models and edgert for a device",
                       description=__doc__)
    p.add_argument("pipeline", metavar="PIPELINE", help="pipeline YAML file")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE.tar.gz")
    p.add_argument("--wheel", type=Path, default=None,
                   help="edgert wheel to include (default: build one from this source tree)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from edgert.errors import UsageError
    from edgert.service.bundle import make_bundle

    if not args.output.name.endswith((".tar.gz", ".tgz")):
        raise UsageError("-o: '%s' should end in .tar.gz" % args.output)
    manifest = make_bundle(args.pipeline, args.output, wheel=args.wheel)
    size = sum(f["size"] for f in manifest["files"].values())
    sys.stdout.write("wrote %s: %d files, %.1f MB before compression; on the device: "
                     "tar xzf %s && sudo ./%s/install.sh\n"
                     % (args.output, len(manifest["files"]), size / 1e6, args.output.name,
                        args.output.name[:-7] if args.output.name.endswith(".tar.gz")
                        else args.output.stem))
    return 0

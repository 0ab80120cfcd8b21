"""``edgert dla-check MODEL.onnx``: predict DLA placement on the host, before any build."""
from __future__ import annotations

import argparse
import sys

ORDER = 60


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "dla-check", help="predict which layers TensorRT will run on DLA (no device needed)",
        description="Walk the ONNX graph with shapes inferred and predict, for every node, "
                    "whether TensorRT can run it on DLA under the documented rules of the "
                    "platform (Xavier: TRT 8.5.2, Orin: TRT 10.3). Prints a table with the "
                    "rule and offending value for every GPU node, the DLA subgraphs and the "
                    "GPU<->DLA transitions. A prediction, not a build: rules the reference "
                    "could not confirm are marked UNCONFIRMED.")
    p.add_argument("model", metavar="MODEL.onnx", help="ONNX model")
    p.add_argument("--platform", choices=("xavier", "orin"), default="orin",
                   help="Jetson generation (default: orin)")
    p.add_argument("--precision", choices=("fp16", "int8"), default="fp16",
                   help="DLA precision (default: fp16)")
    p.add_argument("--batch", type=int, default=None, metavar="N",
                   help="batch size for a dynamic leading dim (default: 1)")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=1x3xHxW",
                   help="pin a dynamic input shape (repeatable)")
    p.add_argument("--fold-pads", action="store_true",
                   help="assume TensorRT merges a zero Pad into the Conv it feeds "
                        "(UNCONFIRMED; without it such Pads are predicted on GPU)")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    p.add_argument("--gpu-only", action="store_true", help="list only nodes predicted on GPU")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgert.analysis.dla_check import check_model, render_table
    from edgert.analysis.onnx_graph import parse_shape_overrides
    from edgert.errors import UsageError
    from edgert.fsutil import atomic_write_text

    if args.batch is not None and args.batch < 1:
        raise UsageError("--batch %d: must be >= 1" % args.batch)
    report = check_model(args.model, args.platform, args.precision, args.batch,
                         parse_shape_overrides(args.input_shape), args.fold_pads)
    sys.stdout.write(render_table(report, gpu_only=args.gpu_only))
    if args.json:
        atomic_write_text(args.json, report.to_json())
    return 0

"""``edgert quantize MODEL.onnx --calib PATH --out OUT.onnx``: INT8 with an accuracy gate."""
from __future__ import annotations

import argparse
import sys
from typing import Any

ORDER = 61


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "quantize", help="INT8 post-training quantization for TensorRT, with an accuracy gate",
        description="Calibrate on real frames (an image folder or a video), write a "
                    "TensorRT-compatible Q/DQ ONNX model (symmetric int8, zero point 0, "
                    "per-channel weights), optionally a TensorRT calibration cache for DLA's "
                    "implicit INT8 path, and a report comparing INT8 with FP32 on held-out "
                    "frames. Exit 1 when --min-agreement is not met.")
    p.add_argument("model", metavar="MODEL.onnx", help="FP32 ONNX model")
    p.add_argument("--calib", required=True, metavar="PATH",
                   help="folder of images or a video file to sample frames from")
    p.add_argument("--out", required=True, metavar="OUT.onnx", help="Q/DQ model to write")
    p.add_argument("--pipeline", metavar="P", help="preprocess (and decode) with this pipeline's "
                                                  "own stages; needs --model")
    p.add_argument("--model", dest="model_name", metavar="NAME", help="model name in --pipeline")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V",
                   help="override a key of --pipeline (repeatable)")
    p.add_argument("--decoder", metavar="KIND",
                   help="decoder stage kind for the gate when no --pipeline is given")
    p.add_argument("--method", choices=("entropy", "minmax", "percentile"), default="entropy",
                   help="calibration method (default: entropy)")
    p.add_argument("--count", type=int, default=64, metavar="N",
                   help="calibration frames (default: 64)")
    p.add_argument("--held-out", type=int, default=16, metavar="M",
                   help="held-out frames for the accuracy gate, disjoint from calibration "
                        "(default: 16)")
    p.add_argument("--min-agreement", type=float, metavar="X",
                   help="fail (exit 1) when INT8/FP32 agreement on held-out frames is below X")
    p.add_argument("--keep-fp32", type=int, default=0, metavar="N",
                   help="run the per-layer sensitivity pass and keep the N worst layers in float")
    p.add_argument("--sensitivity-frames", type=int, default=4, metavar="K",
                   help="calibration frames used by the sensitivity pass (default: 4)")
    p.add_argument("--exclude", action="append", default=[], metavar="NODE",
                   help="keep this node in float (repeatable)")
    p.add_argument("--trt-cache", metavar="FILE", help="also write a TensorRT calibration cache")
    p.add_argument("--trt-version", default="8.5.2", metavar="X.Y.Z",
                   help="TensorRT version in the cache header (default 8.5.2 -> TRT-8502; "
                        "10.3.0 -> TRT-100300)")
    p.add_argument("--no-dla-equalize", dest="equalize_dla", action="store_false",
                   help="do not give concat/pooling/elementwise tensors the equal ranges "
                        "DLA's INT8 requires")
    p.add_argument("--report", metavar="FILE.json", help="write the JSON report here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edgert.analysis.onnx_graph import GraphView, load_model
    from edgert.errors import UsageError
    from edgert.quant import trt_cache
    from edgert.quant.feeds import make_preparer
    from edgert.quant.frames import load_frames
    from edgert.quant.quantize import QuantizeOptions, check_min_agreement, run_quantize

    check_min_agreement(args.min_agreement)
    trt_cache.version_code(args.trt_version)
    for flag, value, low in (("--count", args.count, 1), ("--held-out", args.held_out, 0),
                             ("--keep-fp32", args.keep_fp32, 0),
                             ("--sensitivity-frames", args.sensitivity_frames, 1)):
        if value < low:
            raise UsageError("%s %d: must be >= %d" % (flag, value, low))
    if args.min_agreement is not None and args.held_out == 0:
        raise UsageError("--min-agreement needs held-out frames (--held-out >= 1)")
    preparer = make_preparer(GraphView(load_model(args.model)), args.pipeline, args.model_name,
                             args.overrides, args.decoder)
    frames = load_frames(args.calib, args.count, args.held_out)
    opts = QuantizeOptions(
        model=Path(args.model), out=Path(args.out), method=args.method,
        trt_cache=Path(args.trt_cache) if args.trt_cache else None,
        trt_version=args.trt_version, report=Path(args.report) if args.report else None,
        keep_fp32=args.keep_fp32, sensitivity_frames=args.sensitivity_frames,
        exclude=args.exclude, equalize_dla=args.equalize_dla, min_agreement=args.min_agreement)
    report = run_quantize(opts, frames, preparer)
    sys.stdout.write(summary(report) + "\n")
    if report["passed"] is False:
        sys.stderr.write("edgert: INT8 agreement %.4f is below --min-agreement %g\n"
                         % (report["agreement"], args.min_agreement))
        return 1
    return 0


def summary(report: Any) -> str:
    gate = report["gate"]
    if gate["task"] == "detect":
        what = "%d/%d FP32 boxes matched (IoU>=0.5, same class), mean score drift %s" % (
            gate["matched_boxes"], gate["fp32_boxes"], gate["mean_score_drift"])
    elif gate["task"] == "classify":
        what = "top-1 equal on %d/%d frames" % (gate["same_top1"], gate["frames"])
    else:
        what = "no decoder: raw outputs only"
    agreement = "n/a" if report["agreement"] is None else "%.4f" % report["agreement"]
    kept = report["layers_kept_in_higher_precision"]
    parts = ["agreement %s on %d held-out frames (%s)" % (agreement, report["held_out_frames"],
                                                          what),
             "%d calibration frames, %s" % (report["calibration_frames"], report["method"]),
             "%d layers kept in float" % len(kept), "wrote %s" % report["out"]]
    if "trt_cache" in report:
        parts.append("cache %s (%s)" % (report["trt_cache"]["path"], report["trt_cache"]["header"]))
    return "; ".join(parts)

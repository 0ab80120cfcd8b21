"""``edgert sparsify MODEL.onnx --out OUT.onnx``: 2:4 pruning and what it costs on real frames."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Dict, Optional

ORDER = 62
log = logging.getLogger("edgert.cli.sparsify")

NOTE = ("one-shot 2:4 magnitude pruning without fine-tuning always costs accuracy; the "
        "output difference below says how much on these frames. Prune-and-retrain (NVIDIA "
        "ASP) recovers it. TensorRT needs BuilderFlag.SPARSE_WEIGHTS and an Ampere+ GPU "
        "(Orin); Xavier's Volta GPU has no sparse tensor cores.")


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "sparsify", help="2:4 structured pruning for TensorRT sparse kernels, with its cost",
        description="Prune eligible Conv/Gemm/MatMul weights to the 2:4 pattern TensorRT's "
                    "sparse kernels need (2 zeros in every 4 input channels), print the "
                    "per-layer eligibility table, and measure the output difference against "
                    "the dense model on real frames. No fine-tuning: expect an accuracy loss.")
    p.add_argument("model", metavar="MODEL.onnx", help="FP32 ONNX model")
    p.add_argument("--out", required=True, metavar="OUT.onnx", help="pruned model to write")
    p.add_argument("--report", metavar="FILE.json", help="write the JSON report here")
    p.add_argument("--frames", metavar="PATH",
                   help="image folder or video to measure the output difference on "
                        "(default: the --pipeline's first file/images source)")
    p.add_argument("--count", type=int, default=8, metavar="N",
                   help="frames to measure on (default: 8)")
    p.add_argument("--pipeline", metavar="P", help="preprocess/decode with this pipeline's stages")
    p.add_argument("--model", dest="model_name", metavar="NAME", help="model name in --pipeline")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V",
                   help="override a key of --pipeline (repeatable)")
    p.add_argument("--decoder", metavar="KIND", help="decoder stage kind without --pipeline")
    p.add_argument("--exclude", action="append", default=[], metavar="NODE",
                   help="leave this node dense (repeatable)")
    p.set_defaults(func=run)


def _frames_path(args: argparse.Namespace) -> Optional[Path]:
    if args.frames:
        return Path(args.frames)
    if args.pipeline:
        from edgert.config.loader import load_pipeline
        from edgert.quant.feeds import pipeline_frames_path

        return pipeline_frames_path(load_pipeline(args.pipeline, overrides=args.overrides))
    return None


def measure(args: argparse.Namespace, dense: Any, sparse: Any) -> Optional[Dict[str, Any]]:
    """Output difference dense vs pruned on real frames (None when no frames were given)."""
    from edgert.analysis.onnx_graph import GraphView
    from edgert.quant.feeds import make_preparer
    from edgert.quant.frames import load_frames
    from edgert.quant.quantize import judge, prepare_frames
    from edgert.quant.sensitivity import run_all, session

    path = _frames_path(args)
    if path is None:
        log.warning("no --frames (and no pipeline source): output difference not measured")
        return None
    preparer = make_preparer(GraphView(dense), args.pipeline, args.model_name, args.overrides,
                             args.decoder)
    frames = load_frames(path, args.count, 0)
    preparer.start()
    try:
        data = prepare_frames(frames, preparer)
        batches = [preparer.batch(f, i) for i, f in enumerate(frames.calibration)]
        ref = run_all(session(dense), data.calibration)
        test = run_all(session(sparse), data.calibration)
        result = judge(preparer, batches, ref, test)
    finally:
        preparer.stop()
    result["frames"] = len(frames.calibration)
    result["source"] = frames.source
    return result


def run(args: argparse.Namespace) -> int:
    from edgert.analysis import sparsity
    from edgert.analysis.onnx_graph import load_model, model_bytes
    from edgert.errors import UsageError
    from edgert.fsutil import atomic_write_bytes, atomic_write_text

    if args.count < 1:
        raise UsageError("--count %d: must be >= 1" % args.count)
    dense = load_model(args.model)
    sparse, plans = sparsity.sparsify(dense, args.exclude)
    diff = measure(args, dense, sparse)
    atomic_write_bytes(args.out, model_bytes(sparse))
    report = {"model": args.model, "out": args.out, **sparsity.summary(plans),
              "output_difference": diff, "note": NOTE,
              "layers": sparsity.plans_as_dicts(plans)}
    if args.report:
        atomic_write_text(args.report, json.dumps(report, indent=2) + "\n")
    sys.stdout.write(sparsity.render_table(plans))
    sys.stdout.write(_summary(report) + "\n")
    return 0


def _summary(report: Dict[str, Any]) -> str:
    text = "pruned %d of %d layers (%.1f%% of weights zeroed); wrote %s" % (
        report["pruned_layers"], report["weighted_layers"],
        100 * report["fraction_of_params_pruned"], report["out"])
    diff = report["output_difference"]
    if diff is None:
        return text + "; output difference not measured (pass --frames)"
    worst = min((v["cosine"] for v in diff["outputs"].values()), default=1.0)
    text += "; on %d frames: lowest output cosine %.4f" % (diff["frames"], worst)
    if diff.get("agreement") is not None:
        text += ", %s agreement with dense %.4f" % (diff["task"], diff["agreement"])
    return text + " (no fine-tuning: accuracy drops)"

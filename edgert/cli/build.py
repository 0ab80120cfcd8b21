"""``edgert build PIPELINE``: build (or find cached) every TensorRT engine a pipeline needs.

Run on the device: engines are specific to the GPU, DLA core, TensorRT and L4T
release.  Prints each engine's placement table (which layers run on DLA, which
fell back to the GPU, at what precision) and the build durations.
"""
from __future__ import annotations

import argparse
import logging
import time
from typing import TYPE_CHECKING, List, Optional, Tuple

from edgert.cli.common import add_pipeline_arguments, load_pipeline_from_args
from edgert.config.schema import ModelConfig, PipelineConfig
from edgert.errors import UsageError
from edgert.registry import did_you_mean

if TYPE_CHECKING:  # pragma: no cover
    from edgert.engines.tensorrt.compat import Features

ORDER = 15
log = logging.getLogger("edgert.cli.build")

Target = Tuple[str, ModelConfig, str]


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("build", help="build the TensorRT engines of a pipeline (on the device)",
                       description="Build every TensorRT engine the pipeline needs (each model "
                                   "on each of its devices) or reuse the cached one; prints the "
                                   "per-layer placement and durations.")
    add_pipeline_arguments(p)
    p.add_argument("--model", action="append", default=[], metavar="NAME",
                   help="build only this model (repeatable)")
    p.add_argument("--force", action="store_true", help="rebuild even when a cached engine exists")
    p.add_argument("--max-gpu-fallback", type=int, default=None, metavar="N",
                   help="fail when more than N layers of a DLA engine fall back to the GPU")
    p.set_defaults(func=run)


def targets(cfg: PipelineConfig, names: List[str]) -> List[Target]:
    """(model, config, device) for every TensorRT engine to build."""
    for name in names:
        if name not in cfg.models:
            known = sorted(cfg.models)
            raise UsageError("--model %s: no such model%s; models: %s"
                             % (name, did_you_mean(name, known), ", ".join(known) or "none"))
    out: List[Target] = []
    for name, model in cfg.models.items():
        if names and name not in names:
            continue
        if model.backend == "onnxruntime":
            log.info("model %s: backend onnxruntime, nothing to build", name)
            continue
        for device in model.devices():
            if device == "cpu":
                log.info("model %s: device cpu runs on ONNX Runtime, nothing to build", name)
                continue
            out.append((name, model, device))
    return out


def _platform_note(model: ModelConfig) -> Optional[str]:
    """A warning when the model's preset targets another board family."""
    from edgert.config.presets import preset_platform
    from edgert.platform.detect import detect

    want = preset_platform(model)
    if want is None:
        return None
    info = detect(query_tools=False).to_dict()
    here = ("%s %s" % (info.get("chip_family") or "", info.get("model") or "")).strip().lower()
    if here and want.split("-")[0] not in here:
        return "build preset targets %s but this is %s" % (want, here)
    return None


def run(args: argparse.Namespace) -> int:
    from edgert.engines.tensorrt.compat import load
    from edgert.engines.tensorrt.loader import _require_gpu

    load_pipeline_from_args(args, check_files=False)  # config errors first (exit 2)
    _, feats = load("edgert build")  # one line naming how to get TensorRT (exit 1)
    _require_gpu()
    cfg = load_pipeline_from_args(args)
    todo = targets(cfg, args.model)
    if not todo:
        print("%s: no TensorRT engines to build" % cfg.path)
        return 0
    return _build_all(todo, feats, args)


def _build_all(todo: List[Target], feats: "Features", args: argparse.Namespace) -> int:
    from edgert.engines.tensorrt.manager import ensure_engine
    from edgert.engines.tensorrt.placement import table

    start = time.monotonic()
    rows = []
    for i, (name, model, device) in enumerate(todo, start=1):
        note = _platform_note(model)
        if note:
            log.warning("model %s: %s", name, note)
        print("[%d/%d] %s on %s (%s, batch %d)" % (i, len(todo), name, device, model.precision,
                                                   model.batch), flush=True)
        rec = ensure_engine(name, model, device, feats, force=args.force,
                            max_gpu_fallback=args.max_gpu_fallback)
        print(table(rec.placement))
        how = "built in %.1fs" % rec.seconds if rec.built else "cached"
        print("%s: %s -> %s\n" % (name, how, rec.entry.engine), flush=True)
        rows.append((name, device, how, rec.placement.gpu_fallback))
    print("%d engine%s ready in %.1fs:" % (len(rows), "" if len(rows) == 1 else "s",
                                           time.monotonic() - start))
    for name, device, how, fallback in rows:
        extra = ", %d GPU fallback layers" % fallback if device.startswith("dla") else ""
        print("  %-16s %-6s %s%s" % (name, device, how, extra))
    return 0

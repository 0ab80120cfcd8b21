"""``edgert inspect ENGINE_OR_PIPELINE``: per-layer placement of built engines, optionally timed.

For an ``.engine`` file the report comes from the live engine inspector when
TensorRT is installed, else from the sidecar written at build time (so an
engine copied off a Jetson can be inspected anywhere).  For a pipeline, every
engine it needs is looked up in the cache (nothing is built).  ``--profile``
runs the engine with an ``IProfiler`` and adds per-layer times: which layers
fused, which tactics won, where the time goes.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

from edgert.errors import RuntimeFailure, UsageError

ORDER = 16
log = logging.getLogger("edgert.cli.inspect")


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("inspect", help="show per-layer device/precision of built engines",
                       description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("target", metavar="ENGINE_OR_PIPELINE",
                   help="an .engine file or a pipeline YAML")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="pipeline override, as for edgert run")
    p.add_argument("--profile", action="store_true",
                   help="run each engine with TensorRT's profiler and add per-layer times")
    p.add_argument("--runs", type=int, default=20, metavar="N", help="profiled runs (default 20)")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write JSON here")
    p.set_defaults(func=run)


def _engine_report(engine: Path, profile: bool, runs: int) -> Dict[str, Any]:
    from edgert._lazy import available
    from edgert.engines.tensorrt.cache import read_sidecar
    from edgert.engines.tensorrt.placement import PlacementReport

    if not engine.is_file():
        raise UsageError("engine not found: %s" % engine)
    meta = read_sidecar(engine.with_suffix(".json")) or {}
    device = str(meta.get("device") or "gpu")
    placement = meta.get("placement")
    report = PlacementReport.from_dict(placement) if placement else None
    source = "sidecar"
    if available("tensorrt") and (profile or report is None):
        report, source = _live_report(engine, device, report), "engine inspector"
    if report is None:
        raise RuntimeFailure("%s has no sidecar (%s) and TensorRT is not installed to inspect it"
                             % (engine, engine.with_suffix(".json").name))
    if profile:
        _add_times(engine, device, report, runs)
    return {"engine": str(engine), "name": meta.get("name"), "device": device,
            "precision": meta.get("precision"), "batch": meta.get("batch"),
            "tensorrt": (meta.get("inputs") or {}).get("tensorrt"), "source": source,
            "build_seconds": meta.get("build_seconds"), "placement": report.to_dict(),
            "_report": report}


def _live_report(engine: Path, device: str, old: Any) -> Any:
    from edgert.engines.tensorrt.loader import _require_gpu
    from edgert.engines.tensorrt.manager import inspect_plan

    _require_gpu()
    layers = old.network_layers if old is not None else 0
    fallback = old.fallback_layers if old is not None else []
    return inspect_plan(engine.read_bytes(), device, layers, fallback)


def _add_times(engine: Path, device: str, report: Any, runs: int) -> None:
    from edgert.engines.tensorrt.builder import make_logger
    from edgert.engines.tensorrt.compat import load
    from edgert.engines.tensorrt.runtime import TrtEngine

    load("edgert inspect --profile")
    eng = TrtEngine(engine.read_bytes(), device, make_logger([]))
    try:
        io = eng.new_io(eng.max_batch)
        rng = np.random.default_rng(0)
        for arr in io.inputs.values():
            arr[...] = rng.random(arr.shape).astype(arr.dtype)
        times = eng.profile(io, eng.max_batch, runs=max(1, runs))
    finally:
        eng.close()
    for layer in report.layers:
        layer.time_ms = times.get(layer.name)


def _pipeline_reports(args: argparse.Namespace) -> List[Dict[str, Any]]:
    from edgert.cli.build import targets
    from edgert.config.loader import load_pipeline
    from edgert.engines.tensorrt.cache import verify
    from edgert.engines.tensorrt.compat import load
    from edgert.engines.tensorrt.loader import _require_gpu
    from edgert.engines.tensorrt.manager import entry_for, platform_facts

    cfg = load_pipeline(args.target, overrides=args.overrides)
    _, feats = load("edgert inspect")
    _require_gpu()
    facts = platform_facts()
    out = []
    for name, model, device in targets(cfg, []):
        entry = entry_for(name, model, device, feats, facts)
        why = verify(entry)
        if why is not None:
            raise RuntimeFailure("model %s on %s: no usable engine (%s); run edgert build %s"
                                 % (name, device, why, args.target))
        out.append(_engine_report(entry.engine, args.profile, args.runs))
    return out


def run(args: argparse.Namespace) -> int:
    from edgert.engines.tensorrt.placement import table
    from edgert.fsutil import atomic_write_text

    target = Path(args.target)
    if target.suffix in (".yaml", ".yml"):
        reports = _pipeline_reports(args)
    else:
        reports = [_engine_report(target, args.profile, args.runs)]
    for rep in reports:
        print("%s (%s on %s, %s, from the %s)" % (rep["engine"], rep.get("name") or "?",
                                                   rep["device"], rep.get("precision") or "?",
                                                   rep["source"]))
        print(table(rep.pop("_report")) + "\n")
    if args.json is not None:
        atomic_write_text(args.json, json.dumps({"engines": reports}, indent=2) + "\n")
        log.info("wrote %s", args.json)
    return 0

#!/usr/bin/env python3
"""Sweep streams 1..8 and batch sizes through ``edgert bench``; write one JSON file.

    PYTHONPATH=. python bench/sweep.py pipelines/demo.yaml --batches 1 2 4 \
        --streams 1 2 3 4 5 6 7 8 --frames 200 --repeats 2 --out bench/sweep.json

Each (batch, streams) cell runs the pipeline mode; the raw engine and naive loop
run once per batch size (they do not depend on the stream count).  Medians over
``--repeats``.  Figures taken on a shared machine are noisy: repeat and compare.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgert.config.loader import load_pipeline  # noqa: E402
from edgert.fsutil import atomic_write_text  # noqa: E402
from edgert.runtime.bench import Bench, BenchOptions  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pipeline")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--streams", type=int, nargs="+", default=list(range(1, 9)))
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--out", type=Path, default=Path("bench/sweep.json"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    cells: List[Dict[str, Any]] = []
    for batch in args.batches:
        cfg = load_pipeline(args.pipeline, overrides=args.overrides)
        bench = Bench(cfg, BenchOptions(streams=max(args.streams), frames=args.frames,
                                        repeats=args.repeats, overload=False, batch=batch))
        from edgert.runtime.bench import decode_frames

        bench.frames = decode_frames(cfg, args.frames)
        raw = statistics.median([bench.raw()["fps"] for _ in range(args.repeats)])
        naive = statistics.median([bench.naive()["fps"] for _ in range(args.repeats)])
        for k in args.streams:
            runs = [bench.pipeline_run(k) for _ in range(args.repeats)]
            fps = statistics.median([r.fps for r in runs])
            p99 = statistics.median([r.latency_ms["p99"] or 0.0 for r in runs])
            cells.append({"batch": batch, "streams": k, "pipeline_fps": fps, "raw_fps": raw,
                          "naive_fps": naive, "ratio_raw": fps / raw, "latency_p99_ms": p99,
                          "runs_fps": [r.fps for r in runs]})
            print("batch %d streams %d: %.1f fps (raw %.1f, naive %.1f), p99 %.0f ms"
                  % (batch, k, fps, raw, naive, p99), flush=True)
    result = {"pipeline": args.pipeline, "frames": args.frames, "repeats": args.repeats,
              "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cells": cells,
              "monotonic_in_streams": _monotonic(cells)}
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print("wrote %s" % args.out)
    return 0


def _monotonic(cells: List[Dict[str, Any]], tolerance: float = 0.05) -> Dict[str, bool]:
    """Per batch size: does throughput never fall (beyond noise) as streams are added?"""
    out = {}
    for batch in sorted({c["batch"] for c in cells}):
        fps = [c["pipeline_fps"] for c in cells if c["batch"] == batch]
        best = 0.0
        ok = True
        for f in fps:
            ok = ok and f >= best * (1.0 - tolerance)
            best = max(best, f)
        out[str(batch)] = ok
    return out


if __name__ == "__main__":
    sys.exit(main())

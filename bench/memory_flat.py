#!/usr/bin/env python3
"""Memory flatness: RSS after 20,000 frames of a looping file source vs after 2,000.

    PYTHONPATH=. python bench/memory_flat.py pipelines/demo.yaml --out bench/memory.json

Runs the real threaded runtime on the pipeline's first source with ``loop: true``
(real decode, real sinks unless --null-sink), samples the process RSS when the
sinks have received ``--early`` and ``--late`` frames, then stops gracefully.
Passes when late RSS is within ``--tolerance`` (10%) of early RSS.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgert.batch import Batch  # noqa: E402
from edgert.config.loader import load_pipeline  # noqa: E402
from edgert.fsutil import atomic_write_text  # noqa: E402
from edgert.runtime.executor import ThreadedExecutor  # noqa: E402
from edgert.stage import Sink, SinkConfig, StageContext  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


class RssProbe(Sink):
    """Counts frames at the sinks, records RSS at the marks, stops the run at the last."""

    def __init__(self, ctx: StageContext, input_name: str, marks: List[int]) -> None:
        super().__init__(SinkConfig(kind="rss-probe", name="rss-probe", input=input_name), ctx)
        self.marks = sorted(marks)
        self.seen = 0
        self.samples: Dict[int, float] = {}
        self.executor: Optional[ThreadedExecutor] = None
        self.t0 = time.monotonic()

    def write(self, batch: Batch) -> None:
        self.seen += len(batch)
        for m in self.marks:
            if m not in self.samples and self.seen >= m:
                self.samples[m] = rss_mb()
                print("%6d frames: RSS %.1f MB (%.0fs)" % (self.seen, self.samples[m],
                                                           time.monotonic() - self.t0), flush=True)
        if len(self.samples) == len(self.marks) and self.executor is not None:
            self.executor.request_stop()
            self.executor = None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pipeline")
    ap.add_argument("--early", type=int, default=2000)
    ap.add_argument("--late", type=int, default=20000)
    ap.add_argument("--tolerance", type=float, default=0.10)
    ap.add_argument("--null-sink", action="store_true", help="drop the pipeline's own sinks")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--out", type=Path, default=Path("bench/memory.json"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    cfg = load_pipeline(args.pipeline, overrides=args.overrides)
    cfg.sources = cfg.sources[:1]
    cfg.sources[0].loop = True
    sink_input = cfg.sinks[0].input if cfg.sinks else cfg.stages[-1].name
    probe = RssProbe(StageContext(cfg), sink_input, [args.early, args.late])
    if args.null_sink:
        cfg.sinks = []
    from edgert.runtime.build import make_sinks

    sinks = make_sinks(cfg, StageContext(cfg)) + [probe]
    ex = ThreadedExecutor(cfg, sinks=sinks)
    probe.executor = ex
    start_rss = rss_mb()
    summary = ex.run()
    early, late = probe.samples.get(args.early), probe.samples.get(args.late)
    growth = (late - early) / early if early and late else None
    result = {"pipeline": args.pipeline, "start_rss_mb": start_rss, "early_frames": args.early,
              "late_frames": args.late, "rss_early_mb": early, "rss_late_mb": late,
              "growth": growth, "flat": growth is not None and growth <= args.tolerance,
              "frames_out": summary.frames_out, "error": summary.error}
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if result["flat"] else 1


if __name__ == "__main__":
    sys.exit(main())

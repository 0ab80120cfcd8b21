"""``edgert bench PIPELINE``: raw engine vs pipeline vs naive loop, on the same frames."""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any, Dict, List

from edgert.cli.common import add_pipeline_arguments, load_pipeline_from_args

ORDER = 40
log = logging.getLogger("edgert.cli.bench")


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "bench", help="measure engine, pipeline and naive throughput on the same frames",
        description="Decode the first source once, then measure (a) raw engine throughput, "
                    "(b) the full pipeline with K copies of the source, (c) a naive "
                    "one-frame-at-a-time loop, and end-to-end latency under overload.")
    add_pipeline_arguments(p)
    p.add_argument("--streams", type=int, default=4, metavar="K",
                   help="copies of the first source in the pipeline run (default 4)")
    p.add_argument("--frames", type=int, default=400, metavar="N",
                   help="frames per stream (decoded once, replayed; default 400)")
    p.add_argument("--repeats", type=int, default=1, metavar="R",
                   help="repeat every mode R times and report medians (default 1)")
    p.add_argument("--batch", type=int, default=None, help="override the model's batch size")
    p.add_argument("--with-sinks", action="store_true",
                   help="keep the pipeline's sinks (default: a null sink)")
    p.add_argument("--no-overload", dest="overload", action="store_false",
                   help="skip the live-overload latency run")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="write results as JSON")
    p.add_argument("--plot", type=Path, default=None, metavar="FILE.png",
                   help="also sweep 1..K streams and plot fps vs streams (needs matplotlib)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgert.fsutil import atomic_write_text
    from edgert.runtime.bench import Bench, BenchOptions

    if args.plot is not None:
        from edgert._lazy import require

        require("matplotlib", "bench --plot")
    cfg = load_pipeline_from_args(args)
    opts = BenchOptions(streams=args.streams, frames=args.frames, with_sinks=args.with_sinks,
                        repeats=args.repeats, overload=args.overload, batch=args.batch)
    bench = Bench(cfg, opts)
    result = bench.run()
    if args.plot is not None:
        result["sweep"] = _sweep(bench, args.streams)
        _plot(result, args.plot)
    text = json.dumps(result, indent=2, sort_keys=True, default=str)
    if args.json is not None:
        atomic_write_text(args.json, text + "\n")
        log.info("wrote %s", args.json)
    print(_summary(result))
    telemetry = result["platform"].get("telemetry")
    if telemetry:
        from edgert.platform.telemetry import format_summary

        print(format_summary(telemetry, result["pipeline_fps"]))
    return 0


def _sweep(bench: Any, max_streams: int) -> List[Dict[str, float]]:
    rows = []
    for k in range(1, max_streams + 1):
        fps = [bench.pipeline_run(k).fps for _ in range(bench.opts.repeats)]
        fps.sort()
        rows.append({"streams": k, "pipeline_fps": fps[len(fps) // 2]})
    return rows


def _plot(result: Dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgert.fsutil import atomic_write_bytes

    xs = [r["streams"] for r in result["sweep"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(xs, [r["pipeline_fps"] for r in result["sweep"]], "o-", label="pipeline")
    ax.axhline(result["raw_fps"], color="g", ls="--", label="raw engine")
    ax.axhline(result["naive_fps"], color="r", ls=":", label="naive loop")
    ax.set_xlabel("streams")
    ax.set_ylabel("frames / s (all streams)")
    ax.set_title("%s, batch %d" % (result["pipeline"], result["batch"]))
    ax.set_ylim(bottom=0)
    ax.legend()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _summary(r: Dict[str, Any]) -> str:
    lat = r["latency_ms"]
    line = ("%d streams, batch %d: raw %.1f fps, pipeline %.1f fps (%.2fx raw, %.2fx naive), "
            "naive %.1f fps; latency p50 %s ms p99 %s ms; %.0f bytes copied/frame; "
            "peak RSS %s MB" % (r["streams"], r["batch"], r["raw_fps"], r["pipeline_fps"],
                                r["ratio_raw"] or 0, r["ratio_naive"] or 0, r["naive_fps"],
                                _ms(lat["p50"]), _ms(lat["p99"]), r["bytes_copied_per_frame"],
                                _ms(r["peak_rss_mb"])))
    over = r.get("overload")
    if over:
        line += "; overload p99 %s ms = %.2fx batch latency" % (
            _ms(over["latency_ms"]["p99"]), over["p99_over_batch_latency"] or 0)
    return line


def _ms(v: Any) -> str:
    return "n/a" if v is None else "%.1f" % v

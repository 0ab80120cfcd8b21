"""``edgert run PIPELINE``: run a pipeline until its sources end (or Ctrl-C / SIGTERM).

Prints one summary line at the end: frames, rate, frames per stream and
detections per class.  Exit 0 also when stopped by a signal (the sinks were
flushed and closed); 1 for runtime failures, 2 for configuration errors.
"""
from __future__ import annotations

import argparse

from edgert.cli.common import add_pipeline_arguments, load_pipeline_from_args

ORDER = 10


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("run", help="run a pipeline (sources -> stages -> sinks)",
                       description="Run a pipeline file until its sources end or Ctrl-C/SIGTERM; "
                                   "prints a one-line summary.")
    add_pipeline_arguments(p)
    p.add_argument("--max-frames", type=_positive, default=None, metavar="N",
                   help="stop each source after N frames")
    p.add_argument("--executor", choices=("auto", "threaded", "sequential"), default=None,
                   help="threaded (concurrent streams, batches, engine instances; the default) "
                        "or sequential (one thread); overrides runtime.executor")
    p.set_defaults(func=run)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("'%s' is not a whole number" % text) from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1, got %d" % value)
    return value


def run(args: argparse.Namespace) -> int:
    from edgert.platform.session import platform_session
    from edgert.runtime.executor import create_executor
    from edgert.runtime.observer import default_observers

    cfg = load_pipeline_from_args(args)
    executor = create_executor(cfg, args.executor, max_frames=args.max_frames,
                               observer=default_observers())
    # power: applied for the run and always restored; telemetry sampled into the same metrics
    with platform_session(cfg.power, executor.metrics) as plat:
        report = executor.run()
    print(report.summary_line(), flush=True)
    platform_line = plat.summary_line(report.fps)
    if platform_line:
        print(platform_line, flush=True)
    return 0

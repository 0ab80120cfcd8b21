"""Subprocess entry for signal/exit tests: run a pipeline of test doubles in the foreground.

    python -m tests.runtime.serve_doubles OUT.jsonl [--fail-at-frame K]

Writes one JSON line per frame (flushed per batch) and, at the end, one
``{"summary": ...}`` line; exits like ``edgert run``: 0 when the run ended or
was stopped by a signal, 1 with one ``edgert: ...`` line when a stage failed.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from edgert.batch import Batch
from edgert.runtime.executor import ThreadedExecutor
from edgert.stage import Sink, SinkConfig, StageContext
from tests.runtime.doubles import fake_factory, pipeline


class JsonLines(Sink):
    def __init__(self, path: Path, ctx: StageContext) -> None:
        super().__init__(SinkConfig(kind="jsonl-double", name="jsonl", input="det"), ctx)
        self.path = path

    def start(self) -> None:
        self.f = open(self.path, "w")

    def write(self, batch: Batch) -> None:
        for i in range(len(batch)):
            self.f.write(json.dumps({"source": batch.source_name(i),
                                     "frame": int(batch.frame_index[i])}) + "\n")
        self.f.flush()

    def stop(self) -> None:
        self.f.close()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="edgert: %(message)s")
    out = Path(sys.argv[1])
    post = ""
    if "--fail-at-frame" in sys.argv:
        post = ", fail_at_frame: %s" % sys.argv[sys.argv.index("--fail-at-frame") + 1]
    cfg = pipeline(["name: a, uri: 'test://a', frames: 1000000, delay_ms: 2",
                    "name: b, uri: 'test://b', frames: 1000000, delay_ms: 3"], batch=2, post=post)
    sink = JsonLines(out, StageContext(cfg))
    summary = ThreadedExecutor(cfg, engine_factory=fake_factory(), sinks=[sink]).run_report()
    with open(out, "a") as f:
        f.write(json.dumps({"summary": [[s.name, s.frames_in, s.frames_out, s.frames_dropped]
                                        for s in summary.streams], "stopped": summary.stopped})
                + "\n")
    if summary.error:
        sys.stderr.write("edgert: %s\n" % summary.error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

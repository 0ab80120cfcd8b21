"""``edgert bench``: the engine's ceiling, the pipeline, and a naive loop, on the same frames.

The first source is decoded once into memory; every mode then replays those
frames, so decode speed and disk never differ between modes:

(a) ``raw``: inference only, on preallocated batches filled with real
    preprocessed frames, every engine instance busy at once (the ceiling);
(b) ``pipeline``: the threaded runtime with K copies of the source (a null
    sink unless ``with_sinks``), files semantics (nothing dropped);
(c) ``naive``: read, preprocess, infer, decode one frame at a time, through
    the same stages and engine, as a user would write it;
(d) ``overload`` (optional): K live copies paced to 1.5x the raw throughput
    with ``drop_oldest``: end-to-end latency versus the engine's batch latency.

Numbers are medians over ``repeats``.  Memory is process peak RSS; bytes copied
come from the engines' own counters plus copies the runtime had to make.
"""
from __future__ import annotations

import logging
import statistics
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from edgert.batch import Batch
from edgert.config.schema import PipelineConfig
from edgert.errors import RuntimeFailure, UsageError
from edgert.progress import Progress
from edgert.runtime.build import Builder, EngineFactory, make_sources
from edgert.runtime.executor import ThreadedExecutor
from edgert.runtime.graph import default_engine_factory
from edgert.runtime.report import RunReport
from edgert.runtime.metrics import Metrics
from edgert.runtime.plan import run_chain
from edgert.runtime.pool import SlotPool
from edgert.sources.base import Frame, Source, SourceConfig
from edgert.stage import Sink, SinkConfig, StageContext

log = logging.getLogger("edgert.runtime.bench")


@dataclass
class BenchOptions:
    streams: int = 4
    frames: int = 400
    with_sinks: bool = False
    repeats: int = 1
    overload: bool = True
    batch: Optional[int] = None  # override the model's batch


class ReplaySource(Source):
    """Frames from memory: ``count`` frames, optionally paced at ``fps`` (a live camera)."""

    def __init__(self, name: str, frames: Sequence[np.ndarray], count: int,
                 fps: Optional[float] = None) -> None:
        super().__init__(SourceConfig(name=name, uri="replay://" + name), Path("."))
        self._frames = frames
        self._count = count
        self._fps = fps
        self._i = 0
        self._t0 = 0.0

    def open(self) -> None:
        self._t0 = time.monotonic()

    def read(self) -> Optional[Frame]:
        if self._i >= self._count:
            return None
        if self._fps:
            due = self._t0 + self._i / self._fps
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        img = self._frames[self._i % len(self._frames)]
        fr = Frame(img, self._i, self._i / 30.0, time.monotonic())
        self._i += 1
        return fr

    def close(self) -> None:
        pass


class LiveReplaySource(ReplaySource):
    """A replay that behaves like a camera: ``drop_oldest`` applies under ``auto``."""

    live = True


def replay_source(name: str, frames: Sequence[np.ndarray], count: int, live: bool = False,
                  fps: Optional[float] = None) -> ReplaySource:
    cls = LiveReplaySource if live else ReplaySource
    return cls(name, frames, count, fps)


class NullSink(Sink):
    """Consumes batches; the pipeline's real sinks are replaced by one of these."""

    def write(self, batch: Batch) -> None:
        pass


def decode_frames(pipeline: PipelineConfig, count: int) -> List[np.ndarray]:
    """Decode up to ``count`` frames of the first source (fewer if the stream is shorter)."""
    src = make_sources(pipeline)[0]
    frames: List[np.ndarray] = []
    src.open()
    try:
        with Progress("decoding %s" % src.name, total=count) as prog:
            while len(frames) < count:
                fr = src.read()
                if fr is None:
                    break
                frames.append(np.ascontiguousarray(fr.image))
                prog.advance()
    finally:
        src.close()
    if not frames:
        raise RuntimeFailure("source '%s' produced no frames to benchmark" % src.name)
    return frames


def _peak_rss_mb() -> Optional[float]:
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


def _platform_info(engine_desc: Dict[str, Any]) -> Dict[str, Any]:
    mode = "n/a"
    try:
        from edgert.platform import detect

        info = detect.detect(query_tools=True)
        if info.power_mode and info.power_mode.get("name"):
            mode = str(info.power_mode["name"])
    except Exception as exc:  # noqa: BLE001 - platform detection is best effort here
        log.debug("power mode unavailable: %s", exc)
    return {"power_mode": mode, "backend": engine_desc.get("backend", "n/a"),
            "device": engine_desc.get("device", "n/a"), "engine": engine_desc}


class Bench:
    """One benchmark session: engines and frames are prepared once, modes reuse them."""

    def __init__(self, pipeline: PipelineConfig, opts: BenchOptions,
                 engine_factory: Optional[EngineFactory] = None) -> None:
        if opts.streams < 1 or opts.frames < 1 or opts.repeats < 1:
            raise UsageError("--streams, --frames and --repeats must be at least 1")
        if opts.batch is not None:
            for m in pipeline.models.values():
                m.batch = opts.batch
        self.pipeline = pipeline
        self.opts = opts
        self.factory = engine_factory or default_engine_factory()
        self.frames: List[np.ndarray] = []

    # ------------------------------------------------------------ (a) raw engine
    def raw(self) -> Dict[str, float]:
        """Inference only, every instance in its own thread, on real preprocessed input."""
        with ExitStack() as stack:
            b = Builder(self.pipeline, self.factory, stack)
            if b.plan.model is None:
                raise UsageError("bench needs a pipeline with a model stage")
            devices = self.pipeline.models[b.plan.model].devices()
            engines = [b.engine(b.plan.model, d) for d in devices]
            batch = min(self.pipeline.models[b.plan.model].batch, engines[0].max_batch)
            pre = b.stages(b.plan.pre, b.context())
            ios = []
            for eng in engines:
                io = eng.new_io(batch)
                imgs = [self.frames[i % len(self.frames)] for i in range(batch)]
                sample = Batch.of_frames(imgs, [0] * batch, range(batch), [0.0] * batch,
                                         [0.0] * batch, ("s0",))
                sample.tensor = io.inputs[eng.inputs[0].name][:batch]
                run_chain(pre, {"sources": sample}, lambda s, t: None)
                ios.append(io)
            total = max(self.opts.frames, batch * 8)
            iters = max(2, -(-total // (batch * len(engines))))
            for eng, io in zip(engines, ios):  # warm-up: first runs allocate arenas
                eng.run(io, batch)
            times: List[float] = []
            lock = threading.Lock()

            def work(k: int) -> None:
                for _ in range(iters):
                    t0 = time.perf_counter()
                    engines[k].run(ios[k], batch)
                    with lock:
                        times.append(time.perf_counter() - t0)

            threads = [threading.Thread(target=work, args=(k,), name="raw:%d" % k)
                       for k in range(len(engines))]
            t0, c0 = time.perf_counter(), time.process_time()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            self.engine_desc = engines[0].describe()
        frames = iters * batch * len(engines)
        return {"fps": frames / wall, "cpu_fps": frames / max(cpu, 1e-9),
                "batch_ms": 1000.0 * statistics.median(times),
                "batch": float(batch)}

    # ------------------------------------------------------------ (c) naive loop
    def naive(self) -> Dict[str, float]:
        """One frame at a time through the same stages, letting each allocate as it likes."""
        with ExitStack() as stack:
            b = Builder(self.pipeline, self.factory, stack)
            model, infer = b.plan.model, b.plan.infer
            if model is None or infer is None:
                raise UsageError("bench needs a pipeline with a model stage")
            ctx = b.context(b.engine(model, self.pipeline.models[model].devices()[0]))
            chain = b.stages(b.plan.pre, ctx) + b.stages([infer], ctx) + b.stages(b.plan.post, ctx)
            n = self.opts.frames
            t0, c0 = time.perf_counter(), time.process_time()
            for i in range(n):
                img = self.frames[i % len(self.frames)]
                batch = Batch.of_frames([img], [0], [i], [i / 30.0], [time.monotonic()], ("s",))
                run_chain(chain, {"sources": batch}, lambda s, t: None)
            return {"fps": n / (time.perf_counter() - t0),
                    "cpu_fps": n / max(time.process_time() - c0, 1e-9)}

    # ------------------------------------------------------------ (b) pipeline
    def heap_probe(self, batches: int = 12) -> Dict[str, Optional[float]]:
        """Python/numpy heap use of the hot path, per batch, under tracemalloc.

        Runs the same per-batch path the runtime threads run (slot, preprocess
        into the engine input, infer, post) synchronously, after a warm-up.
        ``transient_kb_per_batch``: peak heap above the starting point during one
        batch (temporaries that stages allocate and free); ``retained_kb_per_batch``:
        net growth per batch (leaks).  Needs Python 3.9+ for the per-batch peak.
        """
        import tracemalloc

        with ExitStack() as stack:
            b = Builder(self.pipeline, self.factory, stack)
            model, infer = b.plan.model, b.plan.infer
            if model is None or infer is None:
                raise UsageError("bench needs a pipeline with a model stage")
            eng = b.engine(model, self.pipeline.models[model].devices()[0])
            ctx = b.context(eng)
            chain = b.stages(b.plan.pre, ctx) + b.stages([infer], ctx) + b.stages(b.plan.post, ctx)
            pool = SlotPool([eng], min(self.pipeline.models[model].batch, eng.max_batch), 1)
            slot = pool.acquire(lambda: False)
            assert slot is not None
            n = slot.capacity

            def one(k: int) -> None:
                imgs = [self.frames[(k * n + i) % len(self.frames)] for i in range(n)]
                batch = Batch(frames=imgs, source_index=slot.source_index[:n],
                              frame_index=slot.frame_index[:n], pts=slot.pts[:n],
                              capture_time=slot.capture_time[:n])
                batch.tensor = slot.tensor_view(n)
                batch.extras["engine_io"] = slot.io
                run_chain(chain, {"sources": batch}, lambda s, t: None)

            for k in range(3):
                one(k)
            reset_peak = getattr(tracemalloc, "reset_peak", None)  # Python 3.9+
            tracemalloc.start()
            try:
                peaks: List[float] = []
                start = tracemalloc.get_traced_memory()[0]
                for k in range(batches):
                    before = tracemalloc.get_traced_memory()[0]
                    if reset_peak is not None:
                        reset_peak()
                        one(k)
                        peaks.append(tracemalloc.get_traced_memory()[1] - before)
                    else:  # pragma: no cover - Python 3.8
                        one(k)
                end = tracemalloc.get_traced_memory()[0]
            finally:
                tracemalloc.stop()
        return {"transient_kb_per_batch": statistics.median(peaks) / 1024.0 if peaks else None,
                "retained_kb_per_batch": (end - start) / 1024.0 / batches}

    def pipeline_run(self, streams: int, live_fps: Optional[float] = None) -> RunReport:
        live = live_fps is not None
        # paced live sources take count/fps seconds: a quarter of the frames is plenty of
        # batches for latency percentiles and keeps the overload run short
        count = max(8, self.opts.frames // 4) if live else self.opts.frames
        sources: List[Source] = [
            replay_source("s%d" % k, self.frames, count, live=live, fps=live_fps)
            for k in range(streams)]
        sinks: Optional[List[Sink]] = None
        if not self.opts.with_sinks:
            sinks = [NullSink(SinkConfig(kind="null", name="null", input=self._sink_input()),
                              StageContext(self.pipeline))]
        cfg = self.pipeline.model_copy(deep=True)
        cfg._path = self.pipeline.path
        cfg.runtime.drop_policy = "drop_oldest" if live else "block"
        ex = ThreadedExecutor(cfg, metrics=Metrics(), engine_factory=self.factory,
                              sources=sources, sinks=sinks, handle_signals=False)
        return ex.run()

    def _sink_input(self) -> str:
        if self.pipeline.sinks:
            return self.pipeline.sinks[0].input
        return self.pipeline.stages[-1].name if self.pipeline.stages else "sources"

    # ------------------------------------------------------------ all modes
    def run(self, progress: Optional[Callable[[str], None]] = None) -> Dict[str, Any]:
        self.frames = decode_frames(self.pipeline, self.opts.frames)
        with ExitStack() as stack:
            sampler = _start_telemetry(stack)
            result = self._modes(progress)
            if sampler is not None:
                result["platform"]["telemetry"] = sampler.summary()
        return result

    def _modes(self, progress: Optional[Callable[[str], None]]) -> Dict[str, Any]:
        say = progress or (lambda s: log.info("%s", s))
        raws, naives, pipes, over = [], [], [], []
        pipe_cpu: List[float] = []
        say("heap probe (tracemalloc)")
        self.heap = self.heap_probe()
        for r in range(self.opts.repeats):
            say("repeat %d/%d: raw engine" % (r + 1, self.opts.repeats))
            raws.append(self.raw())
            say("repeat %d/%d: pipeline, %d streams" % (r + 1, self.opts.repeats,
                                                       self.opts.streams))
            c0 = time.process_time()
            pipes.append(self.pipeline_run(self.opts.streams))
            pipe_cpu.append(pipes[-1].frames_out / max(time.process_time() - c0, 1e-9))
            say("repeat %d/%d: naive loop" % (r + 1, self.opts.repeats))
            naives.append(self.naive())
            if self.opts.overload:
                rate = 1.5 * raws[-1]["fps"] / self.opts.streams
                say("repeat %d/%d: overload, %d live streams at %.1f fps each"
                    % (r + 1, self.opts.repeats, self.opts.streams, rate))
                over.append(self.pipeline_run(self.opts.streams, live_fps=rate))
        result = self._result(raws, naives, pipes, over)
        result["cpu"] = _per_cpu(raws, naives, pipe_cpu)
        return result

    def _result(self, raws: List[Dict[str, float]], naives: List[Dict[str, float]],
                pipes: List[RunReport], over: List[RunReport]) -> Dict[str, Any]:
        med = statistics.median
        raw_fps = med([r["fps"] for r in raws])
        pipe_fps = med([p.fps for p in pipes])
        naive_fps = med([x["fps"] for x in naives])
        frames_out = sum(p.frames_out for p in pipes)
        out: Dict[str, Any] = {
            "pipeline": self.pipeline.name,
            "streams": self.opts.streams,
            "batch": int(raws[0]["batch"]),
            "frames": self.opts.frames,
            "repeats": self.opts.repeats,
            "instances": pipes[0].instances,
            "raw_fps": raw_fps,
            "pipeline_fps": pipe_fps,
            "naive_fps": naive_fps,
            "ratio_raw": pipe_fps / raw_fps if raw_fps else None,
            "ratio_naive": pipe_fps / naive_fps if naive_fps else None,
            "batch_latency_ms": med([r["batch_ms"] for r in raws]),
            "latency_ms": _med_lat([p.latency_ms for p in pipes]),
            "stage_latency_ms": pipes[-1].stage_ms,
            "bytes_copied_per_frame": sum(p.bytes_copied for p in pipes) / max(1, frames_out),
            "allocs_per_frame": sum(p.buffer_allocs for p in pipes) / max(1, frames_out),
            "heap": getattr(self, "heap", None),
            "frames_dropped": sum(s.frames_dropped for p in pipes for s in p.streams),
            "peak_rss_mb": _peak_rss_mb(),
            "runs": {"raw_fps": [r["fps"] for r in raws], "pipeline_fps": [p.fps for p in pipes],
                     "naive_fps": [x["fps"] for x in naives]},
            "platform": _platform_info(getattr(self, "engine_desc", {})),
        }
        if over:
            lat = _med_lat([o.latency_ms for o in over])
            out["overload"] = {
                "input_fps": 1.5 * raw_fps, "fps": med([o.fps for o in over]),
                "latency_ms": lat,
                "p99_over_batch_latency": (lat["p99"] / out["batch_latency_ms"]
                                           if lat["p99"] is not None else None),
                "dropped_fraction": med([_dropped(o) for o in over]),
            }
        return out


def _start_telemetry(stack: ExitStack) -> Any:
    """Platform telemetry (watts, GPU load, temperatures) over the bench, when available."""
    try:
        from edgert.platform.telemetry import Sampler

        return stack.enter_context(Sampler(Metrics(), period_s=1.0))
    except Exception as exc:  # noqa: BLE001 - telemetry is optional for a benchmark
        log.debug("telemetry unavailable: %s", exc)
        return None


def _per_cpu(raws: List[Dict[str, float]], naives: List[Dict[str, float]],
             pipes: List[float]) -> Dict[str, Optional[float]]:
    """Frames per CPU-second of this process (all threads): robust to other load.

    Wall-clock fps on a shared machine says as much about the neighbours as about
    edgert; CPU time per frame does not, and its pipeline/raw ratio is exactly the
    pipeline's overhead (decode excluded: frames are replayed from memory).
    """
    med = statistics.median
    raw = med([r["cpu_fps"] for r in raws])
    naive = med([x["cpu_fps"] for x in naives])
    pipe = med(pipes) if pipes else 0.0
    return {"raw_fps": raw, "pipeline_fps": pipe, "naive_fps": naive,
            "ratio_raw": pipe / raw if raw else None,
            "ratio_naive": pipe / naive if naive else None}


def _dropped(s: RunReport) -> float:
    fin = sum(x.frames_in for x in s.streams)
    return sum(x.frames_dropped for x in s.streams) / fin if fin else 0.0


def _med_lat(items: List[Dict[str, Optional[float]]]) -> Dict[str, Optional[float]]:
    out: Dict[str, Optional[float]] = {}
    for key in ("p50", "p99"):
        vals = [v[key] for v in items if v.get(key) is not None]
        out[key] = statistics.median(vals) if vals else None  # type: ignore[type-var]
    return out

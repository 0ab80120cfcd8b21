"""Get the engine for (model, device): from the cache, or built, calibrated and cached.

Shared by ``edgert build`` and by the ``tensorrt`` backend that ``edgert run``
uses, so a cache miss at run time builds exactly as ``edgert build`` would.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from edgert.config.schema import ModelConfig, PipelineConfig
from edgert.engines.tensorrt import cache as ecache
from edgert.engines.tensorrt.builder import BuildRequest, InputSpec, build
from edgert.engines.tensorrt.compat import Features
from edgert.engines.tensorrt.placement import PlacementReport, parse_inspector
from edgert.errors import RuntimeFailure

log = logging.getLogger("edgert.engines.tensorrt.manager")

# Build options that do not change the plan (where files go, how it runs, checks).
_NOT_IN_KEY = {"preset", "timing_cache", "cache_dir", "cuda_graphs", "max_gpu_fallback"}


@dataclass
class EngineRecord:
    entry: ecache.CacheEntry
    meta: Dict[str, Any]
    built: bool  # False: taken from the cache
    seconds: float  # build time (0 when cached)

    @property
    def placement(self) -> PlacementReport:
        return PlacementReport.from_dict(self.meta.get("placement") or {"device": "?"})


def platform_facts() -> Dict[str, Any]:
    """GPU name, compute capability, integrated or not, and the L4T release (Jetson)."""
    from edgert import cuda
    from edgert.platform.detect import read_l4t

    major, minor = cuda.compute_capability()
    return {"gpu": cuda.device_name(), "compute_capability": "%d.%d" % (major, minor),
            "integrated": cuda.is_integrated(), "l4t": read_l4t(Path("/"))}


def calibration_part(model: ModelConfig) -> Optional[Dict[str, Any]]:
    """What of the INT8 calibration shapes the engine: the cache's bytes when present."""
    if model.precision not in ("int8", "best") or model.int8 is None:
        return None
    calib = model.int8.calibration
    part: Dict[str, Any] = {"method": calib.method}
    if calib.cache is not None and calib.cache.is_file():
        part["cache_sha256"] = ecache.file_sha256(calib.cache)
    else:
        part.update(images=str(calib.images) if calib.images else None, source=calib.source,
                    count=calib.count)
    return part


def key_inputs(name: str, model: ModelConfig, device: str, feats: Features,
               facts: Dict[str, Any]) -> Dict[str, Any]:
    """Everything the cache key hashes (also recorded in the sidecar)."""
    build = model.build.model_dump(mode="json", exclude=_NOT_IN_KEY)
    return {
        "model": name,
        "onnx_sha256": ecache.file_sha256(model.onnx),
        "device": device,
        "precision": model.precision,
        "gpu_fallback": model.gpu_fallback,
        "sparsity": model.sparsity,
        "batch": model.batch,
        "build": build,
        "calibration": calibration_part(model),
        "tensorrt": feats.version,
        "gpu": facts.get("gpu"),
        "compute_capability": facts.get("compute_capability"),
        "l4t": facts.get("l4t"),
    }


def cache_dir(model: ModelConfig) -> Path:
    return model.build.cache_dir or ecache.default_cache_dir()


def timing_cache_path(model: ModelConfig, feats: Features, facts: Dict[str, Any]) -> Path:
    """One timing cache per GPU and TensorRT version unless the build names one."""
    if model.build.timing_cache is not None:
        return model.build.timing_cache
    return cache_dir(model) / ("timing-%s-sm%s-trt%s.cache" % (
        ecache.slug(str(facts.get("gpu"))), str(facts.get("compute_capability")).replace(".", ""),
        feats.version))


def entry_for(name: str, model: ModelConfig, device: str, feats: Features,
              facts: Dict[str, Any]) -> ecache.CacheEntry:
    key = ecache.compute_key(key_inputs(name, model, device, feats, facts))
    return ecache.entry_for(cache_dir(model), name, device, model.precision, model.batch, key)


def _calib_factory(name: str, model: ModelConfig, feats: Features) -> Any:
    """Creates the calibration feed once the network's input shapes are known."""
    from edgert.engines.tensorrt.calibdata import CalibrationData, single_image_input
    from edgert.engines.tensorrt.calibrator import CalibrationFeed, cache_header, make_calibrator

    calib = model.int8.calibration if model.int8 is not None else None

    def factory(specs: List[InputSpec]) -> Any:
        if calib is None:
            raise RuntimeFailure("model '%s': precision %s needs int8.calibration"
                                 % (name, model.precision))
        header = cache_header(feats.calibration_header_version, calib.method)
        batches: Any = iter(())
        total = 0
        if calib.images is not None or calib.source is not None:
            pipeline: Optional[PipelineConfig] = model._pipeline
            if pipeline is None:
                raise RuntimeFailure("model '%s': calibrating needs its pipeline (load the model "
                                     "from a pipeline file)" % name)
            inp = single_image_input(specs)
            data = CalibrationData(pipeline, name, calib, inp[0], inp[1], inp[2])
            batches, total = data.batches(), data.num_batches
        feed = CalibrationFeed(specs, batches, calib.cache, header, total=total)
        feed.calibrator = make_calibrator(feed, calib.method)
        return feed

    return factory


def _request(name: str, model: ModelConfig, device: str, feats: Features,
             facts: Dict[str, Any], max_gpu_fallback: Optional[int]) -> BuildRequest:
    calib = model.int8.calibration if model.int8 is not None else None
    has_calib = calib is not None and (calib.images is not None or calib.source is not None
                                       or (calib.cache is not None and calib.cache.is_file()))
    limit = max_gpu_fallback if max_gpu_fallback is not None else model.build.max_gpu_fallback
    return BuildRequest(
        name=name, onnx=model.onnx, device=device, precision=model.precision, batch=model.batch,
        gpu_fallback=model.gpu_fallback, sparsity=model.sparsity, build=model.build,
        calibration_method=calib.method if calib is not None else "entropy",
        has_calibration=has_calib, timing_cache=timing_cache_path(model, feats, facts),
        max_gpu_fallback=limit)


def warn_sparsity(model: ModelConfig, facts: Dict[str, Any]) -> None:
    major = int(str(facts.get("compute_capability") or "8.0").split(".")[0])
    if model.sparsity and major < 8:
        log.warning("sparsity: %s (compute capability %s, Volta on Xavier) has no sparse tensor "
                    "cores; SPARSE_WEIGHTS is set but gives no speedup there",
                    facts.get("gpu"), facts.get("compute_capability"))


def inspect_plan(plan: bytes, device: str, network_layers: int,
                 fallback: List[str]) -> PlacementReport:
    """Per-layer placement of a plan through the engine inspector."""
    import tensorrt as trt

    from edgert.engines.tensorrt.builder import make_logger
    from edgert.engines.tensorrt.runtime import deserialize

    logger = make_logger([])
    runtime, engine = deserialize(plan, device, logger)
    inspector = engine.create_engine_inspector()
    text = inspector.get_engine_information(trt.LayerInformationFormat.JSON)
    del inspector, engine  # before the runtime that deserialized it
    del runtime
    return parse_inspector(text, device, network_layers, fallback)


def ensure_engine(name: str, model: ModelConfig, device: str, feats: Features,
                  force: bool = False, max_gpu_fallback: Optional[int] = None) -> EngineRecord:
    """The cached engine for (model, device), building it under the key's lock on a miss."""
    facts = platform_facts()
    entry = entry_for(name, model, device, feats, facts)
    if entry.engine.parent.is_dir():
        ecache.clean_temp_files(entry.engine.parent)
    if not force and ecache.verify(entry) is None:
        meta = ecache.read_sidecar(entry.sidecar) or {}
        log.info("%s on %s: cached engine %s", name, device, entry.engine)
        return EngineRecord(entry, meta, built=False, seconds=0.0)
    with ecache.build_lock(entry):
        why = ecache.verify(entry)
        if why is None and not force:  # another process built it while we waited
            return EngineRecord(entry, ecache.read_sidecar(entry.sidecar) or {}, False, 0.0)
        if why not in (None, "not built"):
            ecache.discard(entry, why)
        return _build_and_store(name, model, device, feats, facts, entry, max_gpu_fallback)


def _build_and_store(name: str, model: ModelConfig, device: str, feats: Features,
                     facts: Dict[str, Any], entry: ecache.CacheEntry,
                     max_gpu_fallback: Optional[int]) -> EngineRecord:
    warn_sparsity(model, facts)
    req = _request(name, model, device, feats, facts, max_gpu_fallback)
    built = build(req, feats, _calib_factory(name, model, feats))
    report = inspect_plan(built.plan, device, built.network_layers, built.fallback_layers)
    if req.max_gpu_fallback is not None and report.gpu_fallback > req.max_gpu_fallback:
        gpu = [layer.name for layer in report.layers if layer.device == "gpu"]
        raise RuntimeFailure("%d layers of the built engine run on the GPU instead of %s, more "
                             "than max_gpu_fallback %d (%s)" % (report.gpu_fallback, device,
                                                                req.max_gpu_fallback,
                                                                ", ".join(gpu[:5])))
    if built.calibrated:  # the new calibration cache is part of the key from now on
        entry = entry_for(name, model, device, feats, facts)
    meta = {
        "name": name, "device": device, "precision": model.precision, "batch": model.batch,
        "inputs": key_inputs(name, model, device, feats, facts), "platform": facts,
        "build_seconds": round(built.seconds, 2), "built_at": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "edgert": _edgert_version(),
        "preset": getattr(model, "_preset", None), "notes": built.notes[-20:],
        "placement": report.to_dict(),
    }
    meta = ecache.store(entry, built.plan, meta)
    log.info("%s on %s: built in %.1fs -> %s", name, device, built.seconds, entry.engine)
    log.info("%s", report.summary())
    return EngineRecord(entry, meta, built=True, seconds=built.seconds)


def _edgert_version() -> str:
    from edgert import __version__

    return __version__

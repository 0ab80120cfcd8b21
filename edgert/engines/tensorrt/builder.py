"""Build a serialized TensorRT engine from ONNX for one device (``gpu`` or ``dla:N``).

Network flags, precision flags, DLA core and GPU fallback, per-layer device
overrides, memory pools, the optimization profile, the INT8 calibrator and the
timing cache are all set here, following TRT_REFERENCE.md sections 1-5, with
every version difference taken from :class:`~edgert.engines.tensorrt.compat.Features`.
What the installed TensorRT cannot do is refused in one line before the
(minutes-long) build starts.
"""
from __future__ import annotations

import fnmatch
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Sequence, Tuple

import numpy as np

from edgert.config.schema import BuildConfig, LayerOverride
from edgert.engines.tensorrt.compat import Features, refusal_dla, refusal_precision
from edgert.errors import RuntimeFailure, UsageError
from edgert.fsutil import atomic_write_bytes
from edgert.progress import Progress

if TYPE_CHECKING:  # pragma: no cover
    import tensorrt as trt

log = logging.getLogger("edgert.engines.tensorrt.builder")

MiB = 1 << 20
InputSpec = Tuple[str, Tuple[int, ...], np.dtype]
CalibFactory = Callable[[List[InputSpec]], Any]  # -> CalibrationFeed-like with .close()


@dataclass
class BuildRequest:
    name: str
    onnx: Path
    device: str  # gpu | dla:N
    precision: str  # fp32 | fp16 | int8 | best
    batch: int
    gpu_fallback: bool = True
    sparsity: bool = False
    build: BuildConfig = field(default_factory=lambda: BuildConfig.model_validate({}))
    calibration_method: str = "entropy"
    has_calibration: bool = False  # calibration data or a cache is configured
    timing_cache: Optional[Path] = None
    max_gpu_fallback: Optional[int] = None

    @property
    def dla_core(self) -> Optional[int]:
        return int(self.device.split(":", 1)[1]) if self.device.startswith("dla:") else None


@dataclass
class Built:
    plan: bytes
    network_layers: int
    fallback_layers: List[str]
    seconds: float
    calibrated: bool = False
    notes: List[str] = field(default_factory=list)  # sparsity / placement lines of the build log


def make_logger(notes: List[str]) -> "trt.ILogger":
    """A TensorRT logger that forwards to ``edgert.engines.tensorrt.trt`` logging."""
    import tensorrt as trt

    tlog = logging.getLogger("edgert.engines.tensorrt.trt")
    sev = trt.ILogger.Severity

    class Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: "trt.ILogger.Severity", msg: str) -> None:
            if severity in (sev.INTERNAL_ERROR, sev.ERROR):
                tlog.error("%s", msg)
            elif severity == sev.WARNING:
                tlog.warning("%s", msg)
            else:
                tlog.debug("%s", msg)
            if "(Sparsity)" in msg or "sparse implementation" in msg or "DLA" in msg:
                notes.append(msg.strip())

    return Logger()


def create_network(builder: "trt.Builder",
                   feats: Features) -> Tuple["trt.INetworkDefinition", bool]:
    """(network, strongly typed): explicit batch on 8.x; strongly typed without precision flags."""
    import tensorrt as trt

    flags = 0
    if feats.explicit_batch_flag:  # required in 8.x, deprecated in 10, removed in 11
        # getattr: the flag is gone in TRT 11 (feature-detected in compat).
        flags |= 1 << int(getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"))  # noqa: B009
    strongly = feats.strongly_typed and not feats.precision_flags  # TRT 11
    if strongly:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return builder.create_network(flags), strongly


def parse_onnx(network: "trt.INetworkDefinition", logger: "trt.ILogger", onnx: Path) -> None:
    import tensorrt as trt

    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        first = errors[0].splitlines()[0] if errors else "unknown error"
        more = " (+%d more)" % (len(errors) - 1) if len(errors) > 1 else ""
        raise RuntimeFailure("TensorRT cannot parse %s: %s%s" % (onnx, first, more))


def network_layers(network: "trt.INetworkDefinition") -> List["trt.ILayer"]:
    return [network.get_layer(i) for i in range(network.num_layers)]


def has_qdq(layers: Sequence["trt.ILayer"]) -> bool:
    """True for explicitly quantized (Q/DQ) models."""
    import tensorrt as trt

    return any(layer.type in (trt.LayerType.QUANTIZE, trt.LayerType.DEQUANTIZE) for layer in layers)


def set_pools(config: "trt.IBuilderConfig", feats: Features, build: BuildConfig,
              dla: bool) -> None:
    import tensorrt as trt

    if build.workspace_mb is not None:
        if feats.memory_pools:
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, build.workspace_mb * MiB)
        else:  # < 8.4 only; removed in 10.x
            setattr(config, "max_workspace_size", build.workspace_mb * MiB)  # noqa: B010
    if not dla or not feats.dla_pools:
        return
    pools = ((build.dla_sram_kb, 1 << 10, trt.MemoryPoolType.DLA_MANAGED_SRAM),
             (build.dla_local_dram_mb, MiB, trt.MemoryPoolType.DLA_LOCAL_DRAM),
             (build.dla_global_dram_mb, MiB, trt.MemoryPoolType.DLA_GLOBAL_DRAM))
    for value, unit, pool in pools:
        if value is not None:
            config.set_memory_pool_limit(pool, value * unit)


def set_precision(config: "trt.IBuilderConfig", feats: Features, req: BuildRequest,
                  qdq: bool, strongly_typed: bool) -> bool:
    """Set precision/sparsity flags; True when INT8 calibration is needed."""
    import tensorrt as trt

    dla = req.dla_core is not None
    if dla and req.precision == "fp32":
        raise UsageError("precision fp32 cannot run on %s: DLA runs FP16 or INT8 only; "
                         "use fp16 or int8" % req.device)
    if req.sparsity:
        if req.precision == "fp32":
            raise UsageError("sparsity needs precision fp16, int8 or best (sparse kernels are "
                             "FP16/INT8 only)")
        if feats.sparse_weights:
            config.set_flag(trt.BuilderFlag.SPARSE_WEIGHTS)
    if strongly_typed:
        if req.precision != "fp32":
            log.info("TensorRT %s builds strongly typed networks: the ONNX model's types decide "
                     "precision (precision: %s sets no flags)", feats.version, req.precision)
        return False
    best_int8 = req.precision == "best" and (qdq or req.has_calibration)
    want_int8 = req.precision == "int8" or best_int8
    if req.precision in ("fp16", "int8", "best"):
        config.set_flag(trt.BuilderFlag.FP16)  # also the fallback for layers without INT8
    if want_int8:
        config.set_flag(trt.BuilderFlag.INT8)  # 8.x needs it even for Q/DQ models
    return want_int8 and not qdq


def _override_for(name: str, overrides: Sequence[LayerOverride]) -> Optional[LayerOverride]:
    return next((o for o in overrides if fnmatch.fnmatchcase(name, o.match)), None)


def place_layers(config: "trt.IBuilderConfig", layers: Sequence["trt.ILayer"],
                 req: BuildRequest) -> List[str]:
    """Device type per layer; returns the names of layers that go to the GPU on a DLA build."""
    import tensorrt as trt

    core = req.dla_core
    if core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = core
        if req.gpu_fallback:
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    fallback: List[str] = []
    cannot: List[str] = []
    for layer in layers:
        ov = _override_for(layer.name, req.build.layers)
        if ov is not None and ov.device == "gpu":
            config.set_device_type(layer, trt.DeviceType.GPU)
            if core is not None:
                fallback.append(layer.name)
        elif ov is not None and core is not None:  # pinned to this instance's DLA core
            if not config.can_run_on_DLA(layer):
                raise UsageError("layer '%s' is pinned to dla by build.layers (match '%s') but "
                                 "cannot run on DLA" % (layer.name, ov.match))
            config.set_device_type(layer, trt.DeviceType.DLA)
        elif core is not None and not config.can_run_on_DLA(layer):
            fallback.append(layer.name)
            cannot.append(layer.name)
    if cannot and not req.gpu_fallback:
        raise UsageError("%d layer%s cannot run on %s (%s%s) and gpu_fallback is false; set "
                         "gpu_fallback: true or pin them with build.layers"
                         % (len(cannot), "" if len(cannot) == 1 else "s", req.device,
                            ", ".join(cannot[:3]), ", ..." if len(cannot) > 3 else ""))
    return fallback


def check_fallback(fallback: Sequence[str], limit: Optional[int], device: str) -> None:
    if limit is not None and len(fallback) > limit:
        raise RuntimeFailure("%d layers fall back from %s to the GPU, more than max_gpu_fallback "
                             "%d (first: %s)" % (len(fallback), device, limit,
                                                 ", ".join(fallback[:5])))


def input_specs(network: "trt.INetworkDefinition", batch: int) -> List[InputSpec]:
    """(name, shape with the batch filled in, numpy dtype) of each network input."""
    import tensorrt as trt

    specs: List[InputSpec] = []
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        dims = tensor.shape
        shape = tuple(int(dims[j]) for j in range(len(dims)))
        if any(d < 0 for d in shape[1:]):
            raise UsageError("input '%s' has dynamic dimensions %s besides the batch; export the "
                             "ONNX model with a fixed input size" % (tensor.name, shape))
        if shape and shape[0] >= 0 and shape[0] != batch:
            raise UsageError("input '%s' has a fixed batch of %d but batch: %d; re-export with a "
                             "dynamic batch dimension or set batch: %d"
                             % (tensor.name, shape[0], batch, shape[0]))
        full = (batch,) + shape[1:] if shape else ()
        specs.append((tensor.name, full, np.dtype(trt.nptype(tensor.dtype))))
    return specs


def add_profile(builder: "trt.Builder", config: "trt.IBuilderConfig",
                network: "trt.INetworkDefinition", batch: int,
                dla: bool) -> Optional["trt.IOptimizationProfile"]:
    """One profile for the batch size: min=opt=max on DLA (no dynamic dims there)."""
    dynamic = []
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        if len(tensor.shape) and tensor.shape[0] < 0:
            dynamic.append(tensor)
    if not dynamic:
        return None
    import tensorrt as trt

    profile = builder.create_optimization_profile()
    for tensor in dynamic:
        rest = [int(tensor.shape[j]) for j in range(1, len(tensor.shape))]
        opt = [batch] + rest
        low = opt if dla else [1] + rest
        profile.set_shape(tensor.name, trt.Dims(low), trt.Dims(opt), trt.Dims(opt))
    config.add_optimization_profile(profile)
    return profile


def load_timing_cache(config: "trt.IBuilderConfig", path: Optional[Path]) -> None:
    data = b""
    if path is not None and path.is_file():
        data = path.read_bytes()
    try:
        cache = config.create_timing_cache(data)
    except Exception as exc:  # noqa: BLE001 - a corrupt cache file must not stop the build
        log.warning("timing cache %s unreadable (%s); starting a new one", path, exc)
        cache = config.create_timing_cache(b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    if data:
        log.info("timing cache: %s (%d KiB)", path, len(data) >> 10)


def save_timing_cache(config: "trt.IBuilderConfig", path: Optional[Path]) -> None:
    if path is None:
        return
    data = bytes(memoryview(config.get_timing_cache().serialize()))
    atomic_write_bytes(path, data)
    log.debug("saved timing cache %s (%d KiB)", path, len(data) >> 10)


def monitor_progress(config: "trt.IBuilderConfig", feats: Features, progress: Progress) -> Any:
    """Phase names in the progress line on TensorRT 10+ (``IProgressMonitor``)."""
    if not feats.progress_monitor:
        return None
    import tensorrt as trt

    class Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name: str, parent_phase: str, num_steps: int) -> None:
            progress.advance(0, note=phase_name)

        def step_complete(self, phase_name: str, step: int) -> bool:
            progress.advance(0, note="%s %d" % (phase_name, step + 1))
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            progress.advance(0)

    monitor = Monitor()
    config.progress_monitor = monitor
    return monitor


def _heartbeat(progress: Progress, stop: threading.Event) -> None:
    """Redraw the elapsed time while TensorRT builds (it reports nothing on 8.5)."""
    while not stop.wait(0.5):
        progress.advance(0)


def run_build(builder: "trt.Builder", network: "trt.INetworkDefinition",
              config: "trt.IBuilderConfig", feats: Features, what: str,
              feed: Any = None) -> bytes:
    with Progress(what) as progress:
        keep = monitor_progress(config, feats, progress)
        if feed is not None:  # calibration runs inside the build: show it on the same line
            feed.on_batch = lambda k: progress.advance(
                0, note="calibration batch %d/%d" % (k, feed.total))
        stop = threading.Event()
        beat = threading.Thread(target=_heartbeat, args=(progress, stop), daemon=True)
        beat.start()
        try:
            plan = builder.build_serialized_network(network, config)
        finally:
            stop.set()
            beat.join()
            del keep
    if plan is None:
        raise RuntimeFailure("%s failed (TensorRT returned no engine; run with -vv for its log)"
                             % what)
    return bytes(memoryview(plan))


def build(req: BuildRequest, feats: Features, calib_factory: Optional[CalibFactory]) -> Built:
    """Parse, configure, calibrate if needed, and build; refusals come before the build."""
    import tensorrt as trt

    start = time.monotonic()
    notes: List[str] = []
    logger = make_logger(notes)
    builder = trt.Builder(logger)
    network, strongly = create_network(builder, feats)
    parse_onnx(network, logger, req.onnx)
    layers = network_layers(network)
    qdq = has_qdq(layers)
    for why in (refusal_dla(feats, req.device, builder.num_DLA_cores, qdq),
                refusal_precision(feats, req.precision, qdq, req.has_calibration)):
        if why:
            raise UsageError(why)
    config = builder.create_builder_config()
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # for the placement report
    set_pools(config, feats, req.build, req.dla_core is not None)
    calibrate = set_precision(config, feats, req, qdq, strongly)
    if calibrate and req.dla_core is not None and req.calibration_method != "entropy":
        raise UsageError("DLA requires the entropy calibrator (IInt8EntropyCalibrator2); set "
                         "int8.calibration.method: entropy for %s" % req.device)
    fallback = place_layers(config, layers, req)
    check_fallback(fallback, req.max_gpu_fallback, req.device)  # fail before a long build
    specs = input_specs(network, req.batch)
    profile = add_profile(builder, config, network, req.batch, req.dla_core is not None)
    feed = None
    if calibrate and calib_factory is not None:
        feed = calib_factory(specs)
        config.int8_calibrator = feed.calibrator
        if profile is not None:
            config.set_calibration_profile(profile)  # calibrate at the OPT shape
    load_timing_cache(config, req.timing_cache)
    try:
        plan = run_build(builder, network, config, feats,
                         "building %s on %s (%s, batch %d)" % (req.name, req.device,
                                                               req.precision, req.batch),
                         feed)
    finally:
        if feed is not None:
            feed.close()
    save_timing_cache(config, req.timing_cache)
    return Built(plan=plan, network_layers=len(layers), fallback_layers=fallback,
                 seconds=time.monotonic() - start, calibrated=feed is not None and feed.used > 0,
                 notes=notes)

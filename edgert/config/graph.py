"""Pass 2: references between sections, files on disk, devices.

Runs after every section has its type.  Each check raises a ConfigError at the
key that is wrong (``stages[2].input``), located in the file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

from edgert.config.schema import ModelConfig, PipelineConfig
from edgert.config.yamlsrc import KeyPath, Locations
from edgert.errors import ConfigError
from edgert.registry import did_you_mean
from edgert.sources.base import resolve_local, split_uri
from edgert.stage import SINKS, STAGES

MAX_DLA_CORES = 2  # every Jetson with DLA (Xavier, Orin AGX/NX) has two cores


def check_graph(cfg: PipelineConfig, locs: Locations, check_files: bool = True) -> None:
    _unique([s.name for s in cfg.sources], "sources", locs)
    _unique([s.name for s in cfg.stages], "stages", locs)
    _unique([k.name for k in cfg.sinks if k.name], "sinks", locs)
    _check_inputs(cfg, locs)
    topo_order(cfg, locs)
    for name, model in cfg.models.items():
        _check_model(cfg, name, model, locs, check_files)
    for i, stage in enumerate(cfg.stages):
        _check_component(STAGES.get(stage.kind), stage, cfg, ("stages", i), locs)
    for i, sink in enumerate(cfg.sinks):
        _check_component(SINKS.get(sink.kind), sink, cfg, ("sinks", i), locs)
    if check_files:
        for i, src in enumerate(cfg.sources):
            _check_source_file(src.uri, cfg.base_dir, ("sources", i, "uri"), locs)
    if cfg.power is not None:  # on a Jetson: the mode must exist in this board's table
        from edgert.platform.power import check_power_section

        check_power_section(cfg.power, locs)


def _unique(names: Sequence[str], section: str, locs: Locations) -> None:
    seen: Dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise locs.error("duplicate name '%s' (also %s[%d])" % (name, section, seen[name]),
                             (section, i, "name"))
        seen[name] = i
    if section == "stages" and "sources" in seen:
        raise locs.error("'sources' is reserved for the pipeline's frames; rename this stage",
                         (section, seen["sources"], "name"))


def _check_inputs(cfg: PipelineConfig, locs: Locations) -> None:
    known = ["sources"] + [s.name for s in cfg.stages]
    refs = [("stages", i, s.input) for i, s in enumerate(cfg.stages)]
    refs += [("sinks", i, k.input) for i, k in enumerate(cfg.sinks)]
    for section, i, name in refs:
        if name not in known:
            raise locs.error("input '%s' names no stage%s; known: %s"
                             % (name, did_you_mean(name, known), ", ".join(known)),
                             (section, i, "input"))


def topo_order(cfg: PipelineConfig, locs: Optional[Locations] = None) -> List[str]:
    """Stage names so that every stage comes after its input; reports cycles."""
    by_name = {s.name: s for s in cfg.stages}
    index = {s.name: i for i, s in enumerate(cfg.stages)}
    order: List[str] = []
    state: Dict[str, int] = {}  # 1 = visiting, 2 = done

    def visit(name: str, trail: List[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = trail[trail.index(name):] + [name]
            msg = "stages form a cycle: %s" % " -> ".join(cycle)
            if locs is None:
                raise ConfigError(msg)
            raise locs.error(msg, ("stages", index[name], "input"))
        state[name] = 1
        upstream = by_name[name].input
        if upstream in by_name:
            visit(upstream, trail + [name])
        state[name] = 2
        order.append(name)

    for s in cfg.stages:
        visit(s.name, [])
    return order


def _check_model(cfg: PipelineConfig, name: str, model: ModelConfig, locs: Locations,
                 check_files: bool) -> None:
    path: KeyPath = ("models", name)
    from edgert.config.presets import check_model_build  # build preset first: it sets defaults

    check_model_build(cfg, name, model, locs)
    if check_files:
        _exists(model.onnx, path + ("onnx",), locs, "model file")
        if model.labels is not None:
            _exists(model.labels, path + ("labels",), locs, "labels file")
    devices = model.devices()
    for j, dev in enumerate(devices):
        key = path + (("instances", j) if model.instances else ("device",))
        if dev.startswith("dla:"):
            core = int(dev.split(":", 1)[1])
            if core >= MAX_DLA_CORES:
                raise locs.error("'%s': a Jetson has at most %d DLA cores (dla:0, dla:1)"
                                 % (dev, MAX_DLA_CORES), key)
            if model.backend == "onnxruntime":
                raise locs.error("'%s' needs backend tensorrt (ONNX Runtime cannot use DLA)" % dev,
                                 key)
    if model.precision == "int8":
        _check_int8(cfg, model, path, locs, check_files)


def _check_int8(cfg: PipelineConfig, model: ModelConfig, path: KeyPath, locs: Locations,
                check_files: bool) -> None:
    calib = model.int8.calibration if model.int8 is not None else None
    if calib is None or (calib.images is None and calib.source is None and calib.cache is None):
        raise locs.error("precision int8 needs calibration data: int8: {calibration: {images: DIR "
                         "or source: NAME, cache: FILE}}", path + ("precision",))
    cpath = path + ("int8", "calibration")
    if calib.source is not None:
        names = [s.name for s in cfg.sources]
        if calib.source not in names:
            raise locs.error("source '%s' is not a source of this pipeline%s; known: %s"
                             % (calib.source, did_you_mean(calib.source, names), ", ".join(names)),
                             cpath + ("source",))
    if check_files and calib.images is not None and not (calib.cache and calib.cache.exists()):
        _exists(calib.images, cpath + ("images",), locs, "calibration images")


def _check_component(cls: type, cfg_obj: object, pipeline: PipelineConfig, path: KeyPath,
                     locs: Locations) -> None:
    model = getattr(cfg_obj, "model", None)
    if isinstance(model, str) and model not in pipeline.models:
        known = sorted(pipeline.models)
        raise locs.error("model '%s' is not defined under models%s; known: %s"
                         % (model, did_you_mean(model, known), ", ".join(known) or "none"),
                         path + ("model",))
    try:
        cls.check_config(cfg_obj, pipeline)  # type: ignore[attr-defined]
    except ConfigError as err:
        sub = tuple(p for p in err.key_path.split(".") if p) if err.key_path else ()
        raise locs.error(err.raw_message, path + sub) from None


def _check_source_file(uri: str, base: Path, path: KeyPath, locs: Locations) -> None:
    scheme, rest = split_uri(uri)
    if scheme in ("file", "images"):
        local = resolve_local(rest, base)
        what = "video file" if scheme == "file" else "image folder"
        _exists(local, path, locs, what)


def _exists(p: Path, path: KeyPath, locs: Locations, what: str) -> None:
    if not p.exists():
        raise locs.error("%s not found: %s" % (what, p), path)

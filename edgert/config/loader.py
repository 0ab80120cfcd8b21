"""Load a pipeline file into typed objects, or fail with one located line.

Pass 1 (schema): each section against its class in ``schema.py``; each source,
stage and sink against the ``Config`` class of its URI scheme or ``kind``.
Unknown keys are errors with a did-you-mean.  Pass 2 (graph, ``graph.py``):
references between sections, files on disk, devices.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Type, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from edgert.config.overrides import apply_overrides
from edgert.config.schema import ModelConfig, PipelineConfig, PowerConfig, RuntimeConfig
from edgert.config.yamlsrc import KeyPath, Locations, load_yaml, loads_yaml
from edgert.errors import ConfigError, UsageError
from edgert.registry import did_you_mean
from edgert.sources.base import SOURCES, SourceConfig, split_uri
from edgert.stage import SINKS, STAGES

_SECTIONS = ("version", "name", "sources", "models", "stages", "sinks", "runtime", "power")


def load_pipeline(
    path: Union[str, Path],
    overrides: Sequence[str] = (),
    env: Optional[Mapping[str, str]] = None,
    check_files: bool = True,
) -> PipelineConfig:
    """Read, expand, override, validate and resolve a pipeline file."""
    p = Path(path)
    doc, locs = load_yaml(p, env)
    return build_pipeline(doc, locs, p, overrides, check_files)


def loads_pipeline(text: str, path: Union[str, Path] = "<string>", overrides: Sequence[str] = (),
                   env: Optional[Mapping[str, str]] = None, check_files: bool = True
                   ) -> PipelineConfig:
    """Like :func:`load_pipeline` for YAML text; ``path`` sets the base folder."""
    doc, locs = loads_yaml(text, str(path), env)
    return build_pipeline(doc, locs, Path(path), overrides, check_files)


def build_pipeline(doc: Any, locs: Locations, path: Path, overrides: Sequence[str] = (),
                   check_files: bool = True) -> PipelineConfig:
    from edgert.config.graph import check_graph  # graph imports registries lazily

    doc = apply_overrides(doc, overrides, locs)
    if not isinstance(doc, dict):
        raise locs.error("a pipeline file is a mapping with sources, models, stages, sinks", ())
    cfg = _validate_document(doc, locs)
    cfg._path = path.resolve()
    _resolve_paths(cfg, cfg.base_dir)
    check_graph(cfg, locs, check_files=check_files)
    return cfg


# ---------------------------------------------------------------- pass 1: schema


def _validate_document(doc: Dict[str, Any], locs: Locations) -> PipelineConfig:
    for key in doc:
        if key not in _SECTIONS:
            raise locs.error("unknown section '%s'%s; sections are: %s"
                             % (key, did_you_mean(key, _SECTIONS), ", ".join(_SECTIONS)),
                             (key,), want_key=True)
    if "sources" not in doc:
        raise locs.error("missing section 'sources' (at least one stream)", ())
    version = doc.get("version", 1)
    if version != 1:
        raise locs.error("unsupported version %r; this edgert reads version 1" % (version,),
                         ("version",))
    sources = [_validate_source(item, ("sources", i), locs)
               for i, item in enumerate(_as_list(doc, "sources", locs, min_items=1))]
    stages = [_validate_kind(item, ("stages", i), locs, STAGES)
              for i, item in enumerate(_as_list(doc, "stages", locs))]
    sinks = [_validate_kind(item, ("sinks", i), locs, SINKS)
             for i, item in enumerate(_as_list(doc, "sinks", locs))]
    models_doc = doc.get("models") or {}
    if not isinstance(models_doc, dict):
        raise locs.error("models is a mapping of model name -> settings", ("models",))
    models = {str(name): validate_model(ModelConfig, spec, ("models", str(name)), locs)
              for name, spec in models_doc.items()}
    runtime = validate_model(RuntimeConfig, doc.get("runtime") or {}, ("runtime",), locs)
    power = None
    if doc.get("power") is not None:
        power = validate_model(PowerConfig, doc["power"], ("power",), locs)
    return PipelineConfig.model_construct(
        version=1, name=str(doc.get("name", "pipeline")), sources=sources, models=models,
        stages=stages, sinks=sinks, runtime=runtime, power=power,
    )


def _as_list(doc: Dict[str, Any], key: str, locs: Locations, min_items: int = 0) -> List[Any]:
    value = doc.get(key)
    if value is None:
        value = []
    if not isinstance(value, list):
        raise locs.error("%s is a list (each item starts with '- ')" % key, (key,))
    if len(value) < min_items:
        raise locs.error("%s needs at least %d item" % (key, min_items), (key,))
    return value


def _validate_source(item: Any, path: KeyPath, locs: Locations) -> SourceConfig:
    if not isinstance(item, dict):
        raise locs.error("a source is a mapping with name and uri", path)
    uri = item.get("uri")
    if not isinstance(uri, str) or not uri:
        raise locs.error("missing 'uri' (file://, images://, rtsp://, v4l2://, csi://)",
                         path + ("uri",) if "uri" in item else path)
    scheme, _ = split_uri(uri)
    if scheme not in SOURCES:
        known = SOURCES.names()
        raise locs.error("unsupported URI scheme '%s://'%s; supported: %s"
                         % (scheme, did_you_mean(scheme, known),
                            ", ".join(s + "://" for s in known)), path + ("uri",))
    return validate_model(SOURCES.get(scheme).Config, item, path, locs)


def _validate_kind(item: Any, path: KeyPath, locs: Locations, registry: Any) -> Any:
    if not isinstance(item, dict):
        raise locs.error("expected a mapping with kind and input", path)
    kind = item.get("kind")
    if not isinstance(kind, str) or not kind:
        raise locs.error("missing 'kind'; known: %s" % ", ".join(registry.names()), path)
    if kind not in registry:
        known = registry.names()
        raise locs.error("unknown %s '%s'%s; known: %s"
                         % (registry.what, kind, did_you_mean(kind, known), ", ".join(known)),
                         path + ("kind",))
    cls: Type[BaseModel] = registry.get(kind).Config
    return validate_model(cls, item, path, locs)


def validate_model(cls: Type[Any], data: Any, path: KeyPath, locs: Locations) -> Any:
    """Validate ``data`` as ``cls``; unknown keys and type errors become ConfigErrors."""
    if not isinstance(data, dict):
        raise locs.error("expected a mapping of settings, got %s" % _describe(data), path)
    check_unknown_keys(cls, data, path, locs)
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise _convert(exc, data, path, locs) from None


def check_unknown_keys(cls: Type[BaseModel], data: Dict[str, Any], path: KeyPath,
                       locs: Locations) -> None:
    fields = cls.model_fields
    for key in data:
        if key not in fields:
            known = sorted(fields)
            raise locs.error("unknown key '%s'%s; valid keys: %s"
                             % (key, did_you_mean(str(key), known), ", ".join(known)),
                             path + (key,), want_key=True)
    for name, info in fields.items():
        sub = _model_in(info.annotation)
        value = data.get(name)
        if sub is None or value is None:
            continue
        kind, model = sub
        if kind == "one" and isinstance(value, dict):
            check_unknown_keys(model, value, path + (name,), locs)
        elif kind == "dict" and isinstance(value, dict):
            for k, v in value.items():
                if isinstance(v, dict):
                    check_unknown_keys(model, v, path + (name, k), locs)
        elif kind == "list" and isinstance(value, list):
            for i, v in enumerate(value):
                if isinstance(v, dict):
                    check_unknown_keys(model, v, path + (name, i), locs)


def _model_in(annotation: Any) -> Optional[Tuple[str, Type[BaseModel]]]:
    """Find a nested model in ``Model``, ``Optional[Model]``, ``List[Model]``, ``Dict[str, Model]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return ("one", annotation)
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Union:
        for a in args:
            found = _model_in(a)
            if found:
                return found
    elif origin in (list, List) and args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return ("list", args[0])
    elif origin in (dict, Dict) and len(args) == 2 and isinstance(args[1], type) \
            and issubclass(args[1], BaseModel):
        return ("dict", args[1])
    return None


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean (%s)" % str(value).lower()
    if isinstance(value, (int, float)):
        return "a number (%r)" % (value,)
    if isinstance(value, str):
        return "'%s'" % value
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "nothing (null)"
    return type(value).__name__


def _convert(exc: ValidationError, data: Dict[str, Any], path: KeyPath, locs: Locations) -> ConfigError:
    err = exc.errors(include_url=False)[0]
    loc: KeyPath = tuple(p for p in err.get("loc", ()) if isinstance(p, (str, int)))
    msg = str(err.get("msg", "invalid value"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if err.get("type") == "missing":
        field = loc[-1] if loc else "?"
        return locs.error("missing required key '%s'" % field, path + loc[:-1])
    msg = msg[0].lower() + msg[1:] if msg else msg
    if "input" in err and err.get("type") not in ("value_error", "assertion_error"):
        msg += ", got %s" % _describe(err["input"])
    more = len(exc.errors()) - 1
    if more:
        msg += " (+%d more error%s)" % (more, "s" if more > 1 else "")
    return locs.error(msg, path + loc)


# ---------------------------------------------------------------- paths


def _resolve_paths(obj: Any, base: Path) -> None:
    """Make every relative ``Path`` field absolute against the YAML's folder."""
    if isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            value = getattr(obj, name, None)
            if isinstance(value, Path):
                if not value.is_absolute():
                    setattr(obj, name, (base / value.expanduser()).resolve())
            else:
                _resolve_paths(value, base)
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            _resolve_paths(item, base)
    elif isinstance(obj, dict):
        for item in obj.values():
            _resolve_paths(item, base)


def default_env() -> Mapping[str, str]:
    return os.environ


__all__ = ["load_pipeline", "loads_pipeline", "build_pipeline", "validate_model", "UsageError"]

"""Read YAML while remembering where every key and value came from.

``load_yaml`` returns plain Python data plus a :class:`Locations` map from key
paths (tuples of keys and list indices) to ``(line, col)`` (1-based), so any
later error can point at ``pipeline.yaml:14:7``.  ``${VAR}`` and
``${VAR:-default}`` in plain scalars are expanded here, before types are
resolved, so ``batch: ${BATCH:-4}`` is the integer 4.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import yaml

from edgert.errors import ConfigError

KeyPath = Tuple[Union[str, int], ...]
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def format_path(path: KeyPath) -> str:
    """``("stages", 2, "input")`` -> ``"stages[2].input"``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += "[%d]" % part
        else:
            out += ("." if out else "") + str(part)
    return out


class Locations:
    """Key path -> (line, col) of its value (and of its key, for mappings)."""

    def __init__(self, file: Optional[str]) -> None:
        self.file = file
        self.values: Dict[KeyPath, Tuple[int, int]] = {}
        self.keys: Dict[KeyPath, Tuple[int, int]] = {}
        self.overridden: Dict[KeyPath, str] = {}  # path -> the --set text

    def find(self, path: KeyPath, want_key: bool = False) -> Optional[Tuple[int, int]]:
        """Location of ``path`` or of its deepest ancestor that has one."""
        p = tuple(path)
        while True:
            if want_key and p in self.keys:
                return self.keys[p]
            if p in self.values:
                return self.values[p]
            if not p:
                return None
            p = p[:-1]

    def error(self, message: str, path: KeyPath, want_key: bool = False) -> ConfigError:
        """A ConfigError for ``path``, located in the file (or at the --set flag)."""
        for prefix, flag in self.overridden.items():
            if tuple(path[: len(prefix)]) == prefix:
                return ConfigError(message + " (from --set %s)" % flag, key_path=format_path(path),
                                   file=self.file)
        loc = self.find(path, want_key)
        line, col = loc if loc else (None, None)
        return ConfigError(message, key_path=format_path(path), file=self.file, line=line, col=col)


def expand_env(text: str, env: Mapping[str, str], where: Tuple[int, int], file: Optional[str],
               path: KeyPath) -> str:
    def repl(m: "re.Match[str]") -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(
            "environment variable %s is not set (use ${%s:-default} for a default)" % (name, name),
            key_path=format_path(path), file=file, line=where[0], col=where[1],
        )

    return _VAR.sub(repl, text)


class _Builder:
    def __init__(self, locs: Locations, env: Mapping[str, str]) -> None:
        self.locs = locs
        self.env = env

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        where = (node.start_mark.line + 1, node.start_mark.column + 1)
        self.locs.values[path] = where
        if isinstance(node, yaml.MappingNode):
            out: Dict[Any, Any] = {}
            for knode, vnode in node.value:
                key = str(self._scalar(knode, path))
                kpath = path + (key,)
                key_where = (knode.start_mark.line + 1, knode.start_mark.column + 1)
                if key in out:
                    self.locs.keys[kpath] = key_where
                    raise self.locs.error("duplicate key '%s'" % key, kpath, want_key=True)
                self.locs.keys[kpath] = key_where
                out[key] = self.build(vnode, kpath)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _scalar(self, node: yaml.Node, path: KeyPath) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.locs.error("expected a plain key", path)
        where = (node.start_mark.line + 1, node.start_mark.column + 1)
        value = node.value
        if "${" in value:
            value = expand_env(value, self.env, where, self.locs.file, path)
            if node.style is None:  # plain scalar: let YAML type the expanded text
                return _typed(value)
            return value
        try:
            return _construct_scalar(node)
        except yaml.YAMLError as exc:
            raise self.locs.error("cannot read value: %s" % exc, path) from None


def _typed(text: str) -> Any:
    """YAML's own typing of a plain scalar (``"4"`` -> 4, ``"true"`` -> True)."""
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def _construct_scalar(node: yaml.ScalarNode) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def load_yaml(path: Path, env: Optional[Mapping[str, str]] = None) -> Tuple[Any, Locations]:
    """Parse ``path``; raise a one-line ConfigError with line:col on any problem."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("pipeline file not found", file=file) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("cannot read pipeline file: %s" % exc, file=file) from None
    return loads_yaml(text, file, env)


def loads_yaml(text: str, file: Optional[str], env: Optional[Mapping[str, str]] = None
               ) -> Tuple[Any, Locations]:
    locs = Locations(file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            problem = "%s %s" % (exc.context, exc.problem)
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise ConfigError("YAML syntax error: %s" % problem, file=file, line=line, col=col) from None
    except yaml.YAMLError as exc:
        raise ConfigError("YAML syntax error: %s" % str(exc).splitlines()[0], file=file) from None
    if node is None:
        raise ConfigError("the pipeline file is empty", file=file, line=1, col=1)
    builder = _Builder(locs, os.environ if env is None else env)
    return builder.build(node, ()), locs

"""Name -> class registries for stages, sinks, sources and engine backends.

YAML ``kind:`` (or a source URI's scheme, or a model's ``backend:``) is the only
spelling of a component.  Built-in components register themselves when their
package is imported; :meth:`Registry.get` imports the packages listed in
``_BUILTIN_PACKAGES`` the first time it is asked, so ``import edgert`` stays
cheap and never touches optional dependencies.
"""
from __future__ import annotations

import difflib
import importlib
from typing import Callable, Dict, Generic, List, Sequence, TypeVar

from edgert.errors import UsageError

T = TypeVar("T")

# Packages whose import registers the built-in components.  Their __init__
# modules import every component module they hold; component modules import
# heavy dependencies (cv2, onnxruntime, tensorrt, ...) lazily, never at import.
_BUILTIN_PACKAGES = (
    "edgert.sources",
    "edgert.preprocess",
    "edgert.engines",
    "edgert.postprocess",
    "edgert.sinks",
)
_loaded = False


def load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for pkg in _BUILTIN_PACKAGES:
            importlib.import_module(pkg)


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return (" (did you mean '%s'?)" % close[0]) if close else ""


class Registry(Generic[T]):
    """A named set of components, e.g. ``STAGES.get("letterbox")``."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: Dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise RuntimeError("%s %r registered twice" % (self.what, name))
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        load_builtins()
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise UsageError(
                "unknown %s '%s'%s; known: %s"
                % (self.what, name, did_you_mean(name, list(self._items)), known)
            ) from None

    def __contains__(self, name: object) -> bool:
        load_builtins()
        return name in self._items

    def names(self) -> List[str]:
        load_builtins()
        return sorted(self._items)

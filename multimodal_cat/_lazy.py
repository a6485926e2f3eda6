"""Lazy imports: a package's names imported from their modules on first use (PEP 562), and
callbacks run after another package's module is imported (a post-import hook).

Packages whose modules load torch or transformers export through this, so importing the
package itself stays light; ``multimodal_cat`` registers with transformers' Auto classes
through :func:`after_import`, so that costs nothing until transformers' Auto modules load.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import warnings
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any


def lazy_exports(
    package: str, where: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``, which exports each name of ``where``
    (name -> module that defines it) on first use.

    Example:
        >>> getattr_, dir_ = lazy_exports("demo", {"sqrt": "math"})
        >>> getattr_("sqrt")(9.0)
        3.0
        >>> getattr_("cbrt")
        Traceback (most recent call last):
        ...
        AttributeError: module 'demo' has no attribute 'cbrt'
    """

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        loaded = sys.modules.get(package)
        return sorted(set(where) | set(vars(loaded) if loaded else ()))

    return __getattr__, __dir__


class _ThenRun:
    """A module loader that runs callbacks once the module it loads has executed."""

    def __init__(self, loader: Any, callbacks: list[Callable[[ModuleType], None]]) -> None:
        self.loader = loader
        self.callbacks = callbacks

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        module.__loader__ = self.loader  # nothing after this sees the wrapper
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        for callback in self.callbacks:
            _run(callback, module)

    def __getattr__(self, name: str) -> Any:  # get_source, is_package, ... of the real loader
        return getattr(self.loader, name)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: hands the named modules' specs a loader that runs callbacks."""

    def __init__(self) -> None:
        self.callbacks: dict[str, list[Callable[[ModuleType], None]]] = {}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in self.callbacks:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _ThenRun(spec.loader, self.callbacks.pop(fullname))
                return spec
        return None


_AFTER_IMPORT = _AfterImport()


def _run(callback: Callable[[ModuleType], None], module: ModuleType) -> None:
    try:
        callback(module)
    except Exception as error:  # never break the import of somebody else's module
        warnings.warn(
            f"{callback.__module__}.{callback.__qualname__} failed after {module.__name__} was "
            f"imported: {type(error).__name__}: {error}",
            RuntimeWarning,
            stacklevel=2,
        )


def after_import(module: str, callback: Callable[[ModuleType], None]) -> None:
    """Call ``callback(module)`` once ``module`` has been imported (now, if it already is).

    A post-import hook: it costs nothing until somebody imports ``module``, so a package can
    plug into a heavy library (register classes with it) without importing that library
    itself. An exception in ``callback`` becomes a ``RuntimeWarning``: it never breaks the
    import of ``module``.

    Example:
        >>> seen = []
        >>> after_import("json", lambda m: seen.append(m.__name__))  # already imported: now
        >>> seen
        ['json']
    """
    loaded = sys.modules.get(module)
    if loaded is not None:
        _run(callback, loaded)
        return
    _AFTER_IMPORT.callbacks.setdefault(module, []).append(callback)
    if _AFTER_IMPORT not in sys.meta_path:
        sys.meta_path.insert(0, _AFTER_IMPORT)

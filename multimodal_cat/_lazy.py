"""Lazy exports (PEP 562): a package's names imported from their modules on first use.

Packages whose modules load torch or transformers export through this, so importing the
package itself stays light.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
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

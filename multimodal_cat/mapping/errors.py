"""Errors raised while reading or building mappings between taxonomy trees.

Example:
    >>> err = MappingFormatError("expected a line starting with '→'", path="m.txt", line=2, found="x")
    >>> str(err)
    "m.txt:2: expected a line starting with '→', found 'x'"
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from multimodal_cat.errors import FormatError
from multimodal_cat.taxonomy.errors import TaxonomyFormatError

_P = ParamSpec("_P")
_R = TypeVar("_R")


class MappingFormatError(FormatError):
    """A mapping file or a set of rules that cannot be read as a mapping.

    Attributes:
        path: The file being read, when there is one.
        line: 1-based line number of the problem, when known.
        found: The offending text, when there is one.
    """


def reads_mapping(read: Callable[_P, _R]) -> Callable[_P, _R]:
    """Report the shared text / YAML reader's errors (a ``TaxonomyFormatError``) as mapping errors."""

    @functools.wraps(read)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return read(*args, **kwargs)
        except TaxonomyFormatError as error:
            raise MappingFormatError(
                error.message, path=error.path, line=error.line, found=error.found
            ) from None

    return wrapper

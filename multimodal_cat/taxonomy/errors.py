"""Errors raised while reading or looking up taxonomy trees.

All belong to the library's error family (:mod:`multimodal_cat.errors`).

Example:
    >>> err = TaxonomyFormatError("expected 'ID - A > B'", path="t.txt", line=3, found="oops")
    >>> str(err)
    "t.txt:3: expected 'ID - A > B', found 'oops'"
"""

from __future__ import annotations

from multimodal_cat.errors import FormatError, MultimodalCatError, NotFoundError


class TaxonomyFormatError(FormatError):
    """A taxonomy file (or a list of categories) that cannot be turned into a tree.

    Attributes:
        path: The file being read, when there is one.
        line: 1-based line number of the problem, when known.
        found: The offending text, when there is one.
    """


class UnknownTaxonomyError(MultimodalCatError, ValueError):
    """A taxonomy or mapping name that is neither shipped with the library nor an existing path."""


class UnknownCategoryError(NotFoundError):
    """An id or a path that the tree does not have (a ``KeyError`` too)."""

"""Errors raised while reading or looking up taxonomy trees.

Example:
    >>> err = TaxonomyFormatError("expected 'ID - A > B'", path="t.txt", line=3, found="oops")
    >>> str(err)
    "t.txt:3: expected 'ID - A > B', found 'oops'"
"""

from __future__ import annotations

from pathlib import Path


class TaxonomyFormatError(ValueError):
    """A taxonomy or mapping file (or a list of categories) that cannot be turned into a tree.

    Attributes:
        path: The file being read, when there is one.
        line: 1-based line number of the problem, when known.
        found: The offending text, when there is one.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        found: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.found = found
        self.message = message
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        elif line is not None:
            where = f"line {line}: "
        text = f"{where}{message}"
        if found is not None:
            shown = found if len(found) <= 120 else found[:117] + "..."
            text += f", found {shown!r}"
        super().__init__(text)


class UnknownTaxonomyError(ValueError):
    """A taxonomy or mapping name that is neither shipped with the library nor an existing path."""

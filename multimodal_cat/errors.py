"""The library's error family: every error it raises on purpose derives from :class:`MultimodalCatError`.

Each kind also derives from the built-in error it replaced (``ValueError``, ``OSError``,
``ModuleNotFoundError``), so ``except ValueError`` written before the family existed still works.
The kinds live next to their concern and are listed here:

- :class:`FormatError` (input that cannot be read; carries file, line and what was found):
  ``taxonomy.TaxonomyFormatError``, ``mapping.errors.MappingFormatError``,
  ``feeds.read.FeedFormatError``.
- ``taxonomy.UnknownTaxonomyError``, ``feeds.columns.FeedColumnError``, ``feeds.shards.ShardError``,
  ``feeds.write.ResumeError``, ``feeds.write.OutputPathError``, ``imaging.ImageLoadError``.
- :class:`EncoderError`: ``encoders.registry.UnknownEncoderError``.
- :class:`MissingPackageError` (names the pip command): ``encoders.registry.MissingEncoderPackageError``.
- :class:`ConfigurationError`: settings that do not fit together (a model config, a label space).
- :class:`InvalidArgumentError` (``ValueError``): an argument outside its allowed values.
- :class:`InputTypeError` (``TypeError``): an argument of a type the function does not take.
- :class:`NotFoundError` (``KeyError``): an id, a path or a name looked up where it is not;
  ``taxonomy.UnknownCategoryError`` below it.
- :class:`MissingFileError` (``FileNotFoundError``): a file or folder that does not exist;
  :class:`NotAFolderError` (``NotADirectoryError``): a file where a folder is expected.
- ``review.CorrectionError`` (a corrections file or a Label Studio export; ``LabelStudioError`` below it),
  ``review.task_images.TaskImageError`` (a local image Label Studio cannot serve).
- ``cli.errors.UserError``: a command-line mistake, printed in plain words with exit code 2.

Example:
    >>> err = FormatError("expected 'ID - A > B'", path="t.txt", line=3, found="oops")
    >>> str(err), isinstance(err, MultimodalCatError), isinstance(err, ValueError)
    ("t.txt:3: expected 'ID - A > B', found 'oops'", True, True)
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

_SHOWN = 120  # longest offending text quoted in a message


class MultimodalCatError(Exception):
    """Base of every error the library raises on purpose."""


class FormatError(MultimodalCatError, ValueError):
    """Input (a file, one of its lines, a list of records) that cannot be read as expected.

    The message reads ``file:line: expected ..., found '...'``.

    Attributes:
        path: The file being read, when there is one.
        line: 1-based line number of the problem, when known.
        found: The offending text, when there is one.
        message: The message without the location and the found text.
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
            shown = found if len(found) <= _SHOWN else found[: _SHOWN - 3] + "..."
            text += f", found {shown!r}"
        super().__init__(text)


class ConfigurationError(MultimodalCatError, ValueError):
    """Settings that do not fit together (a model config, a label space, tag groups)."""


class InvalidArgumentError(MultimodalCatError, ValueError):
    """An argument outside its allowed values (a negative batch size, a probability above 1)."""


class InputTypeError(MultimodalCatError, TypeError):
    """An argument of a type the function does not take."""


class NotFoundError(MultimodalCatError, KeyError):
    """An id, a path or a name looked up where it is not (``except KeyError`` still catches it).

    Unlike a bare ``KeyError``, ``str()`` gives the message as written, without quotes.

    Example:
        >>> str(NotFoundError("no category with id 'zz' in taxonomy 'shopify'"))
        "no category with id 'zz' in taxonomy 'shopify'"
    """

    def __str__(self) -> str:
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class MissingFileError(MultimodalCatError, FileNotFoundError):
    """A file or folder that does not exist (``except FileNotFoundError`` still catches it)."""


class NotAFolderError(MultimodalCatError, NotADirectoryError):
    """A file where a folder is expected (a checkpoint, an image root)."""


class EncoderError(MultimodalCatError):
    """An encoder that cannot be found or built."""


class MissingPackageError(MultimodalCatError, ModuleNotFoundError):
    """An optional package a feature needs is not installed; the message names the pip command."""


def optional_import(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import an optional dependency, or say which pip command installs it.

    Args:
        module: Import name, e.g. ``"pyarrow.parquet"``.
        extra: The project extra that brings it, e.g. ``"feeds"``.
        purpose: What needs it, e.g. ``"reading Parquet"``.

    Raises:
        MissingPackageError: When the package is not installed.

    Example:
        >>> optional_import("json", extra="feeds", purpose="a doctest").__name__
        'json'
        >>> optional_import("no_such_pkg", extra="feeds", purpose="a doctest")
        Traceback (most recent call last):
        ...
        multimodal_cat.errors.MissingPackageError: a doctest needs the package 'no_such_pkg', which is not installed: pip install 'multimodal-cat[feeds]' (or pip install no_such_pkg)
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        package = (error.name or module).split(".")[0]
        if package != module.split(".")[0]:
            raise  # the package is there but one of its own dependencies is missing
        raise MissingPackageError(
            f"{purpose} needs the package {package!r}, which is not installed: "
            f"pip install 'multimodal-cat[{extra}]' (or pip install {package})",
            name=package,
        ) from None

"""A fast reader for the simple YAML lists Shopify publishes (with line numbers for errors).

Shopify's category and ``full_names.yml`` files are lists of flat mappings whose values are
scalars or lists of scalars. Reading them line by line is several times faster than a YAML
parser and keeps the line number of each entry. Anything else falls back to PyYAML.

Memory stays bounded by the file's size: YAML aliases (``*name``), which let a few lines
expand into billions of nodes ("billion laughs"), are refused before anything is built, and
error messages quote a bounded :func:`excerpt` of what was found.
"""

from __future__ import annotations

import re
import reprlib
from pathlib import Path
from typing import Any

import yaml

from multimodal_cat.taxonomy.errors import TaxonomyFormatError

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_KEY = re.compile(r"^(- |  )([A-Za-z_][\w-]*):(?: (.*))?$")
_ITEM = re.compile(r"^  - (.*)$")
_PLAIN = re.compile(r"^[\w][\w .&/,()'+%>-]*$")
_EXCERPT = reprlib.Repr()
_EXCERPT.maxlevel, _EXCERPT.maxdict, _EXCERPT.maxlist, _EXCERPT.maxstring = 3, 6, 6, 80
_EXCERPT.maxother = 80


def excerpt(value: Any, limit: int = 200) -> str:
    """A short text showing ``value`` for an error message (never the whole of a big value).

    Example:
        >>> excerpt({"id": 1, "names": ["x"] * 1000})
        "{'id': 1, 'names': ['x', 'x', 'x', 'x', 'x', 'x', ...]}"
    """
    text = _EXCERPT.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_yaml_text(text: str, path: Path | None = None) -> Any:
    """Parse YAML text with the C loader when available, refusing aliases before building.

    Raises:
        TaxonomyFormatError: The text uses a YAML alias (``*name``).
        yaml.YAMLError: The text is not valid YAML.
    """
    if "*" in text:  # no alias can exist without its '*'
        for event in yaml.parse(text, Loader=_LOADER):
            if isinstance(event, yaml.AliasEvent):
                raise TaxonomyFormatError(
                    "expected plain YAML: aliases (*name) are refused in taxonomy and mapping "
                    "files (they can expand without bound)",
                    path=path,
                    line=event.start_mark.line + 1 if event.start_mark else None,
                )
    return yaml.load(text, Loader=_LOADER)


def read_text(path: Path) -> str:
    """File text with a UTF-8 BOM removed and any line ending turned into ``\\n``."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise TaxonomyFormatError(
            f"expected UTF-8 text, found bytes that are not ({error.reason})", path=path
        ) from None


def load_yaml(path: Path) -> Any:
    """Parse a whole YAML file with the C loader when available."""
    try:
        return load_yaml_text(read_text(path), path)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise TaxonomyFormatError(
            f"expected valid YAML ({getattr(error, 'problem', error)})", path=path, line=line
        ) from None


def _scalar(text: str) -> Any:
    if _PLAIN.match(text) and not text.endswith(" "):
        return int(text) if text.isdigit() and (text == "0" or text[0] != "0") else text
    return load_yaml_text(text)


def read_entries(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Read a YAML list of flat mappings as ``(line number, mapping)`` pairs.

    Falls back to a full YAML parse (line numbers become the entry's position) when the file
    uses more of YAML than this reader understands.
    """
    text = read_text(path)
    entries: list[tuple[int, dict[str, Any]]] = []
    current: dict[str, Any] | None = None
    list_key: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line == "---" or line.lstrip().startswith("#"):
            continue
        match = _KEY.match(line)
        if match:
            lead, key, value = match.groups()
            if lead == "- ":
                current = {}
                entries.append((number, current))
            elif current is None:
                return _fallback(path)
            if value is None or not value.strip():
                current[key] = []
                list_key = key
            else:
                current[key] = [] if value.strip() == "[]" else _scalar(value.strip())
                list_key = None
            continue
        item = _ITEM.match(line)
        if item and current is not None and list_key is not None:
            current[list_key].append(_scalar(item.group(1).strip()))
            continue
        return _fallback(path)
    return entries


def _fallback(path: Path) -> list[tuple[int, dict[str, Any]]]:
    data = load_yaml(path)
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise TaxonomyFormatError(
            "expected a YAML list of mappings (- id: ...)", path=path, found=excerpt(data)
        )
    return [(i, entry) for i, entry in enumerate(data, start=1)]

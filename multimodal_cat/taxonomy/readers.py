"""Readers for the published taxonomy formats, and format detection.

Formats (``format=`` names):

* ``google``: Google's ``taxonomy-with-ids.<locale>.txt`` (``5322 - Apparel & Accessories > ...``).
* ``shopify_txt``: Shopify's ``dist/en/categories.txt`` (``gid://shopify/TaxonomyCategory/aa-1 : ...``).
* ``shopify_yaml``: Shopify's source folder (``data/categories/*.yml`` with attribute handles,
  plus ``data/attributes.yml`` and ``data/values.yml`` for :attr:`Taxonomy.attribute_values`).
* ``full_names``: Shopify's integration files (``- id: 1`` / ``full_name: A > B``).
* ``csv``: ``id,parent_id,name`` or ``id,path`` with a header row.

Example:
    >>> tax = read_taxonomy("taxonomies/google/2021-09-21/taxonomy-with-ids.en-US.txt")
    >>> tax.name, len(tax)
    ('google/2021-09-21', 5595)
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from multimodal_cat.errors import InvalidArgumentError, MissingFileError
from multimodal_cat.taxonomy._bounds import MAX_DEPTH, check_depth
from multimodal_cat.taxonomy._flatyaml import excerpt, load_yaml, read_entries, read_text
from multimodal_cat.taxonomy.category import PATH_SEPARATOR, Category
from multimodal_cat.taxonomy.errors import TaxonomyFormatError
from multimodal_cat.taxonomy.tree import Taxonomy, name_problem, normalize_id

FORMATS = ("google", "shopify_txt", "shopify_yaml", "full_names", "csv")
_GOOGLE_LINE = re.compile(r"^\s*(\S+)\s+-\s+(\S.*?)\s*$")
_SHOPIFY_LINE = re.compile(r"^\s*(\S+)\s+:\s+(\S.*?)\s*$")
_VERSION_HEADER = re.compile(r"(?:Version|Categories):\s*(\S+)")


def _split_path(text: str, path: Path, line: int) -> tuple[str, ...]:
    if text.count(">") >= MAX_DEPTH:
        raise TaxonomyFormatError(
            f"expected a path of at most {MAX_DEPTH} levels, found {text.count('>') + 1:,}",
            path=path,
            line=line,
        )
    parts = tuple(" ".join(part.split()) for part in text.split(">"))
    if any(name_problem(part) for part in parts):
        raise TaxonomyFormatError(
            next(name_problem(part) for part in parts if name_problem(part)), path=path, line=line, found=text
        )
    if not all(parts):
        raise TaxonomyFormatError(
            "expected names separated by ' > '", path=path, line=line, found=text
        )
    return parts


def _tree_from_id_paths(
    rows: list[tuple[int, str, tuple[str, ...]]],
    path: Path,
    name: str,
    missing_parents: str = "error",
) -> Taxonomy:
    """Build a tree from ``(line, id, path)`` rows; each parent is the row with the parent path.

    With ``missing_parents="create"`` a parent path that has no row of its own becomes a
    category whose id is its path string (Shopify's legacy 2022-02 list needs this for
    ``Electronics > Communications > Telephony > Mobile Phones``); else it is an error.
    """
    if missing_parents not in ("error", "create"):
        raise InvalidArgumentError(f"expected missing_parents 'error' or 'create', found {missing_parents!r}")
    by_path: dict[tuple[str, ...], str] = {}
    line_of: dict[str, int] = {}
    for line, cid, cpath in rows:
        if cid in line_of:
            raise TaxonomyFormatError(
                f"duplicate id {cid!r}: expected each id once, found it again (first on line {line_of[cid]})",
                path=path,
                line=line,
            )
        if cpath in by_path:
            raise TaxonomyFormatError(
                f"duplicate path: expected each category once, found it again for id {cid!r}",
                path=path,
                line=line,
                found=PATH_SEPARATOR.join(cpath),
            )
        line_of[cid] = line
        by_path[cpath] = cid
    categories = []
    for line, cid, cpath in rows:
        parent = None
        if len(cpath) > 1:
            parent = by_path.get(cpath[:-1])
            if parent is None and missing_parents == "create":
                parent = _create_ancestors(cpath[:-1], by_path, categories)
            if parent is None:
                raise TaxonomyFormatError(
                    f"missing parent: expected a line for {PATH_SEPARATOR.join(cpath[:-1])!r} "
                    f"(the parent of id {cid!r}), found none (missing_parents='create' adds it)",
                    path=path,
                    line=line,
                )
        categories.append(Category(cid, cpath[-1], cpath, parent, len(cpath)))
    return Taxonomy(categories, name=name)


def _create_ancestors(
    cpath: tuple[str, ...], by_path: dict[tuple[str, ...], str], categories: list[Category]
) -> str:
    """Add categories for ``cpath`` and its missing ancestors (id = path string); return its id."""
    for k in range(1, len(cpath) + 1):
        if cpath[:k] not in by_path:
            cid = PATH_SEPARATOR.join(cpath[:k])
            parent = by_path.get(cpath[: k - 1]) if k > 1 else None
            by_path[cpath[:k]] = cid
            categories.append(Category(cid, cpath[k - 1], cpath[:k], parent, k))
    return by_path[cpath]


def _read_lines(path: Path, pattern: re.Pattern[str], expected: str) -> tuple[list, str | None]:
    rows: list[tuple[int, str, tuple[str, ...]]] = []
    version = None
    for number, raw in enumerate(read_text(path).splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            found = _VERSION_HEADER.search(line)
            version = version or (found.group(1) if found else None)
            continue
        match = pattern.match(line)
        if match is None:
            raise TaxonomyFormatError(f"expected {expected}", path=path, line=number, found=raw)
        rows.append(
            (number, normalize_id(match.group(1)), _split_path(match.group(2), path, number))
        )
    return rows, version


def read_google(
    path: str | Path, name: str | None = None, missing_parents: str = "error"
) -> Taxonomy:
    """Read Google's ``taxonomy-with-ids.<locale>.txt`` (``ID - A > B > C``)."""
    return _read_id_path_file(
        path, _GOOGLE_LINE, "'ID - Name > Name > ...'", "google", name, missing_parents
    )


def read_shopify_txt(
    path: str | Path, name: str | None = None, missing_parents: str = "error"
) -> Taxonomy:
    """Read Shopify's ``dist/<locale>/categories.txt``; ids become the short form (``aa-1-1``)."""
    expected = "'gid://shopify/TaxonomyCategory/ID : Name > ...'"
    return _read_id_path_file(path, _SHOPIFY_LINE, expected, "shopify", name, missing_parents)


def _read_id_path_file(
    path: str | Path, pattern: Any, expected: str, vendor: str, name: str | None, missing: str
) -> Taxonomy:
    """A one-category-per-line file (Google's or Shopify's text format) as a tree named
    ``<vendor>/<version>`` (the version from the file's header) unless ``name`` is given."""
    path = Path(path)
    rows, version = _read_lines(path, pattern, expected)
    return _tree_from_id_paths(
        rows, path, name or (f"{vendor}/{version}" if version else path.stem), missing
    )


def read_full_names(
    path: str | Path, name: str | None = None, missing_parents: str = "error"
) -> Taxonomy:
    """Read a Shopify integration ``full_names.yml`` (``- id: 1`` / ``full_name: A > B``)."""
    path = Path(path)
    rows = []
    for line, entry in read_entries(path):
        if "id" not in entry or not isinstance(entry.get("full_name"), str):
            raise TaxonomyFormatError(
                "expected an entry with 'id' and 'full_name'",
                path=path,
                line=line,
                found=excerpt(entry),
            )
        rows.append((line, normalize_id(entry["id"]), _split_path(entry["full_name"], path, line)))
    default = f"{path.parent.parent.name}/{path.parent.name}" if path.parent.name else path.stem
    return _tree_from_id_paths(rows, path, name or default, missing_parents)


def _csv_rows(reader: Any, path: Path) -> Iterator[list[str]]:
    """The reader's rows; a record the :mod:`csv` module cannot read is a format error with
    its line (a field over its 131,072-character limit, a stray quote...)."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise TaxonomyFormatError(
                "expected CSV fields under 131,072 characters, with closed quotes",
                path=path,
                line=reader.line_num,
                found=str(error),
            ) from None


def read_csv(path: str | Path, name: str | None = None, missing_parents: str = "error") -> Taxonomy:
    """Read a CSV with a header ``id,parent_id,name`` or ``id,path`` (``A > B`` paths)."""
    path = Path(path)
    reader = csv.reader(io.StringIO(read_text(path)))
    header = [h.strip().lower() for h in next(_csv_rows(reader, path), [])]
    if header[:3] != ["id", "parent_id", "name"] and header[:2] != ["id", "path"]:
        raise TaxonomyFormatError(
            "expected a header 'id,parent_id,name' or 'id,path'",
            path=path,
            line=1,
            found=",".join(header),
        )
    width = 3 if header[1] == "parent_id" else 2
    rows, records, seen = [], [], {}
    for number, row in enumerate(_csv_rows(reader, path), start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < width or not row[0].strip():
            raise TaxonomyFormatError(
                f"expected {width} columns ({','.join(header[:width])})",
                path=path,
                line=number,
                found=",".join(row),
            )
        cid = normalize_id(row[0])
        if width == 2:
            rows.append((number, cid, _split_path(row[1], path, number)))
            continue
        if cid in seen:
            raise TaxonomyFormatError(
                f"duplicate id {cid!r}: expected each id once, found it again (first on line {seen[cid]})",
                path=path,
                line=number,
            )
        seen[cid] = number
        problem = name_problem(row[2].strip())
        if problem:
            raise TaxonomyFormatError(problem, path=path, line=number, found=row[2].strip())
        parent = row[1].strip() or None
        records.append(
            Category(cid, row[2].strip(), (row[2].strip(),), parent and normalize_id(parent), 1)
        )
    if width == 2:
        return _tree_from_id_paths(rows, path, name or path.stem, missing_parents)
    check_depth({c.id: c.parent_id for c in records}, path, seen)
    for category in records:
        if category.parent_id is not None and category.parent_id not in seen:
            raise TaxonomyFormatError(
                f"missing parent: expected a row with id {category.parent_id!r} (the parent of {category.id!r}), found none",
                path=path,
                line=seen[category.id],
            )
    try:
        return Taxonomy(records, name=name or path.stem)
    except TaxonomyFormatError as error:
        raise TaxonomyFormatError(error.message, path=path) from None


def shopify_root(path: Path) -> Path:
    """The Shopify release folder (holding ``data/``) for a release or ``data/categories`` path."""
    for candidate in (path, path.parent, path.parent.parent):
        if (candidate / "data" / "categories").is_dir():
            return candidate
    raise TaxonomyFormatError(
        "expected a Shopify folder containing data/categories/*.yml", path=path
    )


def read_shopify_yaml(
    path: str | Path, name: str | None = None, missing_parents: str = "error"
) -> Taxonomy:
    """Read Shopify's ``data/categories/*.yml`` (with attribute handles) from a release folder."""
    root = shopify_root(Path(path))
    folder = root / "data" / "categories"
    files = sorted(folder.glob("*.yml"))
    if not files:
        raise TaxonomyFormatError("expected *.yml category files, found none", path=folder)
    entries: dict[str, tuple[Path, int, dict]] = {}
    parents: dict[str, str] = {}
    for file in files:
        for line, entry in read_entries(file):
            if "id" not in entry or not isinstance(entry.get("name"), str):
                raise TaxonomyFormatError(
                    "expected an entry with 'id' and 'name'", path=file, line=line, found=excerpt(entry)
                )
            cid = normalize_id(entry["id"])
            if cid in entries:
                first = entries[cid]
                raise TaxonomyFormatError(
                    f"duplicate id {cid!r}: expected each id once, found it again (first in {first[0].name}:{first[1]})",
                    path=file,
                    line=line,
                )
            entries[cid] = (file, line, entry)
            for child in entry.get("children") or []:
                parents[normalize_id(child)] = cid
    check_depth({cid: parents.get(cid) for cid in entries}, folder, {})
    for child, parent in parents.items():
        if child not in entries:
            file, line, _ = entries[parent]
            raise TaxonomyFormatError(
                f"expected a category {child!r} (listed as a child of {parent!r}), found none",
                path=file,
                line=line,
            )
    categories = [
        Category(
            cid, e["name"], (e["name"],), parents.get(cid), 1, tuple(e.get("attributes") or ())
        )
        for cid, (_, _, e) in entries.items()
    ]
    version_file = root / "VERSION"
    version = read_text(version_file).strip() if version_file.is_file() else root.name
    try:
        return Taxonomy(
            categories,
            name=name or f"shopify/{version}",
            attribute_values=lambda: read_attribute_values(root),
        )
    except TaxonomyFormatError as error:
        raise TaxonomyFormatError(error.message, path=folder) from None


def read_attribute_values(root: str | Path) -> dict[str, list[str]]:
    """Attribute handle -> value names from a Shopify folder's ``attributes.yml`` and ``values.yml``."""
    data = Path(root) / "data"
    if not (data / "attributes.yml").is_file() or not (data / "values.yml").is_file():
        return {}
    value_names = {
        e.get("friendly_id"): str(e.get("name")) for _, e in read_entries(data / "values.yml")
    }
    attributes = load_yaml(data / "attributes.yml") or {}
    out: dict[str, list[str]] = {}
    for attr in attributes.get("base_attributes") or []:
        out[attr["friendly_id"]] = [value_names.get(v, v) for v in attr.get("values") or []]
    for attr in attributes.get("extended_attributes") or []:
        out[attr["friendly_id"]] = list(out.get(attr.get("values_from"), []))
    return out


def detect_format(path: str | Path) -> str:
    """Guess the format of a taxonomy file or folder from its name and first lines."""
    path = Path(path)
    if path.is_dir():
        if (
            (path / "data" / "categories").is_dir()
            or path.name == "categories"
            or (path / "categories").is_dir()
        ):
            return "shopify_yaml"
        if (path / "dist" / "en" / "categories.txt").is_file():
            return "shopify_txt"
        raise TaxonomyFormatError(
            "expected a Shopify folder (data/categories or dist/en/categories.txt)", path=path
        )
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    head = "\n".join(read_text(path).splitlines()[:40])
    if suffix in (".yml", ".yaml"):
        if "full_name:" in head:
            return "full_names"
        raise TaxonomyFormatError("expected a full_names.yml file (- id: / full_name:)", path=path)
    for line in head.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if _SHOPIFY_LINE.match(line) and (
            line.startswith("gid://") or " > " not in line.split(" : ")[0]
        ):
            return "shopify_txt"
        if _GOOGLE_LINE.match(line):
            return "google"
        break
    raise TaxonomyFormatError(
        f"cannot tell the format: expected one of {', '.join(FORMATS)} (pass format=)", path=path
    )


_READERS = {
    "google": read_google,
    "shopify_txt": read_shopify_txt,
    "shopify_yaml": read_shopify_yaml,
    "full_names": read_full_names,
    "csv": read_csv,
}


def read_taxonomy(
    path: str | Path,
    format: str | None = None,
    name: str | None = None,
    missing_parents: str = "error",
) -> Taxonomy:
    """Read a taxonomy file or folder, detecting its format unless ``format`` is given.

    Args:
        path: File or folder.
        format: One of :data:`FORMATS`; detected when omitted.
        name: Name of the tree; taken from the file's header or location when omitted.
        missing_parents: ``"error"`` (default) or ``"create"``: what to do when a path's parent
            has no line of its own (path-based formats only).
    """
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"no taxonomy file or folder at {str(path)!r}")
    fmt = format or detect_format(path)
    if fmt not in _READERS:
        raise InvalidArgumentError(f"unknown taxonomy format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if path.is_dir() and fmt == "shopify_txt":
        path = path / "dist" / "en" / "categories.txt"
    taxonomy = _READERS[fmt](path, name=name, missing_parents=missing_parents)
    if not len(taxonomy):
        raise TaxonomyFormatError(f"expected at least one category ({fmt}), found none", path=path)
    return taxonomy

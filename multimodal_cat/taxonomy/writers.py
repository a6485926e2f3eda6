"""Writers for the formats :mod:`multimodal_cat.taxonomy.readers` reads.

Example:
    >>> from multimodal_cat.taxonomy import Taxonomy
    >>> tax = Taxonomy.from_records([("1", None, "Animals"), ("2", "1", "Pets")])
    >>> path = write_taxonomy(tax, "/tmp/animals.csv")
    >>> Taxonomy.load(path)["2"].full_path
    'Animals > Pets'
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import yaml

from multimodal_cat.errors import InvalidArgumentError
from multimodal_cat.taxonomy.tree import SHOPIFY_GID_PREFIX, Taxonomy

_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _version(tax: Taxonomy) -> str:
    return tax.name.split("/", 1)[1] if "/" in tax.name else tax.name


def write_google(tax: Taxonomy, path: str | Path) -> Path:
    """Write ``ID - A > B > C`` lines under Google's version header."""
    path = Path(path)
    lines = [f"# Google_Product_Taxonomy_Version: {_version(tax)}"]
    lines += [f"{c.id} - {c.full_path}" for c in tax]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_shopify_txt(tax: Taxonomy, path: str | Path) -> Path:
    """Write Shopify's ``categories.txt`` (``gid://shopify/TaxonomyCategory/ID : A > B``)."""
    path = Path(path)
    width = max((len(SHOPIFY_GID_PREFIX) + len(c.id) for c in tax), default=0)
    lines = [
        f"# Shopify Product Taxonomy - Categories: {_version(tax)}",
        "# Format: {GID} : {Ancestor name} > ... > {Category name}",
        "",
    ]
    lines += [f"{(SHOPIFY_GID_PREFIX + c.id).ljust(width)} : {c.full_path}" for c in tax]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_full_names(tax: Taxonomy, path: str | Path) -> Path:
    """Write a Shopify integration ``full_names.yml`` (``- id:`` / ``full_name:``)."""
    path = Path(path)
    entries = [{"id": int(c.id) if c.id.isdigit() else c.id, "full_name": c.full_path} for c in tax]
    text = yaml.dump(
        entries,
        Dumper=_DUMPER,
        sort_keys=False,
        allow_unicode=True,
        explicit_start=True,
        width=10_000,
    )
    path.write_text(text, encoding="utf-8")
    return path


def write_csv(tax: Taxonomy, path: str | Path) -> Path:
    """Write ``id,parent_id,name`` rows."""
    path = Path(path)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "parent_id", "name"])
        writer.writerows([c.id, c.parent_id or "", c.name] for c in tax)
    return path


def write_shopify_yaml(tax: Taxonomy, path: str | Path) -> Path:
    """Write a Shopify source folder: ``data/categories/<root>.yml``, plus attributes and values.

    ``VERSION`` holds the tree's version; ``attributes.yml``/``values.yml`` are written when the
    tree has :attr:`Taxonomy.attribute_values`.
    """
    root = Path(path)
    folder = root / "data" / "categories"
    folder.mkdir(parents=True, exist_ok=True)
    (root / "VERSION").write_text(_version(tax) + "\n", encoding="utf-8")
    for top in tax.roots():
        entries = []
        for c in tax.descendants(top.id, include_self=True):
            entry: dict = {
                "id": c.id,
                "name": c.name,
                "children": [k.id for k in tax.children(c.id)],
            }
            entry["attributes"] = list(c.attributes)
            entries.append(entry)
        slug = re.sub(r"[^a-z0-9]+", "_", top.name.lower()).strip("_")
        _dump(entries, folder / f"{top.id}_{slug}.yml")
    if tax.attribute_values:
        _write_attributes(tax.attribute_values, root / "data")
    return root


def _write_attributes(values: dict[str, list[str]], data: Path) -> None:
    attributes, value_entries, used = [], [], set()
    for number, (handle, names) in enumerate(values.items(), start=1):
        ids = []
        for name in names:
            value_id = base = f"{handle}__{re.sub(r'[^a-z0-9]+', '_', name.lower()).strip('_')}"
            while value_id in used:
                value_id = f"{base}_{len(used)}"
            used.add(value_id)
            ids.append(value_id)
        attributes.append(
            {"id": number, "name": handle, "friendly_id": handle, "handle": handle, "values": ids}
        )
        for value_id, value_name in zip(ids, names, strict=True):
            value_entries.append(
                {
                    "id": len(value_entries) + 1,
                    "name": value_name,
                    "friendly_id": value_id,
                    "handle": value_id,
                }
            )
    _dump({"base_attributes": attributes, "extended_attributes": []}, data / "attributes.yml")
    _dump(value_entries, data / "values.yml")


def _dump(data: object, path: Path) -> None:
    text = yaml.dump(
        data, Dumper=_DUMPER, sort_keys=False, allow_unicode=True, explicit_start=True, width=10_000
    )
    path.write_text(text, encoding="utf-8")


_WRITERS = {
    "google": write_google,
    "shopify_txt": write_shopify_txt,
    "shopify_yaml": write_shopify_yaml,
    "full_names": write_full_names,
    "csv": write_csv,
}


def write_taxonomy(tax: Taxonomy, path: str | Path, format: str | None = None) -> Path:
    """Write ``tax`` in ``format``, or the format its file name suggests.

    ``.csv`` -> csv, ``.yml``/``.yaml`` -> full_names, ``categories.txt`` -> shopify_txt,
    other ``.txt`` -> google, a name without suffix -> a shopify_yaml folder.
    """
    path = Path(path)
    if format is None:
        suffix = path.suffix.lower()
        if suffix == ".csv":
            format = "csv"
        elif suffix in (".yml", ".yaml"):
            format = "full_names"
        elif suffix == ".txt":
            format = "shopify_txt" if path.name == "categories.txt" else "google"
        else:
            format = "shopify_yaml"
    if format not in _WRITERS:
        raise InvalidArgumentError(
            f"unknown taxonomy format {format!r}: expected one of {', '.join(_WRITERS)}"
        )
    return _WRITERS[format](tax, path)

"""One input rule for every Python entry point: whatever a user hands in becomes products.

``Categorizer.predict``, ``predict_proba``, ``evaluate``, ``fit``, the review helpers and the
HTTP service all call :func:`to_products`, so they read inputs the same way the command line
reads a feed:

- a ``str`` is one title; a list, tuple, pandas ``Series`` or numpy array of strings are titles;
- a dict, a :class:`~multimodal_cat.products.Product`, a list of either, a pandas ``DataFrame``
  or a ``datasets.Dataset`` are records whose columns are found with the command line's
  :class:`~multimodal_cat.feeds.columns.ColumnMap` (``productDisplayName`` is a title,
  ``image_url`` an image...; ``columns={"title": "Name"}`` overrides);
- a :class:`pathlib.Path` is a feed file (CSV, TSV, JSON lines, Parquet, Excel), so a title is never
  opened as a file.

``None``, ``NaN`` and blank strings mean "missing" everywhere. A product with neither usable text
nor a usable image is kept, marked with an error (``product.extra["error"]``), so callers answer
it with an error status instead of a category. Relative image paths start from ``image_root``
(a feed's own folder when none is given for a feed file, else the working directory).

Example:
    >>> [p.title for p in to_products(["Red shirt", "Blue mug"])]
    ['Red shirt', 'Blue mug']
    >>> to_products({"productDisplayName": "Nike Men Running Shoes"})[0].title
    'Nike Men Running Shoes'
    >>> to_products("   ")[0].extra["error"]
    'no usable text (title, description and brand are empty) and no image'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from multimodal_cat.errors import InputTypeError, MultimodalCatError
from multimodal_cat.feeds.columns import FIELDS, ColumnMap, row_to_product
from multimodal_cat.products import NO_INPUT, Product, unusable_image

ColumnsLike = ColumnMap | Mapping[str, str] | Sequence[str] | None


def to_products(
    data: Any,
    *,
    columns: ColumnsLike = None,
    image_root: str | Path | None = None,
    load_images: bool = True,
    answers: str | None = None,
) -> list[Product]:
    """Turn titles, records, a DataFrame, a ``datasets.Dataset`` or a feed path into products.

    Args:
        data: What to categorize (see the module docstring for every accepted form).
        columns: Input column per product field (``{"title": "Name"}``, ``["title=Name"]`` or a
            :class:`ColumnMap`); fields not named are looked up under their usual names.
        image_root: Folder that relative image paths start from.
        load_images: Decode the images that products name (with the feed job's size, pixel and
            address limits); a failure becomes a warning, or the product's error when it has no
            text either.
        answers: The column(s) holding the answer (comma-separated, as ``labels`` names them):
            never read as a product field, even where the name is a field's alias (a
            ``category`` column is otherwise the seller's category), and kept in ``extra``.

    Returns:
        One product per input item, in order; ``extra["warnings"]`` says what was changed or
        could not be read, ``extra["error"]`` marks a product that cannot be categorized.

    Raises:
        InputTypeError: ``data`` is of a type the library does not read.
        FeedColumnError: Records whose columns hold no text and no image field (the message
            lists the columns found and the names expected), or a named column is missing.
    """
    if isinstance(data, Path):
        products = _feed_products(data, columns, _names(answers))
        root = image_root if image_root is not None else data.parent
    else:
        products = _records_products(as_items(data), columns, _names(answers))
        root = image_root if image_root is not None else Path.cwd()
    if load_images:
        _load_images(products, root)
    for product in products:
        image = product.has_image or (not load_images and bool(product.image_ref))
        if "error" not in product.extra and not product.has_text and not image:
            product.extra["error"] = NO_INPUT
    return products


class InputColumnError(MultimodalCatError, ValueError):
    """A column named for the products' labels or categories is in none of them."""


def column_values(products: Sequence[Product], columns: str, *, what: str = "label") -> list[str | None]:
    """Each product's value of the column(s) ``columns`` names: comma-separated names are
    joined as a path (``"kind,leaf"`` -> ``"Toys > Dolls"``); ``None`` where a product has none.

    Raises:
        InputColumnError: A named column is in none of the (non-empty) products; the message
            calls it a ``what`` column and lists the columns found.

    Example:
        >>> column_values([Product(extra={"kind": "Toys", "leaf": "Dolls"}), Product()], "kind,leaf")
        ['Toys > Dolls', None]
    """
    names = [name.strip() for name in columns.split(",") if name.strip()]
    found = {key for p in products for key in p.extra}
    missing = [name for name in names if name not in found]
    if missing and products:
        others = sorted(k for k in found if k not in ("warnings", "status"))
        raise InputColumnError(
            f"no {what} column {', '.join(map(repr, missing))}; the products' other columns are "
            f"{', '.join(others) or '(none)'}"
        )
    return [" > ".join(filter(None, (cell_text(p.extra.get(n)) for n in names))) or None for p in products]


def cell_text(value: Any) -> str:
    """A column value as text; ``""`` for None, NaN and blanks."""
    return "" if value is None or _is_nan(value) else str(value).strip()


def input_index(data: Any, count: int) -> list[Any]:
    """The labels a table built from ``data`` should carry: a DataFrame's or Series' own index,
    else positions ``0..count-1``.

    Example:
        >>> input_index(["a", "b"], 2)
        [0, 1]
    """
    index = getattr(data, "index", None)
    if index is not None and not callable(index) and len(index) == count:
        return list(index)
    return list(range(count))


def as_items(data: Any) -> list[Any]:
    """Each input item as a title (str, or None / NaN for a missing one) or a record (a
    Product or a mapping), in order; a feed path is not read here.

    Raises:
        InputTypeError: ``data`` or one of its items is of a type the library does not read.
    """
    if isinstance(data, (str, Product, Mapping)):
        return [data]
    if hasattr(data, "columns") and hasattr(data, "to_dict"):  # a pandas DataFrame
        frame = data.rename(columns=str)
        return frame.to_dict(orient="records")
    if hasattr(data, "column_names") and hasattr(data, "features"):  # a datasets.Dataset
        return list(data)
    if hasattr(data, "tolist"):  # a pandas Series or a numpy array
        data = data.tolist()
    if isinstance(data, (bytes, bytearray)) or not isinstance(data, Iterable):
        raise InputTypeError(
            "expected a title (str), a list of titles, a dict or list of dicts, a Product, a "
            "pandas DataFrame or Series, a datasets.Dataset or a pathlib.Path to a feed file; "
            f"found {type(data).__name__}"
        )
    items = list(data)
    for position, item in enumerate(items):
        if not (item is None or _is_nan(item) or isinstance(item, (str, Product, Mapping))):
            raise InputTypeError(
                f"item {position} is of type {type(item).__name__}: expected a title (str), a dict of "
                "product fields or a Product"
            )
    return items


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


def _names(answers: str | None) -> frozenset[str]:
    return frozenset(n.strip() for n in answers.split(",")) if answers else frozenset()


def _records_products(items: list[Any], columns: ColumnsLike, answers: frozenset[str]) -> list[Product]:
    records = [item for item in items if isinstance(item, Mapping)]
    resolved = _resolve(records, columns, answers) if records else None
    products = []
    for number, item in enumerate(items, start=1):
        if isinstance(item, Product):
            products.append(item)
        elif isinstance(item, Mapping):
            products.append(_record_product(item, resolved, number))  # type: ignore[arg-type]
        else:  # a title; None or NaN is a missing one
            title = item if isinstance(item, str) else ""
            products.append(Product(id=str(number), title=title, extra={"warnings": []}))
    return products


def _resolve(records: list[Mapping[str, Any]], columns: ColumnsLike, answers: frozenset[str]) -> ColumnMap:
    """The column map resolved against the union of the records' keys, in first-seen order
    (the answer columns never read as fields)."""
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(str(key) for key in record))
    cmap = columns if isinstance(columns, ColumnMap) else ColumnMap.from_args(columns)
    return cmap.resolve(list(names), answers=answers)


def _record_product(record: Mapping[str, Any], columns: ColumnMap, number: int) -> Product:
    row = {str(key): value for key, value in record.items()}
    image = row.get(columns.image) if columns.image else None
    if isinstance(image, Image.Image):
        row[columns.image] = None  # type: ignore[index]
    product = row_to_product(row, columns, number)
    if isinstance(image, Image.Image):
        product.image = image
    used = {getattr(columns, f) for f in FIELDS}
    product.extra.update({k: v for k, v in row.items() if k not in used and k not in product.extra})
    return product


def _feed_products(path: Path, columns: ColumnsLike, answers: frozenset[str]) -> list[Product]:
    """Every record of a feed file; an unreadable one stays in place with its reason."""
    from multimodal_cat.feeds.read import FeedReader

    cmap = columns if isinstance(columns, ColumnMap) else ColumnMap.from_args(columns)
    products = []
    with FeedReader(path) as reader:
        resolved = cmap.resolve(reader.columns, answers=answers)
        for row in reader:
            if row.values is None or row.error:
                product = Product(id=str(row.number), extra={"warnings": [], "error": row.error})
            else:
                product = _record_product(row.values, resolved, row.number)
            product.extra["warnings"][:0] = list(row.warnings)
            products.append(product)
    return products


def attach_images(products: Sequence[Product], loader: Any) -> list[tuple[Product, str]]:
    """Decode the image each product names with ``loader`` (an
    :class:`~multimodal_cat.feeds.images.ImageLoader`: its limits, its root) and attach it;
    products already holding an image are left alone.

    Returns:
        ``(product, problem)`` for each image that could not be used (its image stays ``None``).
    """
    wanted = [p for p in products if p.image is None and p.image_ref and "error" not in p.extra]
    futures = [loader.submit(p.image_ref) for p in wanted]
    problems = []
    for product, future in zip(wanted, futures, strict=True):
        product.image, problem = future.result()
        if problem:
            problems.append((product, problem))
    return problems


def _load_images(products: list[Product], root: str | Path) -> None:
    """Decode each product's named image in place; a failure is a warning on the product."""
    if not any(p.image is None and p.image_ref for p in products):
        return
    from multimodal_cat.feeds.images import ImageLoader

    loader = ImageLoader(root)
    try:
        problems = attach_images(products, loader)
    finally:
        loader.close()
    for product, problem in problems:
        warning, error = unusable_image(product.has_text, problem)
        if error:
            product.extra["error"] = error
        else:
            product.extra["status"] = "degraded"
            product.extra.setdefault("warnings", []).append(warning)

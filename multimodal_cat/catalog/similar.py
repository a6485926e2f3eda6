"""Similar products: the catalog's nearest neighbours of a shopper's photo, a title, both, or
a product already in the index.

Example:
    >>> similar("catalog.idx", image="photo.jpg", k=5)  # doctest: +SKIP
       rank     id  score                 title  category
    0     1  15970   0.91  Turtle Check Men Navy...
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from multimodal_cat.catalog.embed import CatalogEncoders
from multimodal_cat.catalog.index import CatalogIndex, CatalogIndexError, fuse
from multimodal_cat.errors import MultimodalCatError
from multimodal_cat.imaging import open_image

SAME_KIND = 0.4  # re-ranking weight by the query's predicted category (fashion validation split)
COLUMNS = ["rank", "id", "score", "title", "category", "seller", "image_ref", "kind"]


class QueryImageError(MultimodalCatError, ValueError):
    """The query photo cannot be read."""


def load_query_image(image: Any) -> Image.Image:
    """A PIL image from a path, bytes or a PIL image.

    Raises:
        QueryImageError: the file is missing, not an image, or over the library's limits.
    """
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    try:
        return open_image(Path(image) if isinstance(image, str) else image)
    except (OSError, ValueError, MultimodalCatError) as error:
        raise QueryImageError(f"cannot read the query image {str(image)[:200]!r}: {error}") from None


def query_vector(
    index: CatalogIndex,
    *,
    encoders: CatalogEncoders | None,
    image: Any = None,
    title: str | None = None,
    id: Any = None,  # noqa: A002 - the public keyword the CLI's --id mirrors
) -> tuple[np.ndarray, str]:
    """The query's vector and the kind of index vectors it searches."""
    if id is not None:
        row = index.row_of(id)
        if "fused" in index.kinds and all(index.has[m][row] for m in index.encoders):
            kind = "fused"
        else:
            kind = "text" if "text" in index.encoders and index.has["text"][row] else "image"
        return index.vectors_of(kind, [row]), kind
    if encoders is None:
        wanted = {m: spec for m, spec in index.specs.items()
                  if (m == "image" and image is not None) or (m == "text" and title)}
        if not wanted:
            raise CatalogIndexError(
                "a photo or title query needs the index's encoders; this index records none "
                f"for that input (it holds {', '.join(sorted(index.encoders))} vectors)"
            )
        encoders = CatalogEncoders.from_specs(wanted)
    parts: dict[str, np.ndarray] = {}
    if image is not None:
        encoders.check(index, "image")
        parts["image"] = encoders.encode_images([load_query_image(image)])
    if title is not None and str(title).strip():
        encoders.check(index, "text")
        parts["text"] = encoders.encode_texts([str(title)])
    if not parts:
        raise CatalogIndexError("expected a query: an image, a title or an id; found none")
    if len(parts) == 1 or len(index.encoders) == 1:
        kind = next(iter(parts))
        return parts[kind], kind
    return fuse(parts["text"], parts["image"], index.text_weight), "fused"


def similar(
    index: CatalogIndex | str | Path,
    *,
    image: Any = None,
    title: str | None = None,
    id: Any = None,  # noqa: A002
    k: int = 10,
    within: str | None = None,
    encoders: CatalogEncoders | None = None,
    same_kind: float = SAME_KIND,
) -> pd.DataFrame:
    """The ``k`` catalog products most like a photo, a title, both, or a product of the index.

    Args:
        index: a :class:`CatalogIndex`, or the folder it was saved in.
        image: the shopper's photo (path, bytes or PIL image); alone it is enough.
        title: a title or search text.
        id: a product of the index (it is left out of its own results).
        k: how many products.
        within: only products in this branch of the tree (``"Apparel > Shoes"``).
        encoders: the index's encoders (default: loaded as the index records them).
        same_kind: favour products of the category the query is predicted to be (the
            index's kind probes, learnt by ``index build``; else the category its nearest
            neighbours hold most; see :meth:`CatalogIndex.search`; 0: plain cosine order).

    Returns:
        A DataFrame, best first: rank, id, score (cosine), title, category, seller, image_ref,
        kind (the vectors searched: text, image or fused).

    Raises:
        QueryImageError: the photo cannot be read.
        CatalogIndexError: another encoder, an unknown id or branch, no query.
    """
    if k < 1:
        raise CatalogIndexError(f"expected k >= 1; found {k}")
    if not isinstance(index, CatalogIndex):
        index = CatalogIndex.load(index)
    vector, kind = query_vector(index, encoders=encoders, image=image, title=title, id=id)
    if not len(index):
        return pd.DataFrame(columns=COLUMNS)
    exclude = [str(id)] if id is not None else []
    hits = index.search(vector, kind=kind, k=k, within=within, exclude=exclude,
                        same_kind=same_kind)[0]
    rows = []
    for rank, (product_id, score) in enumerate(hits, start=1):
        record = index.records[index.row_of(product_id)]
        rows.append({
            "rank": rank, "id": product_id, "score": score, "title": record.get("title", ""),
            "category": record.get("category"), "seller": record.get("seller", ""),
            "image_ref": record.get("image_ref", ""), "kind": kind,
        })
    return pd.DataFrame(rows, columns=COLUMNS)

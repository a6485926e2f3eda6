"""Catalog quality control and visual search from one catalog index.

- :class:`CatalogIndex` (``catalog/index.py``): vectors, ids, categories, encoder keys; exact or
  usearch search, restricted to a branch of the tree.
- :func:`similar` (``catalog/similar.py``): products like a photo, a title or a catalog id.
- :func:`audit` (``catalog/audits/``): duplicates, categories, images, reuse, labels.
- :func:`compare_photos` (``catalog/copies.py``): is one photo a copy of the other (cropped,
  resized, re-encoded)? The duplicates audit's verdict when both listings have a photo.
- ``catalog/report.py``: CSV / JSON lines and one self-contained HTML page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from multimodal_cat._lazy import lazy_exports

if TYPE_CHECKING:
    from multimodal_cat.catalog.audits import audit
    from multimodal_cat.catalog.build import build_index
    from multimodal_cat.catalog.copies import PhotoComparison, compare_photos
    from multimodal_cat.catalog.embed import CatalogEncoders
    from multimodal_cat.catalog.index import CatalogIndex, CatalogIndexError
    from multimodal_cat.catalog.similar import similar

_EXPORTS = {
    "audit": "multimodal_cat.catalog.audits",
    "build_index": "multimodal_cat.catalog.build",
    "CatalogEncoders": "multimodal_cat.catalog.embed",
    "CatalogIndex": "multimodal_cat.catalog.index",
    "CatalogIndexError": "multimodal_cat.catalog.index",
    "compare_photos": "multimodal_cat.catalog.copies",
    "PhotoComparison": "multimodal_cat.catalog.copies",
}
__all__ = [
    "CatalogEncoders",
    "CatalogIndex",
    "CatalogIndexError",
    "PhotoComparison",
    "audit",
    "build_index",
    "compare_photos",
    "similar",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

# Eager: the function shares its module's name, and a lazy attribute would be shadowed by the
# submodule as soon as anything imports ``multimodal_cat.catalog.similar``.
from multimodal_cat.catalog.similar import similar  # noqa: E402

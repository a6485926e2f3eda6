"""multimodal_cat: categorize marketplace products into any taxonomy and map between trees.

The names users call are importable from the top (each on first use, so ``import
multimodal_cat`` loads neither torch nor transformers):

- :class:`Categorizer`: products in, predictions (and mapped categories) out;
- :class:`Taxonomy`: a category tree (shipped: ``"google"``, ``"shopify"``; or your file);
- :class:`Mapping`: a mapping between two trees;
- :class:`Product` and :class:`Prediction`: what goes in and what comes out.

It also makes trained checkpoints Hugging Face-native: once transformers loads its Auto
classes, ``AutoConfig`` / ``AutoModel`` / ``AutoProcessor.from_pretrained(folder)`` load a
checkpoint and ``transformers.pipeline("product-categorization", model=folder)`` runs it
(post-import hooks, :mod:`multimodal_cat.modeling.auto`: nothing heavy is imported here).

Example:
    >>> from multimodal_cat import Mapping, Product, Taxonomy
    >>> Taxonomy.load("google")["5322"].full_path
    'Apparel & Accessories > Clothing > Activewear'
    >>> Mapping.load("shopify", "google").map("aa-1-1").target_ids
    ('5322',)
    >>> Product(title="Red sneakers").title
    'Red sneakers'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from multimodal_cat._lazy import after_import, lazy_exports

if TYPE_CHECKING:
    from multimodal_cat.categorizer import Categorizer
    from multimodal_cat.mapping.mapping import Mapping
    from multimodal_cat.predictions import Prediction
    from multimodal_cat.products import Product
    from multimodal_cat.taxonomy.tree import Taxonomy

__version__ = "0.1.0"

_EXPORTS = {
    "Categorizer": "multimodal_cat.categorizer",
    "Mapping": "multimodal_cat.mapping.mapping",
    "Prediction": "multimodal_cat.predictions",
    "Product": "multimodal_cat.products",
    "Taxonomy": "multimodal_cat.taxonomy.tree",
}

__all__ = ["Categorizer", "Mapping", "Prediction", "Product", "Taxonomy", "__version__"]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


def _register_with_transformers() -> None:
    """``AutoConfig`` / ``AutoModel`` / ``AutoProcessor`` and ``pipeline("product-categorization")``
    know our checkpoints once transformers loads them (post-import hooks: nothing is imported now).
    """
    from multimodal_cat.modeling.auto import TRIGGERS, on_import

    for module in TRIGGERS:
        after_import(module, on_import)


_register_with_transformers()

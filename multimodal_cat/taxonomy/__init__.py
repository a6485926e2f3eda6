"""Taxonomy trees: the immutable :class:`Taxonomy`, its readers, writers and shipped trees.

Example:
    >>> from multimodal_cat.taxonomy import Taxonomy
    >>> google = Taxonomy.load("google")
    >>> google["5322"].full_path
    'Apparel & Accessories > Clothing > Activewear'
"""

from __future__ import annotations

from multimodal_cat.taxonomy.category import Category
from multimodal_cat.taxonomy.errors import TaxonomyFormatError, UnknownTaxonomyError
from multimodal_cat.taxonomy.index import TaxonomyIndex
from multimodal_cat.taxonomy.tree import Taxonomy

__all__ = ["Category", "Taxonomy", "TaxonomyFormatError", "TaxonomyIndex", "UnknownTaxonomyError"]

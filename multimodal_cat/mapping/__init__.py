"""Mappings between taxonomy trees: published rule files, fallback, composition, inversion, and
their application to predictions (:mod:`.apply`).

Example:
    >>> from multimodal_cat.mapping import Mapping
    >>> Mapping.load("shopify", "google").map("aa-1-1").target_paths
    ('Apparel & Accessories > Clothing > Activewear',)
"""

from __future__ import annotations

from multimodal_cat.mapping.apply import CategoryMapper, resolve_mapping
from multimodal_cat.mapping.mapping import Mapping
from multimodal_cat.mapping.rule import MappedCategory, MappingRule

__all__ = ["CategoryMapper", "MappedCategory", "Mapping", "MappingRule", "resolve_mapping"]

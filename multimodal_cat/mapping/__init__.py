"""Mappings between taxonomy trees: published rule files, fallback, composition, inversion.

Example:
    >>> from multimodal_cat.mapping import Mapping
    >>> Mapping.load("shopify", "google").map("aa-1-1").target_paths
    ('Apparel & Accessories > Clothing > Activewear',)
"""

from __future__ import annotations

from multimodal_cat.mapping.mapping import Mapping
from multimodal_cat.mapping.rule import MappingRule

__all__ = ["Mapping", "MappingRule"]

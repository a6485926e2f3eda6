"""multimodal_cat: categorize marketplace products into any taxonomy and map between trees."""

from __future__ import annotations

__version__ = "0.1.0"

"""Human in the loop: review queues, Label Studio tasks and exports, corrections, what to label next.

Example:
    >>> from multimodal_cat.review import Correction
    >>> Correction(product_id="1", action="accepted", category_id="aa-1").label
    'aa-1'
"""

from multimodal_cat.review.corrections import (
    Correction,
    CorrectionError,
    apply_corrections,
    read_corrections,
    reviewed_ids,
    unseen_rows,
    write_corrections,
)
from multimodal_cat.review.labelstudio import labeling_config, read_export, to_tasks, write_tasks
from multimodal_cat.review.routing import ReviewRouter, review_reasons
from multimodal_cat.review.selection import suggest, typicality, uncertainty

__all__ = [
    "Correction",
    "CorrectionError",
    "ReviewRouter",
    "apply_corrections",
    "labeling_config",
    "read_corrections",
    "read_export",
    "review_reasons",
    "reviewed_ids",
    "suggest",
    "to_tasks",
    "typicality",
    "uncertainty",
    "unseen_rows",
    "write_corrections",
    "write_tasks",
]

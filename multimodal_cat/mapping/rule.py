"""The mapping records: a :class:`MappingRule` (shared by published and inferred mappings) and
the :class:`MappedCategory` a rule gives for one predicted category."""

from __future__ import annotations

from dataclasses import dataclass

from multimodal_cat.errors import InputTypeError, InvalidArgumentError

PROVENANCES = ("published", "inferred", "inherited", "inverted")


@dataclass(frozen=True)
class MappingRule:
    """One rule: a source category maps to one or more target categories.

    Attributes:
        source_id: Category id in the source tree.
        target_ids: Category ids in the target tree (usually one).
        provenance: ``published`` (a rule file), ``inferred`` (predicted by a model, e.g. the
            alignment stream), ``inherited`` (a composed rule that used an ancestor's rule) or
            ``inverted`` (a rule read backwards: its targets are candidates, not an answer).
        confidence: 1.0 for published rules; below 1 for inferred ones; for inverted ones,
            shared among the candidates.

    Example:
        >>> MappingRule("aa-1-1", ("5322",))
        MappingRule(source_id='aa-1-1', target_ids=('5322',), provenance='published', confidence=1.0)
    """

    source_id: str
    target_ids: tuple[str, ...]
    provenance: str = "published"
    confidence: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.target_ids, str):
            raise InputTypeError(
                f"expected target_ids as a tuple of ids, found the string {self.target_ids!r}"
            )
        if not 0.0 <= self.confidence <= 1.0:
            raise InvalidArgumentError(f"expected a confidence in [0, 1], found {self.confidence}")


@dataclass(frozen=True)
class MappedCategory:
    """The equivalent category in another taxonomy tree.

    Attributes:
        taxonomy: Name of the target tree, e.g. ``google/2021-09-21``.
        target_ids: Target category ids (usually one; empty when nothing maps).
        target_paths: Full paths of the targets, same order.
        provenance: ``published``, ``inherited`` (from an ancestor's rule), ``inferred``,
            ``inverted`` (candidates of a mapping read backwards) or ``unmapped``.
        confidence: Confidence in the rule, 1.0 for published rules.
    """

    taxonomy: str
    target_ids: tuple[str, ...]
    target_paths: tuple[str, ...] = ()
    provenance: str = "published"
    confidence: float = 1.0

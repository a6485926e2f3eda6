"""Attach the equivalent categories in other marketplaces' trees to predictions.

A :class:`CategoryMapper` holds one mapping per target tree: the published rules where the
library ships them (composed or inverted as needed), otherwise a mapping inferred from category
names and paths with the text encoder (:func:`resolve_mapping`). It is the one place that
applies mappings to predictions, for the Python API and the feed job alike.

Example:
    >>> from multimodal_cat.taxonomy import Taxonomy
    >>> mapper = CategoryMapper.to_targets(Taxonomy.load("shopify"), ["google"])
    >>> mapper.map_id("aa-1-1")["google/2021-09-21"].target_ids
    ('5322',)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from multimodal_cat.errors import InvalidArgumentError
from multimodal_cat.mapping.mapping import Mapping
from multimodal_cat.mapping.rule import MappedCategory
from multimodal_cat.taxonomy import Taxonomy, UnknownTaxonomyError

if TYPE_CHECKING:
    from multimodal_cat.predictions import Prediction

logger = logging.getLogger(__name__)


class CategoryMapping(Protocol):
    """What the mapper needs from a mapping (:class:`~multimodal_cat.mapping.Mapping` has it)."""

    target_name: str

    def map(self, source_id: str) -> MappedCategory: ...


def resolve_mapping(
    source: Taxonomy, target: str | Taxonomy, *, text_encoder: str | None = "minilm"
) -> Mapping:
    """The mapping from ``source`` to ``target``: published when shipped, else inferred.

    Args:
        source: The tree predictions are made in.
        target: A shipped tree name (``google``), a file path, or a loaded tree.
        text_encoder: Encoder used when the mapping has to be inferred (``None``: names only).

    Raises:
        ValueError: ``target`` is the source tree itself.
    """
    target_tree = target if isinstance(target, Taxonomy) else Taxonomy.load(target)
    if target_tree.name == source.name:
        raise InvalidArgumentError(f"cannot map {source.name!r} to itself: choose another --map-to tree")
    try:
        return Mapping.load(source.name, target_tree.name)
    except UnknownTaxonomyError:
        pass
    from multimodal_cat.align import MappingAligner

    logger.info("No published mapping %s -> %s: inferring one.", source.name, target_tree.name)
    return MappingAligner(text_encoder=text_encoder).align(source, target_tree).mapping


class CategoryMapper:
    """Map predicted categories into each target tree.

    Args:
        mappings: One mapping per target tree, each with ``target_name`` and ``map(id)``.

    Example:
        >>> from multimodal_cat.mapping import MappingRule
        >>> tree = Taxonomy.from_paths(["Shoes", "Shoes > Boots"], name="shop")
        >>> rules = Mapping([MappingRule("Shoes", ("187",))], source=tree, target_name="google")
        >>> CategoryMapper([rules]).map_id("Shoes > Boots")["google"].provenance
        'inherited'
    """

    def __init__(self, mappings: Iterable[CategoryMapping] = ()) -> None:
        self.mappings = list(mappings)

    @classmethod
    def to_targets(
        cls,
        source: Taxonomy,
        targets: Iterable[str | Taxonomy | Mapping],
        *,
        text_encoder: str | None = "minilm",
    ) -> CategoryMapper:
        """A mapper from ``source`` to each target: a shipped name, a file path, a loaded tree
        (mapped with :func:`resolve_mapping`) or a ready :class:`Mapping`."""
        return cls(
            t if isinstance(t, Mapping) else resolve_mapping(source, t, text_encoder=text_encoder)
            for t in targets
        )

    def __len__(self) -> int:
        return len(self.mappings)

    @property
    def target_names(self) -> list[str]:
        """Names of the target trees, in the order they were given."""
        return [str(m.target_name) for m in self.mappings]

    def map_id(self, category_id: str) -> dict[str, MappedCategory]:
        """The mapped category in every target tree, keyed by target tree name."""
        out: dict[str, MappedCategory] = {}
        for mapping in self.mappings:
            mapped = mapping.map(category_id)
            out[mapped.taxonomy] = mapped
        return out

    def apply(self, predictions: Sequence[Prediction]) -> None:
        """Fill ``prediction.mappings`` in place for each prediction (not for failed ones:
        they name no category)."""
        for prediction in predictions:
            if prediction.status == "error":
                continue
            prediction.mappings.update(self.map_id(prediction.category_id))

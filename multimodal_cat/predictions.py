"""Prediction records: what the library hands back for each product.

Every predictor (trained model, zero-shot search) returns :class:`Prediction` objects, so the
feed job, the review queue and a future upload-time service read one shape.

Example:
    >>> p = Prediction(category_id="aa-1-1", category_path="Apparel & Accessories > Clothing > Activewear",
    ...                confidence=0.91)
    >>> p.to_dict()["category_id"]
    'aa-1-1'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from multimodal_cat.errors import MultimodalCatError

if TYPE_CHECKING:
    from multimodal_cat.mapping.rule import MappedCategory


@dataclass(frozen=True)
class CategoryScore:
    """A candidate category with its score (probability or calibrated similarity)."""

    id: str
    path: str
    score: float


@dataclass(frozen=True)
class TagScore:
    """One attribute tag (``attribute`` = e.g. ``color``, ``value`` = e.g. ``red``) with its score."""

    attribute: str
    value: str
    score: float


@dataclass
class Prediction:
    """The answer for one product.

    Attributes:
        category_id: Predicted category id in the product's tree.
        category_path: Its full path (``A > B > C``); always a path that exists in the tree.
        confidence: Probability-like confidence of ``category_id`` in ``[0, 1]``.
        alternatives: Top-k candidates, best first (the first is the prediction itself).
        tags: Attribute tags with scores.
        mappings: Equivalent categories keyed by target taxonomy name
            (:class:`~multimodal_cat.mapping.rule.MappedCategory`).
        warnings: Plain-words notes, e.g. that the image could not be read and the
            prediction used text only.
        inputs: What the answer was computed from: ``"text+image"``, ``"text"`` or ``"image"``
            (empty when the predictor does not say).
        by_input: For a product with both text and an image, what each alone says
            (``{"text": CategoryScore, "image": CategoryScore}``), when the predictor can tell;
            the review router flags products whose two inputs confidently disagree.
        status: ``"ok"``, ``"degraded"`` (an input could not be used: answered from the rest,
            see ``warnings``) or ``"error"`` (no category: see ``error``).
        error: Why the product could not be categorized (``status == "error"``), else ``None``.
        needs_review: Whether a person should check the answer (``None``: not routed; see
            :class:`~multimodal_cat.review.routing.ReviewRouter`), with ``review_reason``.
    """

    category_id: str
    category_path: str
    confidence: float
    alternatives: list[CategoryScore] = field(default_factory=list)
    tags: list[TagScore] = field(default_factory=list)
    mappings: dict[str, MappedCategory] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    inputs: str = ""
    by_input: dict[str, CategoryScore] = field(default_factory=dict)
    status: str = "ok"
    error: str | None = None
    needs_review: bool | None = None
    review_reason: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.mappings, TreeMappings):
            self.mappings = TreeMappings(self.mappings)

    @classmethod
    def failed(cls, reason: str, warnings: Sequence[str] = ()) -> Prediction:
        """The answer for a product that cannot be categorized: no category, ``status="error"``.

        Example:
            >>> Prediction.failed("no usable text and no image").status
            'error'
        """
        return cls("", "", 0.0, warnings=list(warnings), status="error", error=reason)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)


def same_tree(name: str, key: str) -> bool:
    """``google`` names the tree keyed ``google/2021-09-21`` (a tree's short name, before ``/``).

    Example:
        >>> same_tree("google", "google/2021-09-21"), same_tree("shopify", "google/2021-09-21")
        (True, False)
    """
    return name == key or name.split("/")[0] == key.split("/")[0]


class TreeMappings(dict):
    """Mapped categories keyed by target tree; a tree's short name finds its versioned key.

    Example:
        >>> m = TreeMappings({"google/2021-09-21": "..."})
        >>> m["google"], "google" in m, m.get("shopify")
        ('...', True, None)
    """

    def _key(self, name: Any) -> Any:
        if dict.__contains__(self, name) or not isinstance(name, str):
            return name
        return next((k for k in self if same_tree(name, k)), name)

    def __missing__(self, name: Any) -> Any:
        key = self._key(name)
        if key == name:
            raise MappingKeyError(
                f"no mapping into {name!r}; the prediction has {', '.join(self) or 'none'}"
            )
        return dict.__getitem__(self, key)

    def __contains__(self, name: Any) -> bool:
        return dict.__contains__(self, self._key(name))

    def get(self, name: Any, default: Any = None) -> Any:
        return dict.get(self, self._key(name), default)


class MappingKeyError(MultimodalCatError, KeyError):
    """A prediction was asked for a tree it was not mapped into."""


def inputs_used(has_text: Sequence[bool], has_image: Sequence[bool]) -> list[str]:
    """The ``inputs`` label of each product from whether it had text and an image.

    Example:
        >>> inputs_used([True, True, False], [True, False, True])
        ['text+image', 'text', 'image']
    """
    names = {(True, True): "text+image", (True, False): "text", (False, True): "image"}
    return [names.get((bool(t), bool(i)), "") for t, i in zip(has_text, has_image, strict=True)]


def failed_if_unread(predictions: Sequence[Prediction], reason: str) -> list[Prediction]:
    """``predictions``, each one that read no input (``inputs == ""``: the product had nothing
    its predictor can read) replaced by :meth:`Prediction.failed` with ``reason``, its warnings
    kept: a predictor never answers from nothing.

    Example:
        >>> read, unread = Prediction("1", "A", 0.9, inputs="text"), Prediction("1", "A", 0.1)
        >>> [p.status for p in failed_if_unread([read, unread], "a photo alone")]
        ['ok', 'error']
    """
    return [p if p.inputs else Prediction.failed(reason, p.warnings) for p in predictions]

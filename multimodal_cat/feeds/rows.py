"""Turn one batch of products into output rows: the step the feed job and the service share.

A :class:`RowItem` is one input record on its way to an output row: its product, the image
load started for it, the warnings gathered so far, and its error when nothing can be
predicted. :func:`start_item` starts the image load (or records why the product cannot be
used); :class:`OutputRows` waits for the images, predicts the batch in one call, maps the
categories into other trees, routes rows to review and returns one output row per item (the
columns of :mod:`.output_row`). The local feed job (:mod:`.job`) and the upload-time service
(:mod:`multimodal_cat.serving`) both call it, so a product gets the same row from either.

Example:
    >>> from multimodal_cat.predictors import DryRunPredictor
    >>> from multimodal_cat.products import Product
    >>> item = start_item(RowItem(1), Product(id="7", title="Red sneakers"), loader=None)
    >>> row = OutputRows(DryRunPredictor())([item])[0]
    >>> row["id"], row["status"], row["error"]
    ('7', 'ok', None)
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from multimodal_cat.feeds.columns import row_to_product
from multimodal_cat.feeds.output_row import prediction_cells
from multimodal_cat.predictions import Prediction
from multimodal_cat.predictors.base import reads_images
from multimodal_cat.products import NO_INPUT, Product, unusable_image
from multimodal_cat.review.routing import unusable_confidence

if TYPE_CHECKING:
    from collections.abc import Callable

    from multimodal_cat.feeds.columns import ColumnMap
    from multimodal_cat.feeds.images import ImageLoader
    from multimodal_cat.feeds.read import RawRow
    from multimodal_cat.mapping.apply import CategoryMapper
    from multimodal_cat.predictors.base import Predictor

    Router = Callable[[Product, Prediction], tuple[bool, str]]



@dataclass
class RowItem:
    """One record on its way to an output row.

    Attributes:
        number: The ``row`` cell: 1-based record number (in a feed, or in a request).
        product: The product, once read; ``None`` when the record could not be read.
        future: The image load in flight; ``(image, warning)`` when done.
        warnings: Plain-words notes collected so far.
        error: Why nothing can be predicted (the row's ``error``); ``None`` when fine.
        status: ``ok`` or ``degraded`` (predicted without the image).
        prediction: The answer, once predicted.
        keep: Input columns copied to the output row.
        source: The caller's own record (the feed job keeps its raw row here).
    """

    number: int
    product: Product | None = None
    future: Future[Any] | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    status: str = "ok"
    prediction: Prediction | None = None
    keep: dict[str, Any] = field(default_factory=dict)
    source: Any = None


def photo_loader(predictor: Any, loader: ImageLoader | None) -> ImageLoader | None:
    """``loader`` when ``predictor`` reads photos (:func:`~multimodal_cat.predictors.base.reads_images`),
    else ``None``: no photo is fetched for a predictor that would not read it."""
    return loader if reads_images(predictor) else None


def start_item(item: RowItem, product: Product, loader: ImageLoader | None) -> RowItem:
    """Attach ``product`` to ``item`` and start loading its image with ``loader``.

    A product with neither usable text nor an image reference gets its error here; without a
    ``loader`` (a predictor that reads no photo) a product with only a photo goes to the
    predictor, whose failed answer says why.
    """
    item.warnings += product.extra.pop("warnings", [])
    item.product = product
    if product.image_ref and loader is not None:
        item.future = loader.submit(product.image_ref)
    elif product.image is None and not product.has_text and not product.image_ref:
        item.error = NO_INPUT
    return item


def feed_item(
    raw: RawRow, columns: ColumnMap, keep: dict[str, str], loader: ImageLoader | None
) -> RowItem:
    """The item of one feed record (its kept columns, its product, its image load started).

    A record that could not be parsed, or whose cells cannot make a product, keeps its error;
    the raw record stays on the item as its ``source``.
    """
    item = RowItem(raw.number, warnings=list(raw.warnings), error=raw.error, source=raw)
    if raw.values is None:
        return item
    item.keep = {out: raw.values.get(col) for col, out in keep.items()}
    try:
        product = row_to_product(raw.values, columns, raw.number)
    except Exception as error:  # whatever the bytes, a bad row stays that row's error
        item.error = f"line {raw.line}: cannot read this row ({type(error).__name__})"
        return item
    return start_item(item, product, loader)


def attach_image(item: RowItem, image: Any, warning: str | None) -> None:
    """Put a loaded image on the item's product, or note why it cannot be used: the row is
    ``degraded`` (predicted from text) when the product has text, an ``error`` otherwise."""
    product = item.product
    if warning is None:
        product.image = image  # type: ignore[union-attr]
        return
    note, error = unusable_image(product.has_text, warning)  # type: ignore[union-attr]
    if error:
        item.error = error
    else:
        item.status = "degraded"
        item.warnings.append(note)


def ready_items(items: Sequence[RowItem]) -> list[RowItem]:
    """The items that can be predicted, once their image loads are done (each load's image
    attached, or its failure noted on the item)."""
    todo: list[RowItem] = []
    for item in items:
        if item.future is not None:
            image, warning = item.future.result()
            item.future = None
            attach_image(item, image, warning)
        if item.error is None:
            todo.append(item)
    return todo


class OutputRows:
    """Predict a batch of items and build their output rows (one per item, in order).

    Args:
        predictor: Called once per batch: ``predict(products, min_confidence=...)``.
        mapper: Maps each predicted category into other trees.
        names: Mapped taxonomy names that get output columns.
        min_confidence: Passed to the predictor (back off to a surer, coarser category).
        router: Marks each predicted row ``needs_review`` with its ``review_reason``.
    """

    def __init__(
        self,
        predictor: Predictor,
        mapper: CategoryMapper | None = None,
        names: Sequence[str] = (),
        *,
        min_confidence: float | None = None,
        router: Router | None = None,
    ) -> None:
        self.predictor, self.mapper, self.names = predictor, mapper, list(names)
        self.min_confidence, self.router = min_confidence, router

    def __call__(self, items: Sequence[RowItem]) -> list[dict[str, Any]]:
        """The output rows of ``items``; waits for their image loads first.

        Raises:
            RuntimeError: The predictor returned a different number of predictions.
            Exception: Whatever the predictor raises.
        """
        self.predict(ready_items(items))
        return [self.row(item) for item in items]

    def predict(self, todo: Sequence[RowItem]) -> None:
        """Predict and map the items' products in one call; each item gets its prediction."""
        products = [i.product for i in todo]
        predictions = (
            self.predictor.predict(products, min_confidence=self.min_confidence) if todo else []  # type: ignore[arg-type]
        )
        if len(predictions) != len(todo):
            raise RuntimeError(
                f"predictor returned {len(predictions)} predictions for {len(todo)} products"
            )
        if self.mapper is not None:
            self.mapper.apply(predictions)
        for item, prediction in zip(todo, predictions, strict=True):
            item.product.image = None  # type: ignore[union-attr]
            item.warnings += prediction.warnings
            item.prediction = prediction

    def row(self, item: RowItem) -> dict[str, Any]:
        """The output row of one item (see :mod:`.output_row` for the columns)."""
        product = item.product
        row: dict[str, Any] = {
            "row": item.number,
            "id": product.id if product else "",
            "status": "error" if item.error else item.status,
            "warnings": item.warnings,
            "error": item.error,
            **item.keep,
        }
        prediction = item.prediction
        if item.error or prediction is None:
            return row
        if prediction.status == "error":  # the predictor could not use what the row has
            row["status"], row["error"] = "error", prediction.error
            return row
        row.update(prediction_cells(prediction, self.names))
        broken = unusable_confidence(prediction)
        if broken:  # never `ok`: an error row, kept with its cells and routed to review
            row["status"], row["error"] = "error", broken
        if self.router is not None:
            row["needs_review"], row["review_reason"] = self.router(product, prediction)
        return row

"""The :class:`Categorizer`: the one object catalog teams use.

It answers, for each product, a category in the team's tree, tags, a confidence and the
equivalent category in every requested marketplace tree. It is built either from a trained
checkpoint (:meth:`Categorizer.from_pretrained`), zero-shot over any tree
(:meth:`Categorizer.zero_shot`) or by training on labelled products (:meth:`Categorizer.fit`),
and takes titles, records, a pandas DataFrame, a ``datasets.Dataset`` or a feed path through
one input rule (:func:`multimodal_cat.inputs.to_products`). It is a predictor
(:mod:`multimodal_cat.predictors`) plus a mapper
(:class:`~multimodal_cat.mapping.apply.CategoryMapper`).

Example:
    >>> cat = Categorizer.zero_shot("shopify", map_to=["google"])  # doctest: +SKIP
    >>> best = cat.predict("Women's leather ankle boots")[0]  # doctest: +SKIP
    >>> best.category_path, best.mappings["google"].target_ids  # doctest: +SKIP
    ('Apparel & Accessories > Shoes > Boots', ('187',))
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from multimodal_cat.errors import MultimodalCatError
from multimodal_cat.inputs import (
    ColumnsLike,
    InputColumnError,
    column_values,
    input_index,
    to_products,
)
from multimodal_cat.mapping.apply import CategoryMapper
from multimodal_cat.predictions import Prediction
from multimodal_cat.predictors.base import Predictor, reads_images
from multimodal_cat.products import Product
from multimodal_cat.taxonomy import Taxonomy

if TYPE_CHECKING:
    from multimodal_cat.evaluation import EvaluationReport

ProductsLike = Any  # see multimodal_cat.inputs.to_products for every accepted form


class Categorizer:
    """Categorize products into a tree and map them to other marketplaces' trees.

    Args:
        predictor: A trained-model or zero-shot predictor.
        map_to: Target trees (shipped names such as ``google``, files, or loaded trees).

    Example:
        >>> cat = Categorizer.from_pretrained("path/to/checkpoint", map_to=["google"])  # doctest: +SKIP
        >>> cat.predict({"title": "Nike Men Red Running Shoes", "image": "shoe.jpg"})[0].category_path  # doctest: +SKIP
        'Footwear > Shoes > Sports Shoes'
    """

    def __init__(self, predictor: Predictor, *, map_to: Iterable[Any] = ()) -> None:
        self.predictor = predictor
        self.mapper = CategoryMapper.to_targets(predictor.taxonomy, map_to)

    @property
    def taxonomy(self) -> Taxonomy:
        """The tree this categorizer predicts in."""
        return self.predictor.taxonomy

    @property
    def classes_(self) -> list[str]:
        """Category ids, in the column order of :meth:`predict_proba`."""
        return list(getattr(self.predictor, "classes_", [c.id for c in self.taxonomy.leaves()]))

    @classmethod
    def from_pretrained(
        cls, name_or_path: str, *, map_to: Iterable[Any] = (), bf16: bool = False, **kwargs: Any
    ) -> Categorizer:
        """Load a trained checkpoint (a folder or a hub id) saved by ``save_pretrained``.

        Raises:
            FileNotFoundError: The checkpoint cannot be found (a missing folder, or a hub id
                that is not cached while the hub is offline).
        """
        from multimodal_cat.predictors.checkpoint import ModelPredictor

        return cls(ModelPredictor.from_pretrained(name_or_path, bf16=bf16, **kwargs), map_to=map_to)

    @classmethod
    def zero_shot(
        cls,
        taxonomy: str | Taxonomy = "shopify",
        *,
        text_encoder: str = "minilm",
        image_encoder: Any = None,
        map_to: Iterable[Any] = (),
    ) -> Categorizer:
        """Categorize with no training: a hierarchical search over category-path embeddings.

        ``image_encoder`` (an aligned image-text model such as a CLIP hub id) adds the
        products' images to the evidence; see
        :class:`~multimodal_cat.predictors.zero_shot.ZeroShotCategorizer`.
        """
        from multimodal_cat.predictors.build import build_predictor

        predictor = build_predictor(
            taxonomy=taxonomy, text_encoder=text_encoder, image_encoder=image_encoder
        )
        return cls(predictor, map_to=map_to)

    def predict(
        self,
        products: ProductsLike,
        *,
        columns: ColumnsLike = None,
        image_root: str | Path | None = None,
        top_k: int = 5,
        min_confidence: float | None = None,
        review_below: float | None = None,
        target_precision: float | None = None,
        as_frame: bool = False,
    ) -> Any:
        """Categorize products: one :class:`Prediction` per product, in input order, mapped.

        Args:
            products: A title, a list / Series / array of titles, a dict, records, a pandas
                DataFrame, a ``datasets.Dataset`` or a ``pathlib.Path`` to a feed file
                (:func:`multimodal_cat.inputs.to_products`). Columns are found as the command
                line finds them (``productDisplayName`` is a title...).
            columns: Input column per product field, e.g. ``{"title": "Name"}``.
            image_root: Folder that relative image paths start from.
            top_k: Alternatives kept per product.
            min_confidence: Back off from the best leaf to the deepest category on its path
                whose probability reaches it (a surer, coarser answer); ``None`` keeps the leaf.
            review_below: Mark products under this confidence ``needs_review``.
            target_precision: Mark ``needs_review`` the products under the threshold a
                calibrated checkpoint stores for this precision (0.95, 0.98 or 0.99); a
                calibrated checkpoint routes at 0.98 when neither option is given.
            as_frame: Return a pandas DataFrame (one row per input, with the input's index and
                the command line's output columns, plus one column per tree level and per tag
                attribute) instead of a list.

        Returns:
            ``list[Prediction]``, or a DataFrame with ``as_frame=True``. A product with neither
            usable text nor a usable image gets ``status="error"`` and no category.

        Example:
            >>> cat = Categorizer.zero_shot("shopify", map_to=["google"])  # doctest: +SKIP
            >>> cat.predict("Men's running shoes")[0].mappings["google"].target_ids  # doctest: +SKIP
            ('187',)
            >>> cat.predict(df, image_root="photos", as_frame=True)[["category_path", "confidence"]]  # doctest: +SKIP
        """
        items = to_products(products, columns=columns, image_root=image_root, load_images=self.reads_images)
        predictions = self._predict_products(items, top_k=top_k, min_confidence=min_confidence)
        router = self.router(review_below=review_below, target_precision=target_precision)
        if router is not None:
            for product, prediction in zip(items, predictions, strict=True):
                if prediction.status != "error":
                    prediction.needs_review, prediction.review_reason = router(product, prediction)
        if not as_frame:
            return predictions
        from multimodal_cat.frames import predictions_frame

        return predictions_frame(
            predictions, items, index=input_index(products, len(items)), taxonomy=self.taxonomy,
            trees=[name.split("/")[0] for name in self.mapper.target_names],
            routed=router is not None,
        )

    def predict_feed(self, path: str | Path, **kwargs: Any) -> Any:
        """:meth:`predict` on a feed file (CSV, TSV, JSON lines, Parquet, Excel); same keyword
        arguments. Relative image paths start from the feed's folder unless ``image_root`` says.

        Example:
            >>> cat.predict_feed("feed.csv", as_frame=True).to_parquet("out.parquet")  # doctest: +SKIP
        """
        return self.predict(Path(path), **kwargs)

    @property
    def reads_images(self) -> bool:
        """Whether the predictor reads photos; photos are loaded only for one that does."""
        return reads_images(self.predictor)

    def _readable(self, product: Product) -> bool:
        """Whether the predictor can read something of ``product`` (its text, or a photo when
        it reads photos); an unreadable one gets a NaN row of probabilities."""
        return product.has_text or (self.reads_images and product.has_image)

    def _predict_products(
        self, items: list[Product], *, top_k: int = 5, min_confidence: float | None = None
    ) -> list[Prediction]:
        """Predictions for products already read: error products get ``Prediction.failed``."""
        usable = [p for p in items if "error" not in p.extra]
        answered = (
            self.predictor.predict(usable, top_k=top_k, min_confidence=min_confidence)
            if usable
            else []
        )
        self.mapper.apply(answered)
        answers = iter(answered)
        predictions = []
        for product in items:
            notes = product.extra.get("warnings", [])
            if "error" in product.extra:
                predictions.append(Prediction.failed(product.extra["error"], notes))
                continue
            prediction = next(answers)
            prediction.warnings[:0] = notes
            if prediction.status != "error":  # the predictor's own failure stands
                prediction.status = product.extra.get("status", prediction.status)
            predictions.append(prediction)
        return predictions

    def router(
        self, *, review_below: float | None = None, target_precision: float | None = None
    ) -> Any:
        """The :class:`~multimodal_cat.review.routing.ReviewRouter` these options ask for:
        ``review_below``, else the stored threshold for ``target_precision``, else the stored
        98% one of a calibrated checkpoint; ``None`` when there is nothing to route by.

        Raises:
            CategorizerError: ``target_precision`` has no stored threshold.
        """
        from multimodal_cat.review.routing import (
            ReviewRouter,
            StoredThresholdError,
            stored_router,
            stored_thresholds,
        )

        if review_below is not None:
            return ReviewRouter(self.taxonomy, float(review_below), "review_below")
        if target_precision is None:  # a calibrated checkpoint routes at its 98% threshold
            if "0.98" not in stored_thresholds(self.predictor):
                return None
            target_precision = 0.98
        try:
            return stored_router(self.predictor, target_precision)
        except StoredThresholdError as error:
            raise CategorizerError(
                f"{error}: give review_below=P, or train with an evaluation set"
            ) from None

    def predict_proba(
        self,
        products: ProductsLike,
        *,
        columns: ColumnsLike = None,
        image_root: str | Path | None = None,
        as_frame: bool = False,
    ) -> Any:
        """Probabilities (n_products, len(classes_)) over the leaf categories; a product that
        cannot be categorized (no text, no image) gets a row of NaN.

        With ``as_frame=True``: a DataFrame with the input's index and the categories' full
        paths as columns.

        Example:
            >>> cat.predict_proba(["red shirt"], as_frame=True).idxmax(axis=1)  # doctest: +SKIP
        """
        items = to_products(products, columns=columns, image_root=image_root, load_images=self.reads_images)
        usable = [i for i, p in enumerate(items) if "error" not in p.extra and self._readable(p)]
        proba = np.full((len(items), len(self.classes_)), np.nan)
        if usable:
            proba[usable] = self.predictor.predict_proba([items[i] for i in usable])
        if not as_frame:
            return proba
        from multimodal_cat.frames import proba_frame

        return proba_frame(proba, self.classes_, self.taxonomy, input_index(products, len(items)))

    def evaluate(
        self,
        products: ProductsLike,
        labels: Sequence[str] | str,
        *,
        columns: ColumnsLike = None,
        image_root: str | Path | None = None,
        plots_dir: str | Path | None = None,
        min_confidence: float | None = None,
    ) -> EvaluationReport:
        """Predict ``products`` and score them against ``labels``.

        ``labels`` are category ids or full paths, one per product, or the name of the input
        column that holds them (comma-separated names are joined as a path, as
        ``train --category-column`` does). Labels that are not categories of the tree are left
        out of every figure, with a warning that counts them. Reports per-level accuracy,
        macro-F1, hierarchical F1, expected calibration error and the share auto-accepted at
        95/98/99% precision; with ``plots_dir`` it also writes ``reliability.png`` and
        ``most_confused.png`` there (the ``plots`` extra).

        Example:
            >>> report = cat.evaluate(test_df, "articleType", image_root="fashion")  # doctest: +SKIP
            >>> report.metrics["leaf_accuracy"], report.auto_accept[0.98]["share"]  # doctest: +SKIP
            (0.94, 0.71)
        """
        from multimodal_cat.evaluation import evaluate_predictions

        items = to_products(products, columns=columns, image_root=image_root,
                            load_images=self.reads_images, answers=labels if isinstance(labels, str) else None)
        truth = label_values(items, labels)
        predictions = self._predict_products(items, min_confidence=min_confidence)
        report = evaluate_predictions(predictions, truth, self.taxonomy, plots_dir=plots_dir)
        if report.unknown_labels:
            left_out = sum(label in set(report.unknown_labels) for label in truth)
            warnings.warn(
                f"{left_out:,} of {len(truth):,} labels are not categories of "
                f"{self.taxonomy.name!r} and were left out of every figure (e.g. "
                f"{', '.join(map(repr, report.unknown_labels[:3]))})",
                UnknownLabelWarning,
                stacklevel=2,
            )
        return report

    def score(
        self,
        products: ProductsLike,
        labels: Sequence[str] | str,
        *,
        columns: ColumnsLike = None,
        image_root: str | Path | None = None,
    ) -> float:
        """Leaf accuracy on labelled products (scikit-learn's ``score``); see :meth:`evaluate`.

        Example:
            >>> Categorizer.fit(train_df, label="articleType").score(test_df, "articleType")  # doctest: +SKIP
            0.95
        """
        report = self.evaluate(products, labels, columns=columns, image_root=image_root)
        return float(report.metrics["leaf_accuracy"])

    def similar(self, index: Any, **query: Any) -> Any:
        """Products of a catalog index like a photo, a title or an id (a DataFrame, best first):
        :func:`multimodal_cat.catalog.similar` (the ``catalog`` extra).

        Example:
            >>> cat.similar("catalog.idx", image="photo.jpg", k=10)  # doctest: +SKIP
        """
        from multimodal_cat.catalog.similar import similar

        return similar(index, **query)

    @classmethod
    def fit(
        cls,
        data: ProductsLike,
        *,
        label: str | Sequence[str],
        output_dir: str | Path,
        tags: Sequence[str] = (),
        columns: ColumnsLike = None,
        image_root: str | Path | None = None,
        map_to: Iterable[Any] = (),
        **options: Any,
    ) -> Categorizer:
        """Train the frozen-head recipe on labelled products and load the result.

        The same run as ``multimodal-cat train --freeze-encoders`` (the code is shared): the
        towers run once over the products (cached), a head trains on their outputs, and the
        checkpoint is saved to ``output_dir``.

        Args:
            data: A DataFrame, records, a ``datasets.Dataset`` or a ``pathlib.Path`` to a feed.
            label: The column with the category (ids or full paths), or several columns whose
                values are joined as a path (e.g. ``["masterCategory", "articleType"]``).
            output_dir: Where the checkpoint is saved.
            tags: Columns to learn as attribute tags (e.g. ``["gender", "baseColour"]``).
            columns: Input column per product field, as in :meth:`predict`.
            image_root: Folder that relative image paths start from.
            map_to: Target trees of the returned categorizer.
            **options: Any ``train`` option by its Python name: ``eval_split=0.1``,
                ``vision_encoder="dinov2-small"`` (default: when the data has an image column),
                ``text_encoder``, ``taxonomy``, ``num_train_epochs``, ``seed``...

        Example:
            >>> cat = Categorizer.fit(train_df, label=["masterCategory", "articleType"],  # doctest: +SKIP
            ...                       output_dir="ckpt", image_root="fashion", eval_split=0.1)
        """
        from multimodal_cat.training.fit import fit_checkpoint

        folder = fit_checkpoint(
            data, label=label, output_dir=output_dir, tags=tags, columns=columns,
            image_root=image_root, options=options,
        )
        return cls.from_pretrained(str(folder), map_to=map_to)


class UnknownLabelWarning(UserWarning):
    """Some labels given to :meth:`Categorizer.evaluate` are not categories of the tree."""


class CategorizerError(MultimodalCatError, ValueError):
    """An option of the Categorizer that cannot be honoured (e.g. no stored threshold)."""


def label_values(products: Sequence[Product], labels: Sequence[str] | str) -> list[str]:
    """One label per product: ``labels`` itself, or the values of the column(s) it names.

    Raises:
        CategorizerError: The named column is missing, or the counts differ.

    Example:
        >>> label_values([Product(extra={"kind": "Toys", "leaf": "Dolls"})], "kind,leaf")
        ['Toys > Dolls']
    """
    if not isinstance(labels, str):
        values = [str(v) for v in labels]
        if len(values) != len(products):
            raise CategorizerError(
                f"expected one label per product; found {len(values)} labels for "
                f"{len(products)} products"
            )
        return values
    try:
        return [value or "" for value in column_values(products, labels, what="label")]
    except InputColumnError as error:
        raise CategorizerError(str(error)) from None

"""The :class:`Categorizer`: the one object catalog teams use.

It answers, for each product, a category in the team's tree, tags, a confidence and the
equivalent category in every requested marketplace tree. It is built either from a trained
checkpoint (:meth:`Categorizer.from_pretrained`) or zero-shot over any tree
(:meth:`Categorizer.zero_shot`), and takes products as records, dicts, a pandas DataFrame or a
feed file. It is a predictor (:mod:`multimodal_cat.predictors`) plus a mapper
(:class:`~multimodal_cat.mapping.apply.CategoryMapper`), with the input handling of the Python
API on top: :func:`to_products` loads the images that records name, once.

Example:
    >>> cat = Categorizer.zero_shot("shopify", map_to=["google"])  # doctest: +SKIP
    >>> best = cat.predict([{"title": "Women's leather ankle boots"}])[0]  # doctest: +SKIP
    >>> best.category_path, best.mappings["google/2021-09-21"].target_ids  # doctest: +SKIP
    ('Apparel & Accessories > Shoes > Boots', ('187',))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from multimodal_cat.mapping.apply import CategoryMapper
from multimodal_cat.predictions import Prediction
from multimodal_cat.predictors.base import Predictor
from multimodal_cat.products import Product
from multimodal_cat.taxonomy import Taxonomy

if TYPE_CHECKING:
    from multimodal_cat.evaluation import EvaluationReport

ProductsLike = Product | Mapping[str, Any] | Sequence[Product | Mapping[str, Any]] | Any


_PRODUCT_FIELDS = ("id", "title", "description", "brand", "seller_category", "image_ref")


def to_product(record: Product | Mapping[str, Any]) -> Product:
    """Turn a dict (keys as :class:`Product` fields; ``image`` may be a path, URL or PIL image)
    into a :class:`Product`.

    Raises:
        TypeError: ``record`` is neither a Product nor a mapping.
    """
    if isinstance(record, Product):
        return record
    if not isinstance(record, Mapping):
        raise TypeError(f"Expected a Product or a dict per product; got {type(record).__name__}.")
    fields = {k: _text(record.get(k)) for k in _PRODUCT_FIELDS if record.get(k) is not None}
    image = record.get("image")
    if isinstance(image, str):
        fields["image_ref"] = image
        image = None
    extra = {k: v for k, v in record.items() if k not in (*_PRODUCT_FIELDS, "image")}
    return Product(**fields, image=image, extra=extra)


def _text(value: Any) -> str:
    if isinstance(value, float) and value != value:  # NaN from pandas
        return ""
    return str(value)


def to_products(data: ProductsLike) -> list[Product]:
    """Normalise products given as one record, a list, a pandas DataFrame or a feed path.

    Images named by path or URL are loaded (safely: size and pixel caps, timeouts); an image
    that cannot be read is left out and the product is scored on its text.
    """
    if isinstance(data, (str, Path)):
        return _feed_products(data)
    if isinstance(data, (Product, Mapping)):
        data = [data]
    elif hasattr(data, "to_dict") and hasattr(data, "columns"):  # a pandas DataFrame
        data = data.to_dict(orient="records")
    products = [to_product(record) for record in data]
    _load_images([p for p in products if p.image is None and p.image_ref])
    return products


def _feed_products(path: str | Path) -> list[Product]:
    from multimodal_cat.feeds.columns import read_products

    products = []
    for number, product, error in read_products(path):
        if product is None:
            raise ValueError(f"{path}: row {number}: {error}")
        products.append(product)
    _load_images([p for p in products if p.image_ref], root=Path(path).parent)
    return products


def _load_images(products: list[Product], root: str | Path = ".") -> None:
    if not products:
        return
    from multimodal_cat.feeds.images import ImageLoader

    loader = ImageLoader(root)
    try:
        futures = [loader.submit(p.image_ref) for p in products]
        for product, future in zip(products, futures, strict=True):
            product.image, problem = future.result()
            if problem:
                product.extra.setdefault("warnings", []).append(problem)
    finally:
        loader.close()


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
        self, products: ProductsLike, *, top_k: int = 5, min_confidence: float | None = None
    ) -> list[Prediction]:
        """One :class:`Prediction` per product, in input order, with mapped categories.

        ``min_confidence`` backs off from the best leaf to the deepest category on its path
        whose probability reaches it (a surer, coarser answer); ``None`` keeps the leaf.

        Example:
            >>> cat = Categorizer.zero_shot("shopify")  # doctest: +SKIP
            >>> leaf = cat.predict({"title": "Leather boots"})[0]  # doctest: +SKIP
            >>> sure = cat.predict({"title": "Leather boots"}, min_confidence=0.9)[0]  # doctest: +SKIP
            >>> leaf.category_path.startswith(sure.category_path)  # doctest: +SKIP
            True
        """
        items = to_products(products)
        predictions = (
            self.predictor.predict(items, top_k=top_k, min_confidence=min_confidence)
            if items
            else []
        )
        self.mapper.apply(predictions)
        for product, prediction in zip(items, predictions, strict=True):
            prediction.warnings[:0] = product.extra.get("warnings", [])
        return predictions

    def predict_proba(self, products: ProductsLike) -> np.ndarray:
        """Probabilities (n_products, len(classes_)) over the leaf categories."""
        return self.predictor.predict_proba(to_products(products))

    def evaluate(
        self,
        products: ProductsLike,
        labels: Sequence[str],
        *,
        plots_dir: str | Path | None = None,
        min_confidence: float | None = None,
    ) -> EvaluationReport:
        """Predict ``products`` and score them against ``labels`` (ids or full paths).

        Reports per-level accuracy, leaf macro-F1, hierarchical F1, expected calibration error
        and the share auto-accepted at 95/98/99% precision; with ``plots_dir`` it also writes
        ``reliability.png`` and ``most_confused.png`` there (the ``plots`` extra).

        Example:
            >>> report = cat.evaluate("labelled.csv", labels, plots_dir="eval")  # doctest: +SKIP
            >>> report.metrics["hierarchical_f1"], report.auto_accept[0.98]["share"]  # doctest: +SKIP
            (0.93, 0.71)
        """
        from multimodal_cat.evaluation import evaluate_predictions

        items = to_products(products)  # no mapping: the scores read only the categories
        predictions = self.predictor.predict(items, min_confidence=min_confidence) if items else []
        return evaluate_predictions(predictions, labels, self.taxonomy, plots_dir=plots_dir)

"""Zero-shot categorization: place a product in any tree, with no training.

A thin predictor over the engine in :mod:`multimodal_cat.zero_shot`: the product's texts
(title, head phrase and noun, description, seller category; :mod:`~multimodal_cat.zero_shot.product_text`)
are scored against every candidate category using its whole path, its ancestors and lexical
evidence (:mod:`~multimodal_cat.zero_shot.search`); a softmax at a temperature fitted on
held-out rows turns scores into probabilities (:mod:`~multimodal_cat.zero_shot.calibration`);
an unsure leaf backs off to its branch when the branch is sure
(:mod:`~multimodal_cat.zero_shot.backoff`); attribute tags come from Shopify's vocabularies
(:mod:`~multimodal_cat.zero_shot.tags`); ``adapt=True`` smooths predictions over the batch's
own nearest neighbours (:mod:`~multimodal_cat.zero_shot.adapt`). The shipped trees' category
matrices ship inside the package for the default encoder
(:mod:`~multimodal_cat.zero_shot.store`), so the first run starts at once.

With an aligned image-text pair (``image_encoder``: CLIP, SigLIP, ALIGN... by hub id or
folder), a product's image adds ``image_weight cos(image, prompt(c))``, the prompt naming the
category and its parent (``"a photo of Sneakers, a type of Shoes"``); products without an
image score on text alone.

Example:
    >>> from multimodal_cat.taxonomy import Taxonomy
    >>> tree = Taxonomy.from_paths(["Apparel > Topwear > Tshirts", "Footwear > Shoes > Sandals"])
    >>> zs = ZeroShotCategorizer(tree, text_encoder=None)
    >>> zs.predict(["Nike Men White T-Shirt"])[0].category_path
    'Apparel > Topwear > Tshirts'
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from multimodal_cat.align.embeddings import TreeView, resolve_text_encoder
from multimodal_cat.align.mode import MIN_TEXTS, LanguageWarning, products_advice
from multimodal_cat.calibration import recalibrate
from multimodal_cat.encoders._arrays import l2_normalize
from multimodal_cat.errors import InvalidArgumentError
from multimodal_cat.predictions import CategoryScore, Prediction, failed_if_unread, inputs_used
from multimodal_cat.predictors.backoff import coarse_predictions
from multimodal_cat.predictors.image_text import PROMPT, PROMPT_ROOT, resolve_image_text_encoder
from multimodal_cat.products import Product
from multimodal_cat.taxonomy import Taxonomy
from multimodal_cat.zero_shot.adapt import smooth_over_neighbours
from multimodal_cat.zero_shot.backoff import (
    DEFAULT_BRANCH_MIN,
    DEFAULT_LEAF_MIN,
    Choice,
    back_off,
    back_off_warning,
)
from multimodal_cat.zero_shot.calibration import DEFAULT_TEMPERATURE, softmax
from multimodal_cat.zero_shot.confidence import (
    DEFAULT_CONFIDENCE,
    FeedShift,
    confidence_features,
    root_columns,
    shifted,
)
from multimodal_cat.zero_shot.kind import kind_warning, load_kind_head, overrule, root_groups
from multimodal_cat.zero_shot.product_text import ProductText, product_texts
from multimodal_cat.zero_shot.reviewed import load_calibration
from multimodal_cat.zero_shot.scale import cosine_scale
from multimodal_cat.zero_shot.search import (
    DEFAULT_WEIGHTS,
    CategoryIndex,
    ScoreWeights,
    text_vectors,
)
from multimodal_cat.zero_shot.store import tree_matrix
from multimodal_cat.zero_shot.tags import ZeroShotTagger

__all__ = ["DEFAULT_WEIGHTS", "ZeroShotCategorizer"]

# Why a product without text gets no zero-shot answer (its photo is not read without an aligned
# image-text model).
NO_TEXT = (
    "no usable text (title, description, brand and seller category are empty): zero-shot reads "
    "text, and photos only with an aligned image-text model (image_encoder=, --image-encoder) or "
    "a trained checkpoint (--model)"
)


@dataclass
class _Scored:
    """One batch's raw scores, their lexical part, probabilities and the texts read."""

    scores: np.ndarray
    lexical: np.ndarray
    probs: np.ndarray
    texts: list[ProductText]
    vectors: np.ndarray | None = None


def _prompt(view: TreeView, i: int) -> str:
    """The category's image prompt: its name, and its parent's when it has one."""
    parent = view.parents[i]
    if parent < 0:
        return PROMPT_ROOT.format(name=view.names[i])
    return PROMPT.format(name=view.names[i], parent=view.names[parent])


def _shopify_vocabularies(taxonomy: Taxonomy) -> dict[str, list[str]]:
    """The tree's own attribute values, else the shipped Shopify tree's."""
    if taxonomy.attribute_values:
        return taxonomy.attribute_values
    return Taxonomy.load("shopify").attribute_values


class ZeroShotCategorizer:
    """Categorize products into ``taxonomy`` without training.

    Args:
        taxonomy: the tree to place products in.
        text_encoder: ``"minilm"`` (offline default), a hub id or folder, an encoder object
            (``encode``, ``key``, ``dim``), or ``None`` for lexical matching only.
        candidates: ``"leaves"`` (default) or ``"all"`` categories.
        weights: overrides of :data:`DEFAULT_WEIGHTS` (see
            :class:`~multimodal_cat.zero_shot.search.ScoreWeights`).
        temperature: softmax temperature turning scores into probabilities (default fitted
            on held-out rows; see ``benchmarks/zero_shot_general.py``).
        top_k: alternatives returned per prediction.
        cache: an EmbeddingCache for the category and product-text embeddings (default:
            the user cache), or ``False`` to keep nothing on disk.
        bf16: run the text encoder under bf16 autocast (product texts; cached separately).
        title_weight: for a Product with a description, the title's share against title +
            description; lexical matches read the title's head phrase only, so "dishwasher
            safe" in a mug's description does not vote for Dishwashers.
        image_encoder: an aligned image-text model (hub id, folder or
            :class:`~multimodal_cat.predictors.image_text.ImageTextEncoder`) to score products'
            images against category prompts; ``None`` (default) uses text only.
        image_weight: weight of the image term. Not tuned here (no aligned pair is reachable
            offline); at the default temperature, 5.0 would reproduce CLIP's own logit scale.
        leaf_min: below this probability the best leaf backs off to a sure branch
            (``0`` never backs off).
        branch_min: the summed probability a branch needs to be answered instead.
        tags: fill ``Prediction.tags`` from Shopify's attribute vocabularies.
        adapt: smooth each batch's probabilities over its products' nearest neighbours
            (no labels; helps on large batches).
        reviewed: read the tree's calibration from reviewed answers when one is stored
            (:mod:`~multimodal_cat.zero_shot.reviewed`, written by ``multimodal-cat calibrate``):
            its temperature refines the confidences and its thresholds route reviews.
        feed_calibration: without a reviewed calibration, calibrate the confidences on the
            score distribution of the products, with no label
            (:mod:`~multimodal_cat.zero_shot.confidence`), leaning on a cautious prior while
            they are few (a lone product gets the prior's shift): those of ``feed_shift`` when
            it is set, else each call's own (never earlier calls', so a call answers the same
            whatever came before it); ``False``: every product gets the prior's shift.
        feed_shift: one :class:`~multimodal_cat.zero_shot.confidence.FeedShift` for every call
            (set by :meth:`fit_feed_shift`; the feed job fits one per feed); ``None``: per call.
        product_kind: on a tree with Shopify's top levels, let the shipped product-kind head
            overrule a best leaf in a branch the product is surely not of
            (:mod:`~multimodal_cat.zero_shot.kind`); the prediction then carries a warning.
            Off by default: the shipped head is trained on Flipkart and fashion titles only
            (MWPD may not be redistributed), which hold 2 food, 12 media and 12 pet titles,
            so it does not know those kinds (measured: ``benchmarks/results/zero_shot_kind.json``).

    Example:
        >>> zs = ZeroShotCategorizer(Taxonomy.load("google"), "minilm")  # doctest: +SKIP
        >>> zs.predict(["Women's leather ankle boots"])[0].category_path  # doctest: +SKIP
        'Apparel & Accessories > Shoes'
    """

    def __init__(
        self,
        taxonomy: Taxonomy,
        text_encoder: Any = "minilm",
        *,
        candidates: str = "leaves",
        weights: dict[str, float] | None = None,
        temperature: float = DEFAULT_TEMPERATURE,
        top_k: int = 5,
        cache: Any = None,
        bf16: bool = False,
        title_weight: float = 0.5,
        image_encoder: Any = None,
        image_weight: float = 1.0,
        leaf_min: float = DEFAULT_LEAF_MIN,
        branch_min: float = DEFAULT_BRANCH_MIN,
        tags: bool = True,
        adapt: bool = False,
        reviewed: bool = True,
        feed_calibration: bool = True,
        product_kind: bool = False,
        feed_shift: FeedShift | None = None,
    ) -> None:
        if candidates not in ("leaves", "all"):
            raise InvalidArgumentError(f"expected candidates='leaves' or 'all'; got {candidates!r}")
        if temperature <= 0:
            raise InvalidArgumentError(f"expected a positive temperature; got {temperature}")
        if not 0.0 <= title_weight <= 1.0:
            raise InvalidArgumentError(f"expected title_weight in [0, 1]; got {title_weight}")
        if image_weight < 0:
            raise InvalidArgumentError(f"expected a non-negative image_weight; got {image_weight}")
        self.taxonomy = taxonomy
        self.text_encoder = text_encoder
        self.candidates = candidates
        self.weights = ScoreWeights.from_dict(weights)
        self.temperature = temperature
        self.top_k = top_k
        self.cache = cache
        self.bf16 = bf16
        self.title_weight = title_weight
        self.image_encoder = image_encoder
        self.image_weight = image_weight
        self.leaf_min = leaf_min
        self.branch_min = branch_min
        self.tags = tags
        self.adapt = adapt
        self.reviewed = reviewed
        self.feed_calibration = feed_calibration
        self.product_kind = product_kind
        self.feed_shift = feed_shift
        self.language_warning_ = ""  # said once: the products' language and the encoder disagree
        self._language_checked = False
        self.last_shift_ = 0.0  # the shift the last call used
        self.default_cache_: Any = None  # opened on first use when ``cache`` is None
        self._ready = False

    @property
    def reads_images(self) -> bool:
        """Whether products' photos are scored (an image-text model with a positive weight)."""
        return self.image_encoder is not None and bool(self.image_weight)

    def _prepare(self) -> None:
        if self._ready:
            return
        if len(self.taxonomy) == 0:
            raise InvalidArgumentError(
                f"expected a taxonomy with categories; {self.taxonomy.name!r} is empty"
            )
        self.encoder_ = resolve_text_encoder(self.text_encoder)
        view, matrix = tree_matrix(
            self.taxonomy, self.encoder_, self.weights, self._cache(), bf16=self.bf16
        )
        self.index_ = CategoryIndex(view, self.candidates, matrix)
        self.index_.cosine_scale = cosine_scale(self.encoder_, self._embed)
        self.roots_ = root_columns(self.index_)
        self.kind_head_ = load_kind_head(self.encoder_) if self.product_kind else None
        self.kind_groups_ = root_groups(self.index_, self.kind_head_) if self.kind_head_ else None
        key = "none" if self.encoder_ is None else str(self.encoder_.key)
        self.calibration_ = load_calibration(self.taxonomy, key) if self.reviewed else None
        self.classes_ = self.index_.ids
        self.paths_ = self.index_.paths
        self.image_pair_ = resolve_image_text_encoder(self.image_encoder)
        if self.image_pair_ is not None:
            prompts = [_prompt(view, i) for i in self.index_.positions]
            self.image_matrix_ = self.image_pair_.encode_texts(prompts)
        self.tagger_ = ZeroShotTagger(_shopify_vocabularies(self.taxonomy)) if self.tags else None
        self._ready = True

    def _embed(self, texts: list[str]) -> np.ndarray:
        """Text embeddings, read from / written to the embedding cache unless ``cache=False``."""
        if not texts:
            return np.zeros((0, int(self.encoder_.dim)), dtype=np.float32)
        if self.cache is False:
            if self.bf16:
                return self.encoder_.encode(texts, bf16=True)
            return self.encoder_.encode(texts)
        from multimodal_cat.encoders import encode_cached

        return encode_cached(self.encoder_, texts, cache=self._cache(), batch_size=64, bf16=self.bf16)

    def _cache(self) -> Any:
        """The ``cache`` given, or the default one, opened once for the tree and every call
        (it was opened again on every call); ``False`` stays ``False``."""
        if self.cache is not None:
            return self.cache
        if self.default_cache_ is None:
            from multimodal_cat.encoders import EmbeddingCache

            self.default_cache_ = EmbeddingCache()
        return self.default_cache_

    def text_vectors(self, items: Sequence[str | Product]) -> np.ndarray:
        """Unit product vectors (n, dim) from the text encoder (title, head, description...)."""
        self._prepare()
        texts = product_texts(items)
        return text_vectors(texts, self._embed, self.weights, self.title_weight)

    def lexical_matches(self, items: Sequence[str | Product]) -> np.ndarray:
        """Name-match indicators (n, len(classes_)) on the titles' head phrases, unweighted."""
        self._prepare()
        return self.index_.phrases.matches([t.lexical for t in product_texts(items)])

    def scores(
        self, items: Sequence[str | Product], *, embeddings: np.ndarray | None = None
    ) -> np.ndarray:
        """Raw scores (n, len(classes_)); columns follow :attr:`classes_`.

        ``embeddings`` may hold the products' unit vectors (see :meth:`text_vectors`), to
        skip encoding them again.
        """
        self._prepare()
        texts = product_texts(items)
        return self._scores(items, texts, self._vectors(texts, embeddings))

    def _scores(
        self, items: Sequence[str | Product], texts: list[ProductText], vectors: np.ndarray | None
    ) -> np.ndarray:
        """The text score of every category, plus the image term when there is an image model."""
        out = self.index_.scores(texts, vectors, self.weights)
        if self.image_pair_ is not None and self.image_weight:
            out += self.image_weight * self.image_scores(items)
        return out

    def _vectors(
        self, texts: list[ProductText], embeddings: np.ndarray | None
    ) -> np.ndarray | None:
        if self.encoder_ is None or not texts:
            return None
        if embeddings is None:
            return text_vectors(texts, self._embed, self.weights, self.title_weight)
        emb = np.asarray(embeddings, dtype=np.float32)
        dim = self.index_.matrix.shape[1]
        if emb.shape != (len(texts), dim):
            raise InvalidArgumentError(f"expected embeddings of shape {(len(texts), dim)}; got {emb.shape}")
        return l2_normalize(emb)

    def image_scores(self, items: Sequence[str | Product]) -> np.ndarray:
        """Cosines (n, len(classes_)) between products' images and the category prompts;
        zero rows for items without an image (or without an ``image_encoder``)."""
        self._prepare()
        out = np.zeros((len(items), len(self.classes_)), dtype=np.float32)
        rows = [i for i, p in enumerate(items) if isinstance(p, Product) and p.image is not None]
        if self.image_pair_ is not None and rows:
            images = self.image_pair_.encode_images([items[i].image for i in rows])  # type: ignore[union-attr]
            out[rows] = images @ self.image_matrix_.T
        return out

    def predict_proba(self, items: Sequence[str | Product]) -> np.ndarray:
        """Probabilities (n, len(classes_)), rows sum to 1; columns follow :attr:`classes_`."""
        return self._probabilities(items).probs

    def _probabilities(self, items: Sequence[str | Product]) -> _Scored:
        """:meth:`predict_proba`'s answer, the scores behind it and the product texts read."""
        self._prepare()
        texts = product_texts(items)
        self._check_language(texts)
        vectors = self._vectors(texts, None)
        lexical = self.index_.lexical(texts, self.weights)
        scores = self._scores(items, texts, vectors)
        probs = softmax(scores, self.temperature)
        if self.adapt and vectors is not None:
            probs = smooth_over_neighbours(probs, vectors)
        return _Scored(scores, lexical, probs, texts, vectors)

    def _check_language(self, texts: list[ProductText]) -> None:
        """Warn once (:class:`~multimodal_cat.align.mode.LanguageWarning`, kept in
        ``language_warning_``) when the first call with enough products finds their text in a
        language the English-only text encoder cannot read."""
        if self._language_checked or len(texts) < MIN_TEXTS:
            return
        self._language_checked = True
        self.language_warning_ = products_advice(self.text_encoder, [t.full for t in texts])
        if self.language_warning_:
            warnings.warn(self.language_warning_, LanguageWarning, stacklevel=4)

    def confidences(self, scored: _Scored, answer_probability: np.ndarray) -> np.ndarray:
        """The chance that each answer is right (:mod:`~multimodal_cat.zero_shot.confidence`),
        refined by the tree's reviewed calibration when one is stored."""
        confidence = self._model_confidence(scored, answer_probability)
        if self.calibration_ is not None:
            c = self.calibration_
            return recalibrate(shifted(confidence, DEFAULT_CONFIDENCE.prior_shift), c.temperature, c.bias)
        if not self.feed_calibration:
            self.last_shift_ = DEFAULT_CONFIDENCE.prior_shift
        elif self.feed_shift is not None:
            self.last_shift_ = self.feed_shift.shift
        else:  # read from this call's products only: it answers the same, whatever came before
            self.last_shift_ = DEFAULT_CONFIDENCE.shift_for(confidence)
        return shifted(confidence, self.last_shift_)

    def _model_confidence(self, scored: _Scored, answer_probability: np.ndarray) -> np.ndarray:
        """The confidence model's reading of each answer, before any shift."""
        embedding_best = (scored.scores - scored.lexical).argmax(axis=1)
        features = confidence_features(
            scored.scores, scored.probs, answer_probability, self.roots_, embedding_best
        )
        return DEFAULT_CONFIDENCE(features)

    def fit_feed_shift(
        self, items: Sequence[str | Product], *, min_confidence: float | None = None
    ) -> ZeroShotCategorizer:
        """Fix one confidence shift for every later call, read from ``items`` (a sample of the
        feed about to be categorized), with no label.

        Without it, each call is calibrated on its own products, and a call of a few dozen
        leans mostly on the cautious prior; the feed job fits the shift once on up to
        :data:`~multimodal_cat.feeds.shift.SHIFT_SAMPLE_ROWS` products spread over the feed, so
        that its batches all share the feed's shift. With a reviewed calibration, or
        ``feed_calibration=False``, no shift is read from products: ``feed_shift`` stays ``None``.

        Args:
            items: The products to read the shift from (a list of titles or Products).
            min_confidence: As the later ``predict`` calls will pass it (the answers, and so
                their confidences, depend on it).

        Returns:
            ``self``, with :attr:`feed_shift` set (or ``None`` as above).

        Example:
            >>> tree = Taxonomy.from_paths(["Apparel > Tshirts", "Footwear > Sandals"])
            >>> zs = ZeroShotCategorizer(tree, text_encoder=None)
            >>> zs.fit_feed_shift(["Nike Men White T-Shirt", "Leather sandals"]).feed_shift.products
            2
        """
        self._prepare()
        self.feed_shift = None
        if self.calibration_ is not None or not self.feed_calibration or not len(items):
            return self
        scored = self._probabilities(items)
        if min_confidence is not None:
            chosen = coarse_predictions(
                self.taxonomy, self.classes_, scored.probs, min_confidence, top_k=1, decimals=4
            )
            answer = np.array([p.confidence for p in chosen])
        else:
            choices = self._choices(scored)
            self._kind_checks(scored, choices)  # as predict answers
            answer = np.array([c.confidence for c in choices])
        self.feed_shift = FeedShift.fit(self._model_confidence(scored, answer))
        return self

    @property
    def confidence_thresholds(self) -> dict[str, float]:
        """Auto-accept thresholds by target precision from the tree's reviewed calibration
        (``{"0.95": 0.83}``); empty without one (see ``multimodal-cat calibrate``)."""
        self._prepare()
        if self.calibration_ is None:
            return {}
        table = (self.calibration_.thresholds or {}).get("any", {})
        return {k: t.value for k, t in table.items() if t.value is not None}

    def predict(
        self,
        items: Sequence[str | Product],
        *,
        top_k: int | None = None,
        min_confidence: float | None = None,
    ) -> list[Prediction]:
        """One :class:`Prediction` per item: a valid path, its confidence, top-k alternatives
        (``top_k`` defaults to the constructor's), tags, and a warning when it backed off.
        ``min_confidence`` replaces the default back-off: the deepest category on the best
        leaf's path whose probability (summed over the leaves below it) reaches it. The
        confidence is the chance that the answer is right
        (:mod:`~multimodal_cat.zero_shot.confidence`), read from that probability."""
        scored = self._probabilities(items)
        probs, texts = scored.probs, scored.texts
        keep = max(1, self.top_k if top_k is None else top_k)
        if min_confidence is not None:
            chosen = coarse_predictions(
                self.taxonomy, self.classes_, probs, min_confidence, top_k=keep, decimals=4
            )
            summed = np.array([p.confidence for p in chosen])  # the answer's subtree probability
            for prediction, confidence in zip(chosen, self.confidences(scored, summed), strict=True):
                prediction.confidence = round(float(confidence), 4)
            if self.tagger_ is not None:
                for item, prediction in zip(items, chosen, strict=True):
                    prediction.tags = self._tags(item, prediction.category_id)
            return self._say_inputs(items, texts, chosen)
        view = self.index_.view
        choices = self._choices(scored)
        overruled = self._kind_checks(scored, choices)
        sure = self.confidences(scored, np.array([c.confidence for c in choices]))
        out = []
        rows = zip(items, probs, choices, sure, strict=True)
        for item_index, (item, row, choice, confidence) in enumerate(rows):
            order = np.argsort(-row)[:keep]
            alternatives = [
                CategoryScore(self.classes_[j], self.paths_[j], round(float(row[j]), 4))
                for j in order
            ]
            prediction = Prediction(
                view.ids[choice.position],
                view.paths[choice.position],
                round(float(confidence), 4),
                alternatives,
            )
            if choice.backed_off:
                prediction.warnings.append(back_off_warning(choice, self.index_))
            if item_index in overruled:
                prediction.warnings.append(overruled[item_index])
            if self.tagger_ is not None:
                prediction.tags = self._tags(item, view.ids[choice.position])
            out.append(prediction)
        return self._say_inputs(items, texts, out)

    def _choices(self, scored: _Scored) -> list[Choice]:
        """Each row's answer: its best leaf, or the sure branch it backs off to."""
        return [
            back_off(row, self.index_, leaf_min=self.leaf_min, branch_min=self.branch_min)
            for row in scored.probs
        ]

    def _kind_checks(self, scored: _Scored, choices: list[Choice]) -> dict[int, str]:
        """Replace, in ``choices``, the answers the product-kind head overrules; their warnings
        by row."""
        if self.kind_groups_ is None or scored.vectors is None:
            return {}
        head = self.kind_head_
        titles = self._embed([t.title for t in scored.texts])  # cached: text_vectors read them
        kinds = head.probabilities(l2_normalize(titles))
        verdicts = overrule(scored.probs, kinds, self.kind_groups_, head)
        view, out = self.index_.view, {}
        for i, verdict in enumerate(verdicts):
            if verdict.column < 0:
                continue
            leaf = self.index_.positions[int(np.argmax(scored.probs[i]))]
            position = self.index_.positions[verdict.column]
            confidence = float(scored.probs[i, verdict.column])
            choices[i] = Choice(position, confidence, False, position, confidence)
            out[i] = kind_warning(verdict, view.paths[leaf], view.paths[position])
        return out

    def _say_inputs(
        self,
        items: Sequence[str | Product],
        texts: list[ProductText],
        predictions: list[Prediction],
    ) -> list[Prediction]:
        """Fill each prediction's ``inputs``: the text always, the image when it was scored; a
        product with neither (a photo alone, without an image-text model) fails: no answer."""
        scores_images = self.image_pair_ is not None and bool(self.image_weight)
        has_text = [bool(t.full.strip()) for t in texts]
        has_image = [scores_images and getattr(p, "image", None) is not None for p in items]
        for prediction, used in zip(predictions, inputs_used(has_text, has_image), strict=True):
            prediction.inputs = used
        return failed_if_unread(predictions, NO_TEXT)

    def _tags(self, item: str | Product, category_id: str) -> list:
        title = item if isinstance(item, str) else item.title
        description = "" if isinstance(item, str) else item.description
        attributes = None
        if self.taxonomy.attribute_values:  # a Shopify tree: the category's own attributes
            attributes = self.taxonomy[category_id].attributes
        return self.tagger_.tags(title, description, attributes)

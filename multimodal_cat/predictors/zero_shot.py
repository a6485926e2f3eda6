"""Zero-shot categorization: place a product in any tree, with no training.

Each candidate category ``c`` gets a score that mixes the cosine between the product text and
the names along its path (hierarchical scoring) with lexical evidence:

    score(c) = w_name cos(t, name(c)) + w_parent cos(t, name(parent(c)))
             + w_root cos(t, name(root(c))) + w_path cos(t, path(c)) + w_lexical match(c)

``match(c)`` is 1 when the category's name (or one of its ``&``-separated parts, singular or
plural, spaces and hyphens ignored) occurs in the text and no longer category name does.
Since the embedding terms are linear in the text embedding, the category side folds into
one matrix, computed once per tree and encoder (names go through the embedding cache), so
a batch costs one encoder pass and one matrix product. Product texts go through the cache
too, so a second pass over a feed encodes nothing. For a :class:`Product` the title decides:
lexical matches look at the title only, and its text vector mixes the title's vector with
the title + description's (``title_weight``).

With an aligned image-text pair (``image_encoder``: CLIP, SigLIP, ALIGN... by hub id or
folder), a product's image adds ``w_image cos(image, prompt(c))``, the prompt naming the category
and its parent (``"a photo of Sneakers, a type of Shoes"``); products without an image score
on text alone.

Example:
    >>> from multimodal_cat.taxonomy import Taxonomy
    >>> tree = Taxonomy.from_paths(["Apparel > Topwear > Tshirts", "Footwear > Shoes > Sandals"])
    >>> zs = ZeroShotCategorizer(tree, text_encoder=None)
    >>> zs.predict(["Nike Men White T-Shirt"])[0].category_path
    'Apparel > Topwear > Tshirts'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from multimodal_cat.align.embeddings import TreeView, resolve_text_encoder, words
from multimodal_cat.predictions import CategoryScore, Prediction
from multimodal_cat.predictors.backoff import coarse_predictions
from multimodal_cat.predictors.image_text import PROMPT, PROMPT_ROOT, resolve_image_text_encoder
from multimodal_cat.products import Product
from multimodal_cat.taxonomy import Taxonomy

# Chosen on a validation split of the fashion data (ids % 5 != 0), see
# benchmarks/zero_shot_benchmark.py; the test rows were never used to choose them.
DEFAULT_WEIGHTS: dict[str, float] = {
    "name": 1.0,
    "parent": 0.75,
    "root": 0.25,
    "path": 0.0,
    "lexical": 0.3,
}
_MAX_PHRASE_WORDS = 6


def _phrases(name: str) -> set[str]:
    """Lexical forms of a category name: whole name and its ``&`` / ``,`` / ``/`` parts."""
    parts = [name, *re.split(r"\s*(?:&|,|/|\band\b)\s*", name)]
    out = set()
    for part in parts:
        tokens = words(part)
        if tokens and len(tokens) <= _MAX_PHRASE_WORDS:
            # "Beanies" -> "beany" (singular rule) and "beanie" (plain s dropped)
            plain = [w[:-1] if w.endswith("ies") else w for w in part_words(part)]
            for form in (tokens, plain):
                out.add(" ".join(form))
                out.add("".join(form))
    return out


def part_words(text: str) -> list[str]:
    """Lower-cased words of ``text`` (hyphens and apostrophes dropped), not singularized."""
    text = text.lower().replace("-", "").replace("'", "").replace("\u2019", "")
    return re.findall(r"[a-z0-9]+", text)


def _text_of(item: str | Product) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, Product):
        return " ".join(t for t in (item.title, item.description) if t)
    raise TypeError(f"expected a str or a Product; got {type(item).__name__}")


def _prompt(view: TreeView, i: int) -> str:
    """The category's image prompt: its name, and its parent's when it has one."""
    parent = view.parents[i]
    if parent < 0:
        return PROMPT_ROOT.format(name=view.names[i])
    return PROMPT.format(name=view.names[i], parent=view.names[parent])


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _title_of(item: str | Product) -> str:
    """The text that names the product: a Product's title (else its whole text), or the str."""
    if isinstance(item, Product) and item.title:
        return item.title
    return _text_of(item)


class ZeroShotCategorizer:
    """Categorize product texts into ``taxonomy`` without training.

    Args:
        taxonomy: the tree to place products in.
        text_encoder: ``"minilm"`` (offline default), a hub id or folder, an encoder object
            (``encode``, ``key``, ``dim``), or ``None`` for lexical matching only.
        candidates: ``"leaves"`` (default) or ``"all"`` categories.
        weights: overrides of :data:`DEFAULT_WEIGHTS`.
        temperature: softmax temperature turning scores into probabilities.
        top_k: alternatives returned per prediction.
        cache: an EmbeddingCache for the category and product-text embeddings (default:
            the user cache), or ``False`` to keep nothing on disk; a second pass over the
            same feed then reads every text vector from the cache.
        bf16: run the text encoder under bf16 autocast (product texts; cached separately).
        title_weight: for a Product with a description, the share of its title's vector in
            the text vector (the rest is title + description); lexical matches use the title
            only, so "dishwasher safe" in a mug's description does not vote for Dishwashers.
        image_encoder: an aligned image-text model (hub id, folder or
            :class:`~multimodal_cat.predictors.image_text.ImageTextEncoder`) to score products'
            images against category prompts; ``None`` (default) uses text only.
        image_weight: weight of the image term. Not tuned here (no aligned pair is reachable
            offline); at the default temperature, 5.0 would reproduce CLIP's own logit scale.

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
        temperature: float = 0.05,
        top_k: int = 5,
        cache: Any = None,
        bf16: bool = False,
        title_weight: float = 0.5,
        image_encoder: Any = None,
        image_weight: float = 1.0,
    ) -> None:
        if candidates not in ("leaves", "all"):
            raise ValueError(f"expected candidates='leaves' or 'all'; got {candidates!r}")
        unknown = set(weights or {}) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise ValueError(
                f"expected weights among {sorted(DEFAULT_WEIGHTS)}; got {sorted(unknown)}"
            )
        if temperature <= 0:
            raise ValueError(f"expected a positive temperature; got {temperature}")
        self.taxonomy = taxonomy
        self.text_encoder = text_encoder
        self.candidates = candidates
        self.weights = {**DEFAULT_WEIGHTS, **(weights or {})}
        self.temperature = temperature
        self.top_k = top_k
        self.cache = cache
        self.bf16 = bf16
        if not 0.0 <= title_weight <= 1.0:
            raise ValueError(f"expected title_weight in [0, 1]; got {title_weight}")
        self.title_weight = title_weight
        if image_weight < 0:
            raise ValueError(f"expected a non-negative image_weight; got {image_weight}")
        self.image_encoder = image_encoder
        self.image_weight = image_weight
        self._ready = False

    def _prepare(self) -> None:
        if self._ready:
            return
        if len(self.taxonomy) == 0:
            raise ValueError(
                f"expected a taxonomy with categories; {self.taxonomy.name!r} is empty"
            )
        self.encoder_ = resolve_text_encoder(self.text_encoder)
        view = TreeView.from_taxonomy(self.taxonomy, self.encoder_, self.cache)
        children = [len(c) for c in view.children]
        keep = [i for i in range(len(view)) if self.candidates == "all" or children[i] == 0]
        self.classes_ = [view.ids[i] for i in keep]
        self.paths_ = [view.paths[i] for i in keep]
        if self.encoder_ is not None:
            w = self.weights
            parent = [view.parents[i] if view.parents[i] >= 0 else i for i in keep]
            root = [view.ancestors(i)[-1] for i in keep]
            self.matrix_ = (
                w["name"] * view.name_emb[keep]
                + w["parent"] * view.name_emb[parent]
                + w["root"] * view.name_emb[root]
                + w["path"] * view.path_emb[keep]
            ).astype(np.float32)
        self.image_pair_ = resolve_image_text_encoder(self.image_encoder)
        if self.image_pair_ is not None:
            self.image_matrix_ = self.image_pair_.encode_texts([_prompt(view, i) for i in keep])
        self.phrases_: dict[str, list[int]] = {}
        for column, i in enumerate(keep):
            for phrase in _phrases(view.names[i]):
                self.phrases_.setdefault(phrase, []).append(column)
        self._ready = True

    def _embed(self, texts: list[str]) -> np.ndarray:
        """Text embeddings, read from / written to the embedding cache unless ``cache=False``."""
        if self.cache is False:
            if self.bf16:
                return self.encoder_.encode(texts, bf16=True)
            return self.encoder_.encode(texts)
        from multimodal_cat.encoders import EmbeddingCache, encode_cached

        cache = self.cache or EmbeddingCache()
        return encode_cached(self.encoder_, texts, cache=cache, batch_size=64, bf16=self.bf16)

    def _embed_items(self, items: Sequence[str | Product], texts: list[str]) -> np.ndarray:
        """Unit-length text vectors; a Product with a description mixes its title's vector
        (weight ``title_weight``) with its whole text's, so the description informs but the
        title decides."""
        emb = _unit(self._embed(texts))
        titles = [_title_of(item) for item in items]
        rows = [i for i, (t, full) in enumerate(zip(titles, texts, strict=True)) if t != full]
        if rows and self.title_weight > 0:
            title_emb = _unit(self._embed([titles[i] for i in rows]))
            w = self.title_weight
            emb[rows] = _unit(w * title_emb + (1.0 - w) * emb[rows])
        return emb

    def _lexical(self, text: str) -> np.ndarray:
        """1 for the categories whose longest name form occurs in ``text`` (longest match wins)."""
        tokens = words(text)
        best: dict[int, int] = {}
        for size in range(1, _MAX_PHRASE_WORDS + 1):
            for start in range(len(tokens) - size + 1):
                gram = tokens[start : start + size]
                for key in (" ".join(gram), "".join(gram)):
                    for column in self.phrases_.get(key, ()):
                        best[column] = max(best.get(column, 0), len("".join(gram)))
        out = np.zeros(len(self.classes_), dtype=np.float32)
        if best:
            longest = max(best.values())
            out[[c for c, n in best.items() if n == longest]] = 1.0
        return out

    def lexical_matches(self, items: Sequence[str | Product]) -> np.ndarray:
        """Lexical match indicators (n, len(classes_)), before weighting."""
        self._prepare()
        out = np.zeros((len(items), len(self.classes_)), dtype=np.float32)
        for row, item in enumerate(items):
            out[row] = self._lexical(_title_of(item))
        return out

    def scores(
        self, items: Sequence[str | Product], *, embeddings: np.ndarray | None = None
    ) -> np.ndarray:
        """Raw scores (n, len(classes_)); columns follow :attr:`classes_`.

        ``embeddings`` may hold the texts' embeddings from the same encoder (n, dim), to
        skip encoding them again.
        """
        self._prepare()
        texts = [_text_of(item) for item in items]
        out = np.zeros((len(texts), len(self.classes_)), dtype=np.float32)
        if self.encoder_ is not None and texts:
            if embeddings is None:
                embeddings = self._embed_items(items, texts)
            emb = np.asarray(embeddings, dtype=np.float32)
            if emb.shape != (len(texts), self.matrix_.shape[1]):
                raise ValueError(
                    f"expected embeddings of shape {(len(texts), self.matrix_.shape[1])}; got {emb.shape}"
                )
            emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
            out += emb @ self.matrix_.T
        if self.weights["lexical"]:
            out += self.weights["lexical"] * self.lexical_matches(items)
        if self.image_pair_ is not None and self.image_weight:
            out += self.image_weight * self.image_scores(items)
        return out

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
        scores = self.scores(items) / self.temperature
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        return scores / scores.sum(axis=1, keepdims=True)

    def predict(
        self,
        items: Sequence[str | Product],
        *,
        top_k: int | None = None,
        min_confidence: float | None = None,
    ) -> list[Prediction]:
        """One :class:`Prediction` per item: a valid path, its probability and top-k alternatives
        (``top_k`` defaults to the constructor's); ``min_confidence`` backs off to the deepest
        category on the best one's path whose probability (summed over the candidates below
        it) reaches it."""
        probs = self.predict_proba(items)
        keep = max(1, self.top_k if top_k is None else top_k)
        if min_confidence is not None:
            return coarse_predictions(
                self.taxonomy, self.classes_, probs, min_confidence, top_k=keep, decimals=4
            )
        out = []
        for row in probs:
            order = np.argsort(-row)[:keep]
            alternatives = [
                CategoryScore(self.classes_[j], self.paths_[j], round(float(row[j]), 4))
                for j in order
            ]
            best = order[0]
            out.append(
                Prediction(self.classes_[best], self.paths_[best], float(row[best]), alternatives)
            )
        return out

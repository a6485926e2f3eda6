"""Tree views and their text embeddings, the shared input of alignment and zero-shot search.

A :class:`TreeView` holds a taxonomy's flat index (:class:`~multimodal_cat.taxonomy.TaxonomyIndex`:
parents, depths, children) with the word sets and unit-length embeddings of every full path and
every category name. Embeddings go through
the on-disk :class:`~multimodal_cat.encoders.EmbeddingCache`, so a tree is encoded once per
text encoder and later runs only read the cache.

Example:
    >>> from multimodal_cat.taxonomy import Taxonomy
    >>> tree = Taxonomy.from_paths(["Shoes > Boots"])
    >>> view = TreeView.from_taxonomy(tree, encoder=None)
    >>> view.names, view.parents
    (['Shoes', 'Boots'], [-1, 0])
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from multimodal_cat.taxonomy import Taxonomy, TaxonomyIndex

_STOP_WORDS = frozenset({"&", "and", "or", "the", "of", "for", "a", "an", "with", "in", "other"})


def singular(word: str) -> str:
    """A crude English singular (``"boxes"`` -> ``"box"``, ``"berries"`` -> ``"berry"``)."""
    if len(word) > 3 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("es") and (word[-3] in "sxz" or word[-4:-2] in ("ch", "sh")):
        return word[:-2]
    if len(word) > 2 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def words(text: str) -> list[str]:
    """Lower-cased singular words of ``text``; hyphens and apostrophes are dropped (T-Shirt -> tshirt)."""
    text = text.lower().replace("-", "").replace("'", "").replace("\u2019", "")
    return [singular(w) for w in re.findall(r"[a-z0-9]+", text)]


def word_set(text: str) -> frozenset[str]:
    """Content words of ``text`` as a set (stop words removed)."""
    return frozenset(w for w in words(text) if w not in _STOP_WORDS)


def resolve_text_encoder(encoder: Any) -> Any:
    """A text encoder object from a short name, hub id, folder, or an object with ``encode``."""
    if isinstance(encoder, str):
        from multimodal_cat.encoders import TextEncoder

        return TextEncoder.from_name(encoder, pooling="mean", max_length=64)
    if encoder is None or hasattr(encoder, "encode"):
        return encoder
    raise TypeError(
        "expected a text encoder name (e.g. 'minilm') or an object with encode(texts), "
        f"key and dim; got {type(encoder).__name__}"
    )


def encoding_settings(encoder: Any, bf16: bool | None, workers: int | None) -> tuple[bool, int]:
    """The ``(bf16, workers)`` to encode a tree with; ``None`` picks the fast setting.

    For a :class:`~multimodal_cat.encoders.TextEncoder`, ``bf16=None`` turns bf16 autocast
    on where the device runs it natively (AMX / AVX512-BF16 CPU, bf16 GPU), and
    ``workers=None`` uses one worker thread per torch thread on CPU. Other encoder objects
    get fp32 and one call unless asked (their ``encode`` may not take these arguments).
    """
    if workers is not None and workers < 1:
        raise ValueError(f"expected workers >= 1 or None; got {workers}")
    if encoder is None:
        return False, 1
    from multimodal_cat.encoders import TextEncoder

    if not isinstance(encoder, TextEncoder):
        return bool(bf16), workers or 1
    import torch

    from multimodal_cat.encoders._base import backbone_of, model_device, native_bf16

    device = model_device(backbone_of(encoder.model, "text_model"))
    if bf16 is None:
        bf16 = native_bf16(device)
    if workers is None:
        workers = torch.get_num_threads() if device.type == "cpu" else 1
    return bf16, workers


def embed_texts(
    texts: list[str],
    encoder: Any,
    cache: Any = None,
    *,
    bf16: bool = False,
    workers: int = 1,
    progress: bool = False,
) -> np.ndarray:
    """Unit-length embeddings of ``texts``, read from / written to the embedding cache.

    Duplicated texts are encoded once, shortest first: the cache encodes misses in chunks,
    so sorting the whole list (not only each chunk) keeps batches of similar length and
    padding low. With ``cache=False`` nothing touches the disk. ``bf16`` encodes under bf16
    autocast; its vectors are cached apart from the fp32 ones. ``workers > 1`` is passed to
    ``encoder.encode`` (see :meth:`~multimodal_cat.encoders.TextEncoder.encode`).
    ``progress`` shows a bar while cache misses are encoded.
    """
    if encoder is None:
        return np.zeros((len(texts), 1), dtype=np.float32)
    unique = sorted(dict.fromkeys(texts), key=len)
    if not unique:
        return np.zeros((0, int(encoder.dim)), dtype=np.float32)
    if cache is False:
        kwargs: dict[str, Any] = {"bf16": True} if bf16 else {}
        if workers > 1:
            kwargs["workers"] = workers
        vectors = np.asarray(encoder.encode(unique, **kwargs), dtype=np.float32)
    else:
        from multimodal_cat.encoders import EmbeddingCache, encode_cached

        cache = cache or EmbeddingCache()
        vectors = encode_cached(
            encoder,
            unique,
            cache=cache,
            batch_size=128,
            bf16=bf16,
            workers=workers,
            progress=progress,
        )
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.maximum(norms, 1e-12)
    row = {text: i for i, text in enumerate(unique)}
    return vectors[[row[t] for t in texts]].astype(np.float32)


def _index_field(name: str) -> property:
    """A read-only attribute of the view that is the same attribute of its index."""
    return property(lambda view: getattr(view.index, name), doc=f"The index's ``{name}``.")


@dataclass
class TreeView:
    """A taxonomy's index with path and name embeddings (rows follow the index positions).

    Attributes:
        index: The tree's :class:`~multimodal_cat.taxonomy.TaxonomyIndex`; ``ids``, ``names``,
            ``paths``, ``parents``, ``depths`` and ``children`` read from it.
        name_words, path_words: content-word sets of names and full paths.
        path_emb, name_emb: unit-length embeddings (n, dim); a (n, 1) zero array without encoder.
    """

    index: TaxonomyIndex
    name_words: list[frozenset[str]] = field(default_factory=list)
    path_words: list[frozenset[str]] = field(default_factory=list)
    path_emb: np.ndarray | None = None
    name_emb: np.ndarray | None = None

    @classmethod
    def from_taxonomy(
        cls,
        taxonomy: Taxonomy,
        encoder: Any = None,
        cache: Any = None,
        *,
        bf16: bool = False,
        workers: int = 1,
        progress: bool = False,
    ) -> TreeView:
        """Build the view; embeds paths and names with ``encoder`` (skipped when ``None``),
        in one pass so a root's path and name (the same text) are encoded once."""
        index = taxonomy.to_index()
        view = cls(index, [word_set(n) for n in index.names], [word_set(p) for p in index.paths])
        vectors = embed_texts(index.paths + index.names, encoder, cache, bf16=bf16, workers=workers, progress=progress)
        view.path_emb, view.name_emb = vectors[: len(view)], vectors[len(view) :]
        return view

    def __len__(self) -> int:
        return len(self.index)

    ids = _index_field("ids")
    names = _index_field("names")
    paths = _index_field("paths")
    parents = _index_field("parents")
    depths = _index_field("depths")
    children = _index_field("children")

    def ancestors(self, position: int) -> list[int]:
        """Positions from ``position`` up to its root (self first; the index lists root first)."""
        return self.index.ancestors(position)[::-1] if position >= 0 else []

    def descendants(self, position: int, levels: int) -> list[int]:
        """Positions below ``position``, at most ``levels`` levels down."""
        out: list[int] = []
        frontier = [position]
        for _ in range(levels):
            frontier = [c for f in frontier for c in self.children[f]]
            out.extend(frontier)
        return out

    def top_down(self) -> list[int]:
        """Positions ordered so that every parent comes before its children (depth by depth)."""
        return [position for level in self.index.levels for position in level]

"""Category matrices of the shipped trees, shipped inside the package for the default encoder.

Encoding Shopify's 10.6k category names and paths takes minutes on a small CPU, before the
first product. The package therefore ships, for each shipped tree, the default encoder's
:func:`~multimodal_cat.zero_shot.search.category_matrix` (int8 with one scale per row, so
Shopify's 10,595 x 384 matrix is about 4 MB). A shipped file is used only when the tree
(ids and paths), the encoder's cache key, a digest of the encoder's weights and the
embedding weights all match; otherwise the matrix is computed from the encoder, through the
embedding cache, with a progress bar.

Rebuild the files (after changing the default weights or the encoder)::

    python -m multimodal_cat.zero_shot.store shopify google

Example:
    >>> from multimodal_cat.taxonomy import Taxonomy
    >>> tree_digest(Taxonomy.from_paths(["Shoes > Boots"]))[:12]
    '9146b866df89'
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np

from multimodal_cat.taxonomy import Taxonomy
from multimodal_cat.zero_shot.search import ScoreWeights, category_matrix

DATA_DIR = Path(__file__).parent / "data"
_PROGRESS_MIN = 500  # texts: fewer than this encode without a progress bar


def tree_digest(taxonomy: Taxonomy) -> str:
    """SHA-256 of the tree's ids and paths, in index order."""
    index = taxonomy.to_index()
    text = "\n".join(f"{i}\t{p}" for i, p in zip(index.ids, index.paths, strict=True))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def encoder_digest(encoder: Any) -> str | None:
    """SHA-256 of the encoder's weights (its torch ``model``), or ``None`` for other encoders."""
    model = getattr(encoder, "model", None)
    if model is None or not hasattr(model, "state_dict"):
        return None
    cached = getattr(encoder, "_weight_digest", None)
    if cached:
        return cached
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode("utf-8"))
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    encoder._weight_digest = digest.hexdigest()
    return encoder._weight_digest


def _weights_tag(weights: ScoreWeights) -> str:
    return ",".join(f"{w:g}" for w in weights.embedding_terms())


def shipped_file(taxonomy: Taxonomy) -> Path:
    """Where the shipped matrix of ``taxonomy`` lives (whether or not it exists)."""
    return DATA_DIR / f"{tree_digest(taxonomy)[:16]}.npz"


def load_shipped(taxonomy: Taxonomy, encoder: Any, weights: ScoreWeights) -> np.ndarray | None:
    """The shipped matrix (n_nodes, dim) float32 when everything matches, else ``None``."""
    path = shipped_file(taxonomy)
    if encoder is None or not path.is_file():
        return None
    with np.load(path) as data:
        meta = {k: str(data[k]) for k in ("tree", "encoder_key", "encoder_digest", "weights")}
        if meta != {
            "tree": tree_digest(taxonomy),
            "encoder_key": str(encoder.key),
            "encoder_digest": str(encoder_digest(encoder)),
            "weights": _weights_tag(weights),
        }:
            return None
        return data["matrix"].astype(np.float32) * data["scale"][:, None]


def save_shipped(
    taxonomy: Taxonomy, encoder: Any, weights: ScoreWeights, matrix: np.ndarray
) -> Path:
    """Write ``matrix`` (int8 + row scales) with what it was made from; returns the file."""
    scale = np.maximum(np.abs(matrix).max(axis=1), 1e-12) / 127.0
    path = shipped_file(taxonomy)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        matrix=np.round(matrix / scale[:, None]).astype(np.int8),
        scale=scale.astype(np.float32),
        tree=tree_digest(taxonomy),
        tree_name=str(taxonomy.name),
        encoder_key=str(encoder.key),
        encoder_digest=str(encoder_digest(encoder)),
        weights=_weights_tag(weights),
    )
    return path


def embed_tree(taxonomy: Taxonomy, encoder: Any, cache: Any = None, *, bf16: bool = False) -> Any:
    """A :class:`~multimodal_cat.align.embeddings.TreeView` with name and path embeddings,
    encoded through the cache with a progress bar when the tree is large."""
    from multimodal_cat.align.embeddings import TreeView

    view = TreeView.from_taxonomy(taxonomy, None)
    texts = list(dict.fromkeys(view.paths + view.names))
    progress = len(texts) >= _PROGRESS_MIN
    if cache is False:
        vectors = np.asarray(
            encoder.encode(texts, **({"bf16": True} if bf16 else {})), dtype=np.float32
        )
    else:
        from multimodal_cat.encoders import EmbeddingCache, encode_cached

        vectors = encode_cached(
            encoder,
            sorted(texts, key=len),
            cache=cache or EmbeddingCache(),
            batch_size=128,
            bf16=bf16,
            progress=progress,
            noun="category name",
        )
        texts = sorted(texts, key=len)
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    row = {text: i for i, text in enumerate(texts)}
    view.path_emb = vectors[[row[p] for p in view.paths]].astype(np.float32)
    view.name_emb = vectors[[row[n] for n in view.names]].astype(np.float32)
    return view


def tree_matrix(
    taxonomy: Taxonomy,
    encoder: Any,
    weights: ScoreWeights,
    cache: Any = None,
    *,
    bf16: bool = False,
) -> tuple[Any, np.ndarray | None]:
    """The tree's view and category matrix: shipped when it matches, else encoded."""
    from multimodal_cat.align.embeddings import TreeView

    if encoder is None:
        return TreeView.from_taxonomy(taxonomy, None), None
    shipped = None if bf16 else load_shipped(taxonomy, encoder, weights)
    if shipped is not None:
        return TreeView.from_taxonomy(taxonomy, None), shipped
    view = embed_tree(taxonomy, encoder, cache, bf16=bf16)
    return view, category_matrix(view, weights)


def main(argv: list[str] | None = None) -> int:
    """Rebuild the shipped matrices of the named trees with the default encoder and weights."""
    from multimodal_cat.align.embeddings import resolve_text_encoder

    encoder = resolve_text_encoder("minilm")
    for name in argv if argv is not None else sys.argv[1:]:
        tree = Taxonomy.load(name)
        view = embed_tree(tree, encoder)
        path = save_shipped(tree, encoder, ScoreWeights(), category_matrix(view, ScoreWeights()))
        print(f"{tree.name}: {len(tree)} categories -> {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

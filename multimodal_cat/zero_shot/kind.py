"""What kind of thing a product is, before the leaf: a product-kind head over Shopify's roots.

Zero-shot search reads titles literally: "LEGO City Police Car" lands in real Police Cars and
"Atomic Habits (Paperback)" in Garbage Disposals. A light head (multinomial logistic
regression on the default encoder's unit title vectors, 16 x 384 weights shipped as
``data/kind_head.npz``, about 12 kB) says which of Shopify's top-level categories a product
belongs to. It was trained on every labelled title the project has (Flipkart, fashion, MWPD
train), their own top levels mapped by hand to Shopify's (``benchmarks/zero_shot_kind.py``;
rows whose top level has no clear Shopify twin were left out). For a tree whose top-level names
are Shopify's (Shopify itself, or a tree built on its roots), the engine overrules the best leaf
when the head is sure (:data:`KIND_SURE`) that the product is of another kind, gives the
leaf's own root almost no chance (:data:`KIND_VETO`), and the engine itself finds a plausible
leaf of that kind (:data:`KIND_PLAUSIBLE`): the answer moves to that leaf, and the prediction
carries a warning saying so. (Without the last condition the head, trained on narrow data,
moved right answers into wrong branches: a digital piano into computer keyboards; see
``benchmarks/results/zero_shot_general.json``, key ``general40``.) Roots the head never saw in
training (Business & Industrial, Software...) are never vetoed.

Example:
    >>> head = KindHead(np.eye(2, 3), np.zeros(2), ["Toys & Games", "Hardware"], "k", "d")
    >>> [round(float(p), 2) for p in head.probabilities(np.array([[5.0, 0.0, 0.0]]))[0]]
    [0.99, 0.01]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

KIND_FILE = Path(__file__).parent / "data" / "kind_head.npz"
KIND_SURE = 0.8  # the head's probability for its root that lets it overrule
KIND_VETO = 0.05  # ... when it gives the best leaf's own root less than this
KIND_PLAUSIBLE = 0.2  # ... and the engine gives the new answer this share of the best leaf's


@dataclass(frozen=True)
class KindHead:
    """Multinomial logistic regression from product vectors to Shopify top-level names."""

    weights: np.ndarray  # (roots, dim)
    bias: np.ndarray  # (roots,)
    roots: list[str]
    encoder_key: str
    encoder_digest: str

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """P(root | product), rows sum to 1, columns follow :attr:`roots`."""
        z = np.asarray(vectors, dtype=np.float64) @ self.weights.T + self.bias
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def save(self, path: Path = KIND_FILE) -> Path:
        """Write the head (float16 weights) with the encoder it reads."""
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path,
            weights=self.weights.astype(np.float16),
            bias=self.bias.astype(np.float32),
            roots=np.array(self.roots),
            encoder_key=self.encoder_key,
            encoder_digest=self.encoder_digest,
        )
        return path


def load_kind_head(encoder: Any, path: Path = KIND_FILE) -> KindHead | None:
    """The shipped head when it was trained on ``encoder``'s vectors, else ``None``."""
    from multimodal_cat.zero_shot.store import encoder_digest

    if encoder is None or not path.is_file():
        return None
    with np.load(path) as data:
        if str(data["encoder_key"]) != str(encoder.key):
            return None
        if str(data["encoder_digest"]) != str(encoder_digest(encoder)):
            return None
        return KindHead(
            data["weights"].astype(np.float32),
            data["bias"].astype(np.float32),
            [str(r) for r in data["roots"]],
            str(data["encoder_key"]),
            str(data["encoder_digest"]),
        )


def root_groups(index: Any, head: KindHead) -> dict[int, np.ndarray] | None:
    """For each head root that names a top-level category of ``index``'s tree, the candidate
    columns below it; ``None`` when the tree's roots are not Shopify's."""
    view = index.view
    root_of = np.array([view.ancestors(p)[-1] for p in index.positions])
    names = {view.names[r]: r for r in set(root_of.tolist())}
    groups = {k: np.flatnonzero(root_of == names[name]) for k, name in enumerate(head.roots) if name in names}
    return groups if len(groups) >= 2 else None


@dataclass(frozen=True)
class KindVerdict:
    """The head's word on one row: the column to answer instead (``-1``: keep the best leaf)."""

    column: int
    kind: str
    kind_probability: float
    leaf_root_probability: float


def overrule(
    probs: np.ndarray, kind_probs: np.ndarray, groups: dict[int, np.ndarray], head: KindHead
) -> list[KindVerdict]:
    """Per row: move to the best leaf under the head's root when the head is sure, gives the
    best leaf's root less than :data:`KIND_VETO`, and the engine itself finds that leaf
    plausible (at least :data:`KIND_PLAUSIBLE` of the best leaf's probability)."""
    column_root = np.full(probs.shape[1], -1)
    for k, cols in groups.items():
        column_root[cols] = k
    out = []
    for row, kind_row in zip(probs, kind_probs, strict=True):
        best = int(np.argmax(row))
        kind = int(np.argmax(kind_row))
        leaf_root = int(column_root[best])
        keep = KindVerdict(-1, head.roots[kind], float(kind_row[kind]), 0.0)
        if leaf_root < 0 or kind not in groups or kind == leaf_root:
            out.append(keep)
            continue
        leaf_p = float(kind_row[leaf_root])
        if kind_row[kind] < KIND_SURE or leaf_p >= KIND_VETO:
            out.append(KindVerdict(-1, head.roots[kind], float(kind_row[kind]), leaf_p))
            continue
        column = int(groups[kind][np.argmax(row[groups[kind]])])
        if row[column] < KIND_PLAUSIBLE * row[best]:  # the engine finds nothing of that kind
            column = -1
        out.append(KindVerdict(column, head.roots[kind], float(kind_row[kind]), leaf_p))
    return out


def kind_warning(verdict: KindVerdict, leaf_path: str, answer_path: str) -> str:
    """The plain-words note on an overruled row."""
    return (
        f"product-kind check: the product reads as {verdict.kind!r} ({verdict.kind_probability:.2f}), "
        f"not under {leaf_path.split(' > ')[0]!r} ({verdict.leaf_root_probability:.2f}): answered "
        f"{answer_path!r} instead of the best leaf {leaf_path!r}"
    )

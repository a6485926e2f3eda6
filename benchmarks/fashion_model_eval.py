"""Metrics and logistic-regression baselines for the fashion model benchmark.

Example:
    >>> from benchmarks.fashion_model_eval import evaluate  # doctest: +SKIP
    >>> evaluate(table, table.rows("test"), leaf_probs, tag_logits)["leaf_accuracy"]  # doctest: +SKIP
    0.98
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.fashion_model_data import FashionTable
from multimodal_cat.training import category_metrics, tag_metrics, tag_predictions

METRIC_KEYS = (
    "level1_accuracy",
    "level2_accuracy",
    "level3_accuracy",
    "leaf_accuracy",
    "leaf_macro_f1",
    "hierarchical_f1",
    "tag_micro_f1",
    "tag_macro_f1",
    "valid_path_rate",
)


def evaluate(
    table: FashionTable,
    rows: np.ndarray,
    leaf_scores: np.ndarray,
    tag_logits: np.ndarray | None = None,
) -> dict[str, float]:
    """Category metrics (per level, leaf, macro-F1, hierarchical F1, valid paths) and tag F1.

    ``valid_path_rate`` here is the share of predicted paths found among the tree's paths.
    """
    leaves = np.asarray(table.space.leaves)
    pred = leaves[np.asarray(leaf_scores).argmax(-1)]
    true = table.labels[rows]
    out = category_metrics(pred, true, table.space.parents)
    tree = set(table.space.paths)
    out["valid_path_rate"] = float(np.mean([table.space.paths[p] in tree for p in pred]))
    if tag_logits is not None:
        decisions = tag_predictions(tag_logits, table.groups)
        out.update(tag_metrics(decisions, table.tags[rows]))
        start = 0
        for group in table.groups:
            part = slice(start, start + len(group.values))
            start += len(group.values)
            known = (table.tags[rows, part] != -100).all(-1)
            hit = decisions[known, part].argmax(-1) == table.tags[rows][known, part].argmax(-1)
            out[f"tag_{group.attribute}_accuracy"] = float(hit.mean()) if known.any() else 0.0
    return {k: round(float(v), 4) for k, v in out.items()}


def _leaf_targets(table: FashionTable, rows: np.ndarray) -> np.ndarray:
    position = {node: i for i, node in enumerate(table.space.leaves)}
    return np.array([position[n] for n in table.labels[rows]])


def _scores(model, features, n_leaves: int) -> np.ndarray:
    """LR probabilities placed in the full leaf order (unseen leaves get 0)."""
    out = np.zeros((features.shape[0], n_leaves), dtype=np.float32)
    out[:, model.classes_] = model.predict_proba(features)
    return out


def lr_dense(
    table: FashionTable,
    train: np.ndarray,
    test: np.ndarray,
    blocks: list[tuple[np.ndarray, np.ndarray]],
    c: float = 1.0,
) -> tuple[np.ndarray, float]:
    """Standardised frozen features + multinomial logistic regression. ``blocks`` = (train, test)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x_train = np.concatenate([b[0] for b in blocks], axis=1)
    x_test = np.concatenate([b[1] for b in blocks], axis=1)
    scaler = StandardScaler().fit(x_train)
    start = time.perf_counter()
    model = LogisticRegression(C=c, max_iter=300, tol=1e-3)
    model.fit(scaler.transform(x_train), _leaf_targets(table, train))
    took = time.perf_counter() - start
    return _scores(model, scaler.transform(x_test), len(table.space.leaves)), took


def lr_tfidf(
    table: FashionTable,
    train: np.ndarray,
    test: np.ndarray,
    texts: list[str],
    test_texts: list[str] | None = None,
    c: float = 10.0,
) -> tuple[np.ndarray, float]:
    """TF-IDF (word 1-2 grams, sublinear tf) + logistic regression on titles."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    test_texts = texts if test_texts is None else test_texts
    start = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    x_train = vectorizer.fit_transform([texts[i] for i in train])
    model = LogisticRegression(C=c, max_iter=300, tol=1e-3)
    model.fit(x_train, _leaf_targets(table, train))
    took = time.perf_counter() - start
    x_test = vectorizer.transform([test_texts[i] for i in test])
    return _scores(model, x_test, len(table.space.leaves)), took


def baselines(table: FashionTable, test: np.ndarray, quick: bool = False) -> dict[str, dict]:
    """The issue's plain baselines, same run: trained on the imaged non-test rows only.

    Also TF-IDF + LR trained on every training row (all ~40k titles) as a stronger text baseline.
    """
    imaged = np.flatnonzero((table.split != "test") & table.image_mask)
    every = np.flatnonzero(table.split != "test")
    img, txt, brd = table.image, table.text, table.brand
    runs = {
        "lr_image": ("titles", lambda: lr_dense(table, imaged, test, [(img[imaged], img[test])])),
        "lr_text": ("titles", lambda: lr_dense(table, imaged, test, [(txt[imaged], txt[test])])),
        "lr_concat": (
            "titles",
            lambda: lr_dense(
                table, imaged, test, [(img[imaged], img[test]), (txt[imaged], txt[test])]
            ),
        ),
        "tfidf_lr": ("titles", lambda: lr_tfidf(table, imaged, test, table.titles)),
        "tfidf_lr_all_rows": ("titles", lambda: lr_tfidf(table, every, test, table.titles)),
        "lr_brand_text": (
            "brands",
            lambda: lr_dense(table, imaged, test, [(brd[imaged], brd[test])]),
        ),
        "lr_brand_image": (
            "brands",
            lambda: lr_dense(
                table, imaged, test, [(img[imaged], img[test]), (brd[imaged], brd[test])]
            ),
        ),
        "tfidf_lr_brand_test": (
            "brands",
            lambda: lr_tfidf(table, imaged, test, table.titles, table.brands),
        ),
    }
    if quick:
        runs = {k: v for k, v in runs.items() if k in ("lr_concat", "tfidf_lr")}
    results = {}
    for name, (setting, run) in runs.items():
        scores, seconds = run()
        metrics = evaluate(table, test, scores)
        results[name] = {"setting": setting, "train_seconds": round(seconds, 2), **metrics}
        print(
            f"[baseline] {name:22s} {setting:6s} acc={metrics['leaf_accuracy']:.4f} "
            f"f1={metrics['leaf_macro_f1']:.4f} ({seconds:.1f}s)",
            flush=True,
        )
    return results

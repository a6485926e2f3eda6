"""Label errors: rows of a labelled feed whose label the data contradicts.

Out-of-sample probabilities come from cross-validated frozen-head models: a logistic regression
on the cached text and image vectors (``cross_val_predict``, stratified folds), so no row is
scored by a model that saw its label. cleanlab's confident learning (``find_label_issues``,
cleanlab 2.9, Apache-2.0) then picks the likely errors, ranked by self-confidence (the
out-of-sample probability of the given label). Classes with a single row cannot be
cross-validated and are left out of this check (they are counted in the evidence of none).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from multimodal_cat.catalog.audits.categories import claimed
from multimodal_cat.catalog.audits.context import AuditContext, finding
from multimodal_cat.errors import optional_import

FOLDS = 5
SEED = 0


def features(ctx: AuditContext) -> np.ndarray:
    """Text and image vectors side by side (zeros where a product lacks one)."""
    return np.hstack([ctx.vectors[m] for m in ("text", "image") if m in ctx.vectors])


def out_of_sample(x: np.ndarray, y: np.ndarray, folds: int = FOLDS) -> np.ndarray:
    """Cross-validated class probabilities (n, classes) of a logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    counts = np.bincount(y)
    folds = int(max(2, min(folds, counts.min())))
    model = LogisticRegression(C=10.0, max_iter=300)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SEED)
    return cross_val_predict(model, x, y, cv=splitter, method="predict_proba")


def label_issue_scores(ctx: AuditContext) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """``(rows, issue mask, classes, probabilities)`` for rows whose class has >= 2 members;
    rows are feed positions, the mask marks cleanlab's label issues."""
    labels = claimed(ctx)
    names = sorted({label for label in labels if label})
    counts = {name: sum(1 for label in labels if label == name) for name in names}
    keep = np.array([i for i, label in enumerate(labels) if label and counts[label] >= 2])
    classes = sorted({labels[i] for i in keep}) if len(keep) else []
    if len(classes) < 2:
        return np.zeros(0, np.int64), np.zeros(0, bool), classes, np.zeros((0, 0))
    code = {name: i for i, name in enumerate(classes)}
    y = np.array([code[labels[i]] for i in keep])
    probabilities = out_of_sample(features(ctx)[keep], y)
    filter_ = optional_import("cleanlab.filter", extra="catalog", purpose="the labels audit")
    issues = filter_.find_label_issues(labels=y, pred_probs=probabilities)
    return keep, np.asarray(issues, bool), classes, probabilities


def check(ctx: AuditContext) -> list[dict[str, Any]]:
    """A finding per likely mislabelled row, scored 1 - P(given label)."""
    rows, issues, classes, probabilities = label_issue_scores(ctx)
    labels = claimed(ctx)
    out = []
    for position in np.flatnonzero(issues):
        row = int(rows[position])
        given = classes.index(labels[row])
        best = int(np.argmax(probabilities[position]))
        score = 1.0 - float(probabilities[position, given])
        evidence = {
            "label": labels[row], "p_label": round(float(probabilities[position, given]), 4),
            "likely": classes[best], "p_likely": round(float(probabilities[position, best]), 4),
        }
        text = f"labelled {labels[row]!r}, looks like {classes[best]!r}"
        out.append(finding("labels", text, score, [row], ctx, evidence))
    return out

"""``suggest`` and ``--holdout`` never hold a (products x categories) matrix (issue 22, item 9):
probabilities are computed a batch at a time and only each product's best category is kept."""

from __future__ import annotations

import json

import numpy as np
import pytest

from multimodal_cat.cli.main import main
from multimodal_cat.predictions import CategoryScore, Prediction
from multimodal_cat.review.selection import (
    SCORE_BATCH,
    gather_vectors,
    score_pool,
    suggest,
    suggest_scored,
)
from multimodal_cat.taxonomy import Taxonomy

TREE = Taxonomy.from_paths(
    [f"Dept {d} > Kind {k}" for d in range(5) for k in range(8)], name="tiny"
)
LEAVES = [c.id for c in TREE if not TREE.children(c.id)]


class RecordingPredictor:
    """Deterministic probabilities from the title's number; records every batch size."""

    fingerprint = "recording"

    def __init__(self) -> None:
        self.taxonomy = TREE
        self.classes_ = LEAVES
        self.batches: list[int] = []

    def predict_proba(self, products):
        self.batches.append(len(products))
        rows = []
        for p in products:
            number = int(p.title.split()[-1])
            row = np.random.default_rng(number).dirichlet(np.full(len(LEAVES), 0.3))
            rows.append(row)
        return np.array(rows)

    def predict(self, products, *, top_k=5, min_confidence=None):
        self.batches.append(len(products))
        out = []
        for row, p in zip(self.predict_proba(products), products, strict=True):
            j = int(row.argmax())
            path = TREE[LEAVES[j]].full_path
            conf = 0.99 if "doll" in p.title else float(row[j])
            out.append(Prediction(LEAVES[j], path, conf, [CategoryScore(LEAVES[j], path, conf)]))
        self.batches.pop()  # the inner predict_proba call was recorded already
        return out


@pytest.mark.parametrize("rows", [700, 7000])  # 7,000: typicality samples 5,000 reference rows
def test_scoring_a_pool_in_batches_picks_what_the_whole_matrix_picks(rows):
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.full(30, 0.3), size=rows)
    vectors = rng.normal(size=(rows, 8))
    seen: list[int] = []

    def predict_proba(batch):
        seen.append(len(batch))
        return proba[batch]

    def embed(batch):
        return vectors[batch]

    pool = lambda: iter(range(rows))  # noqa: E731
    scores = score_pool(pool, rows, predict_proba, embed, batch_size=64)
    assert max(seen) == 64 and sum(seen) == rows  # probabilities: one batch at a time
    exclude = np.zeros(rows, dtype=bool)
    exclude[::7] = True
    whole = suggest(proba, vectors, 25, exclude=exclude)
    batched = suggest_scored(
        scores, lambda r: gather_vectors(pool(), r, embed), 25, exclude=exclude
    )
    assert batched.tolist() == whole.tolist()


def test_a_pool_of_another_length_than_announced_is_refused():
    with pytest.raises(ValueError, match="expected 5 products"):
        score_pool(
            lambda: iter(range(4)),
            5,
            lambda b: np.ones((len(b), 2)),
            lambda b: np.ones((len(b), 2)),
        )


def test_suggest_cli_scores_the_pool_in_batches(tmp_path, monkeypatch):
    from multimodal_cat.encoders.text import TextEncoder

    class Encoder:
        key, dim = "test:words", 3

        def encode(self, texts, **_):
            return np.array([[len(t), t.count("1") + 1.0, 1.0] for t in texts], dtype=np.float32)

    predictor = RecordingPredictor()
    monkeypatch.setattr("multimodal_cat.predictors.build.build_predictor", lambda **_: predictor)
    monkeypatch.setattr(TextEncoder, "from_name", classmethod(lambda cls, name, **_: Encoder()))
    monkeypatch.setenv("MULTIMODAL_CAT_CACHE", str(tmp_path / "cache"))
    feed = tmp_path / "pool.csv"
    feed.write_text(
        "id,title\n" + "".join(f"p{i},product {i}\n" for i in range(3 * SCORE_BATCH + 5))
    )
    tasks = tmp_path / "next.json"
    tree = TREE.save(tmp_path / "tiny.csv")  # the tree is checked before any model loads
    assert main(["suggest", str(feed), "--taxonomy", str(tree), "-n", "5", "-o", str(tasks)]) == 0
    assert max(predictor.batches[:-1]) == SCORE_BATCH  # the pool; the last call: the 5 picks
    assert sum(predictor.batches[:-1]) == 3 * SCORE_BATCH + 5 and predictor.batches[-1] == 5
    picked = json.loads(tasks.read_text())
    assert len(picked) == 5 and len({t["data"]["id"] for t in picked}) == 5
    assert all(t["data"]["reason"].startswith("suggested: uncertainty") for t in picked)


def test_holdout_threshold_predicts_in_batches(tmp_path, monkeypatch):
    import multimodal_cat.predictors.build as build

    predictor = RecordingPredictor()
    monkeypatch.setattr(build, "build_predictor", lambda **_: predictor)
    rows = 2 * SCORE_BATCH + 3
    holdout = tmp_path / "holdout.csv"
    path = TREE[LEAVES[0]].full_path
    holdout.write_text("title,category\n" + "".join(f"doll {i},{path}\n" for i in range(rows)))
    feed = tmp_path / "feed.csv"
    feed.write_text("id,title\n1,doll 1\n")
    tree = TREE.save(tmp_path / "tiny.csv")  # the tree is checked before any model loads
    args = ["categorize", str(feed), "--taxonomy", str(tree), "-o", str(tmp_path / "out.csv")]
    args += ["--no-progress", "--target-precision", "0.5", "--holdout", str(holdout)]
    assert main(args) == 0
    assert max(predictor.batches) <= SCORE_BATCH and sum(predictor.batches[:3]) == rows

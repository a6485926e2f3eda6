"""NaN confidences are never auto-accepted (issue 22, item 2): a diverged training run fails and
saves nothing, a non-finite score is an error row routed to review, thresholds stay finite,
broken cache entries are recomputed, and a checkpoint with a non-positive temperature is refused."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from multimodal_cat.calibration import threshold_for_precision
from multimodal_cat.cli.main import main
from multimodal_cat.encoders import EmbeddingCache, encode_cached
from multimodal_cat.errors import ConfigurationError
from multimodal_cat.feeds import categorize_feed, read_output
from multimodal_cat.predictions import CategoryScore, Prediction
from multimodal_cat.predictors.checkpoint import ModelPredictor
from multimodal_cat.products import Product
from multimodal_cat.review.routing import ReviewRouter, review_reasons
from multimodal_cat.taxonomy import Taxonomy
from tests.conftest import FakePredictor

NAN = float("nan")


class NanPredictor(FakePredictor):
    """Predicts like :class:`FakePredictor`, with a NaN confidence (a diverged model)."""

    fingerprint = "nan"

    def predict(self, products, **kwargs):
        out = super().predict(products, **kwargs)
        for p in out:
            p.confidence = NAN
            p.alternatives = [CategoryScore(p.category_id, p.category_path, NAN)]
        return out


def test_routing_treats_nan_as_review_and_refuses_a_nan_threshold():
    tree = Taxonomy.from_paths(["Toys > Dolls", "Toys > Blocks"])
    guess = Prediction("Toys > Dolls", "Toys > Dolls", NAN)
    reasons = review_reasons(guess, Product(), tree, threshold=0.9)
    assert reasons and "not a number" in reasons[0]
    assert ReviewRouter(tree, 0.9)(Product(), guess)[0] is True
    with pytest.raises(ConfigurationError, match="finite auto-accept threshold"):
        ReviewRouter(tree, NAN)


def test_nan_rows_are_never_ok_and_are_routed_to_review(tmp_path):
    feed = tmp_path / "small.csv"
    feed.write_text("id,title\n1,Blue shirt\n2,Mug\n")
    predictor = NanPredictor()
    router = ReviewRouter(predictor.taxonomy, 0.9, "--review-below")
    out = tmp_path / "out.csv"
    summary = categorize_feed(feed, predictor, out, router=router, progress=False)
    rows = list(read_output(out))
    assert summary.ok == 0 and summary.failed == 2
    assert [r["status"] for r in rows] == ["error", "error"]
    assert all("not a number" in r["error"] for r in rows)
    assert all(r["needs_review"] == "True" and "not a number" in r["review_reason"] for r in rows)
    assert router.flagged == 2
    # `review tasks --below` queues them too (NaN < P is false: it used to queue none)
    tasks = tmp_path / "tasks.json"
    args = ["review", "tasks", str(feed), str(out), "--taxonomy", "shopify", "--below", "0.5"]
    assert main([*args, "-o", str(tasks)]) == 0
    assert len(json.loads(tasks.read_text())) == 2


def test_threshold_is_finite_when_confidences_are_nan():
    nan = threshold_for_precision(np.array([NAN, NAN, NAN]), np.array([1, 1, 1]), 0.9)
    assert np.isfinite(nan.value) and nan.value > 1.0 and nan.share == 0.0
    mixed = threshold_for_precision(np.array([0.9, NAN, 0.8]), np.array([1, 1, 1]), 0.9)
    assert mixed.value == 0.8 and mixed.share == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("category_temperature", 0, "category_temperature to be a positive number"),
        ("tag_temperature", -1.0, "tag_temperature to be a positive number"),
        ("confidence_thresholds", {"0.95": NAN}, "confidence_thresholds"),
    ],
)
def test_checkpoint_with_unusable_calibration_is_refused_on_load(
    tiny_checkpoint: Path, tmp_path, capsys, key, value, message
):
    folder = tmp_path / "ck"
    shutil.copytree(tiny_checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    config[key] = value
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigurationError, match=message):
        ModelPredictor.from_pretrained(str(folder), cache=False)
    feed = tmp_path / "small.csv"
    feed.write_text("id,title\n1,Blue shirt\n")
    args = ["categorize", str(feed), "--model", str(folder), "-o", str(tmp_path / "o.csv")]
    assert main([*args, "--no-progress"]) == 2
    assert message in capsys.readouterr().err


class CountingEncoder:
    key = "test:counting"
    dim = 4

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def encode(self, items, **kwargs):
        self.encoded += list(items)
        return np.ones((len(items), self.dim), dtype=np.float32)


def test_cache_entries_with_nan_or_wrong_dimension_are_recomputed(tmp_path):
    cache = EmbeddingCache(tmp_path / "cache")
    encoder = CountingEncoder()
    encode_cached(encoder, ["a", "b", "c"], cache=cache)
    with sqlite3.connect(cache.path) as conn:  # damage two entries in place
        rows = dict(conn.execute("SELECT content_hash, rowid FROM embeddings").fetchall())
        first, second = sorted(rows)[:2]
        nan = np.array([NAN, 1, 1, 1], dtype=np.float32).tobytes()
        conn.execute("UPDATE embeddings SET vector = ? WHERE content_hash = ?", (nan, first))
        short = np.ones(3, dtype=np.float32).tobytes()
        conn.execute(
            "UPDATE embeddings SET vector = ?, dim = 3 WHERE content_hash = ?", (short, second)
        )
    encoder.encoded.clear()
    vectors = encode_cached(encoder, ["a", "b", "c"], cache=cache)
    assert vectors.shape == (3, 4) and np.isfinite(vectors).all()
    assert len(encoder.encoded) == 2  # exactly the two broken entries were recomputed
    encoder.encoded.clear()
    encode_cached(encoder, ["a", "b", "c"], cache=cache)
    assert encoder.encoded == []  # and stored again, repaired


def test_nan_vectors_are_never_stored(tmp_path):
    cache = EmbeddingCache(tmp_path / "cache")
    cache.put_many("k", {"h": np.array([NAN, 0.0], dtype=np.float32)})
    assert cache.get_many("k", ["h"]) == {}


def test_diverged_training_fails_and_saves_no_thresholds(tmp_path, tiny_encoders, capsys):
    _, text = tiny_encoders
    feed = tmp_path / "feed.csv"
    titles = ["red sneakers", "blue boots", "green shirt", "steel pan"]
    paths = [
        "Apparel > Shoes > Sneakers",
        "Apparel > Shoes > Boots",
        "Apparel > Shirts",
        "Home > Kitchen",
    ]
    rows = [{"title": titles[i % 4], "category": paths[i % 4]} for i in range(16)]
    pd.DataFrame(rows).to_csv(feed, index=False)
    out = tmp_path / "model"
    flags = ["train", "--feed", str(feed), "--text-encoder", text, "--use_cpu"]
    flags += ["--report_to", "none", "--embedding-cache", "none", "--freeze-encoders"]
    flags += ["--learning_rate", "1e38", "--eval-split", "0.25", "--max_steps", "4"]
    flags += ["--save_strategy", "no", "--output_dir", str(out)]
    assert main(flags) == 1
    err = capsys.readouterr().err
    assert "training diverged" in err and "nothing was saved" in err and "Traceback" not in err
    assert not (out / "config.json").exists()
